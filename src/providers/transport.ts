/**
 * Transport facts every provider shares: which network errors prove that a request never left
 * this host, and how to read a `Retry-After` header. Each provider's classifier uses these, so
 * Descom and OVH cannot disagree about the same socket error.
 */

/**
 * Error codes (Node `err.code`, or the name of a libuv errno) raised before any byte of the
 * request reached the provider: sending again cannot duplicate anything. Anything else raised
 * once a client took the call (ECONNRESET, EPIPE, ETIMEDOUT, …) may have reached the provider.
 * A wrong entry here is how an SMS gets delivered twice: add a code only with proof.
 */
export const NEVER_LEFT_CODES: ReadonlySet<string> = new Set([
  // Name resolution failed (EAI_FAIL is a DNS failure too: no address, no connection).
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  // Nothing listens, no route, or no local address to connect from: no connection, no request.
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  // undici gave up while connecting (TCP or TLS handshake), before writing the request.
  'UND_ERR_CONNECT_TIMEOUT',
  // undici's pool was closed (shutdown) before dispatching: the request was never written.
  'UND_ERR_CLOSED',
  // TLS certificate refused during the handshake: no HTTP byte is written before it completes.
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** True when `code` proves the request never left this host (see {@link NEVER_LEFT_CODES}). */
export function neverLeft(code: string | undefined): boolean {
  return code !== undefined && NEVER_LEFT_CODES.has(code);
}

/** Bounds on a 429 wait, in ms: no busy loop on `Retry-After: 0`, no day-long stall on a bad date. */
export const MIN_RETRY_AFTER_MS = 100;
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

const HTTP_DATE_START = /^(mon|tue|wed|thu|fri|sat|sun)/i;

/**
 * `Retry-After` in ms: delta-seconds or an HTTP-date (RFC 9110 §10.2.3), clamped to
 * [MIN_RETRY_AFTER_MS, MAX_RETRY_AFTER_MS]; `defaultMs` when absent or unreadable.
 * `now` (ms since the epoch) is the reference for a date.
 */
export function parseRetryAfterMs(
  header: string | readonly string[] | undefined,
  defaultMs: number,
  now: number = Date.now(),
): number {
  const value = (typeof header === 'string' ? header : header?.[0])?.trim();
  if (!value) return defaultMs;
  let ms: number | undefined;
  if (/^\d+$/.test(value)) ms = Number(value) * 1_000;
  // Only try a date when it looks like one: Date.parse is lenient and reads "1.5" as a year.
  else if (HTTP_DATE_START.test(value)) {
    const at = Date.parse(value);
    if (!Number.isNaN(at)) ms = at - now;
  }
  if (ms === undefined) return defaultMs;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, ms));
}

/** One call's deadline: `signal` aborts at the deadline or with the caller; `clear()` once the call is over. */
export interface Deadline {
  readonly signal: AbortSignal;
  clear(): void;
}

/**
 * The total deadline of one provider call: a signal that aborts when `signal` does (the caller:
 * cancel, shutdown) or once `timeoutMs` has passed (its reason then a `TimeoutError` DOMException).
 * Every provider bounds its calls with this, so "the call is over" means the same for all.
 * A timer, not `AbortSignal.any` + `AbortSignal.timeout`: Node holds those composite signals
 * weakly, so one nothing else references can be collected and never fire (a call that hangs
 * forever, seen under GC pressure). Call `clear()` when the call ends, so no timer outlives it.
 */
export function withDeadline(signal: AbortSignal, timeoutMs: number): Deadline {
  const controller = new AbortController();
  const onAbort = (): void => {
    clear();
    controller.abort(signal.reason);
  };
  const timer = setTimeout(() => {
    signal.removeEventListener('abort', onAbort);
    controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  function clear(): void {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return { signal: controller.signal, clear };
}
