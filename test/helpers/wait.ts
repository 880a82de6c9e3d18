/**
 * The one polling loop of the tests. Prefer an event where there is one (a child's output line, a
 * BullMQ event); poll Redis-backed state, a fake provider's request log or an HTTP answer with this.
 */

export interface WaitOptions {
  /** Give up after this many ms. @defaultValue 10000 */
  timeoutMs?: number;
  /** Pause between two probes, in ms. @defaultValue 25 */
  intervalMs?: number;
  /** What is awaited, for the error message (e.g. `request r1 completed`). */
  what?: string;
  /**
   * Treat a probe that throws as "not yet" (e.g. a client failing fast while Redis is down).
   * The last error is the timeout error's cause. @defaultValue false
   */
  retryErrors?: boolean;
}

/** What a probe returns while the awaited thing has not happened. */
type NotYet = false | null | undefined;

/**
 * Calls `probe` until it returns something other than `false`, `null` or `undefined`, and returns
 * that. Fails after `timeoutMs`, quoting the last value the probe returned.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  options: WaitOptions | number = {},
): Promise<Exclude<T, NotYet>> {
  const opts = typeof options === 'number' ? { timeoutMs: options } : options;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== false && value !== null && value !== undefined) return value as Exclude<T, NotYet>;
      last = value;
    } catch (err) {
      if (!opts.retryErrors) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const seen =
        lastError === undefined
          ? `last value: ${describe(last)}`
          : `last error: ${lastError instanceof Error ? lastError.message : describe(lastError)}`;
      throw new Error(`${opts.what ?? 'condition'} not met within ${timeoutMs} ms (${seen})`, {
        cause: lastError,
      });
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25));
  }
}

/** `waitFor` for a yes/no check: resolves once `check` is true. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  options: WaitOptions | number = {},
): Promise<void> {
  await waitFor(check, options);
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 500) ?? String(value);
  } catch {
    return String(value);
  }
}
