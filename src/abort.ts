/**
 * Waits `ms`, or rejects with the signal's reason as soon as it fires (at once when it already
 * has). Its listener goes when the wait ends, so a caller can wait many times on one long-lived
 * signal (a job's) without piling up listeners.
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
