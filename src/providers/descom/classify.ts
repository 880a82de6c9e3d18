/**
 * Descom's failures, classified once at the boundary into smsq's delivery errors (src/errors.ts).
 * Decisions come from tables of HTTP statuses and `err.code`s, never from message text: Descom's
 * error bodies are undocumented, and Node/undici messages are not a contract.
 */
import {
  AccountError,
  AmbiguousError,
  PermanentError,
  RateLimitedError,
  TransientError,
  type DeliveryError,
} from '../../errors.js';
import { neverLeft, parseRetryAfterMs as parseSharedRetryAfterMs } from '../transport.js';

/** Wait after a 429 without a usable `Retry-After`, in ms. */
export const DEFAULT_RETRY_AFTER_MS = 1_000;

type StatusRule = (status: number) => DeliveryError;

/** Statuses Descom documents (plus 429), each with the one decision it drives. */
const STATUS_TABLE: ReadonlyMap<number, StatusRule> = new Map<number, StatusRule>([
  // Credentials refused: nothing was sent; pause the provider and keep the jobs until fixed.
  [401, () => new AccountError('Descom refused the credentials (401)', { code: 'SMSQ_DESCOM_UNAUTHORIZED' })],
  // Out of credit: nothing was sent; pause until the account is topped up (the probe resumes it).
  [
    402,
    () => new AccountError('Descom account has insufficient credit (402)', { code: 'SMSQ_DESCOM_NO_CREDIT' }),
  ],
  // Invalid data: sending the same batch again gets the same answer.
  [
    422,
    () => new PermanentError('Descom rejected the batch as invalid (422)', { code: 'SMSQ_DESCOM_INVALID' }),
  ],
  // Descom documents 503 as "Error interno, la petición no ha sido efectuada": it did not act, so a retry cannot duplicate.
  [
    503,
    () =>
      new TransientError('Descom is unavailable (503); nothing was sent', {
        code: 'SMSQ_DESCOM_UNAVAILABLE',
      }),
  ],
]);

/**
 * Classifies a Descom HTTP status. `undefined` for 2xx (the provider acted).
 * `retryAfterHeader` is the raw `Retry-After` value, read only for 429.
 */
export function classifyDescomStatus(status: number, retryAfterHeader?: string): DeliveryError | undefined {
  if (status >= 200 && status < 300) return undefined;
  const rule = STATUS_TABLE.get(status);
  if (rule) return rule(status);
  if (status === 429) {
    // Rate limited: the provider did not act; wait as told (no attempt used, see the batch processor).
    const retryAfterMs = parseRetryAfterMs(retryAfterHeader);
    return new RateLimitedError(
      `Descom rate-limited the request (429); retry in ${retryAfterMs} ms`,
      retryAfterMs,
    );
  }
  if (status === 408 || status >= 500) {
    // No blind retry on a 408/5xx other than 503: Descom documents none of them, and a proxy or the
    // API itself may have failed after the send was performed; a retry could deliver twice.
    return new AmbiguousError(`Descom answered ${status}; the batch may have been sent`, {
      code: 'SMSQ_DESCOM_SERVER_ERROR',
    });
  }
  if (status >= 400) {
    // Any other client error is about the request itself: resending it unchanged cannot succeed.
    return new PermanentError(`Descom rejected the request (${status})`, { code: 'SMSQ_DESCOM_REJECTED' });
  }
  // 1xx/3xx as a final answer means a misconfigured DESCOM_URL (e.g. a redirect to https): the API
  // never saw the send. Pause the provider like a credential problem so an operator fixes it and
  // the jobs are kept, instead of failing every batch.
  return new AccountError(`Descom answered an unexpected ${status}; check DESCOM_URL`, {
    code: 'SMSQ_DESCOM_UNEXPECTED_STATUS',
  });
}

/**
 * `Retry-After` in ms (delta-seconds or an HTTP-date, clamped), DEFAULT_RETRY_AFTER_MS when absent
 * or unreadable: the shared reading, with Descom's default.
 */
export function parseRetryAfterMs(header: string | undefined, now: number = Date.now()): number {
  return parseSharedRetryAfterMs(header, DEFAULT_RETRY_AFTER_MS, now);
}

/**
 * Codes raised once the request may have gone out, each with our code. Listed for the reader and
 * for a precise code: anything not in the shared never-left list is ambiguous anyway, because a wrong
 * "never left" is how an SMS gets delivered twice.
 */
const MAY_HAVE_LEFT_CODES: ReadonlyMap<string, string> = new Map([
  // No retry on a headers timeout: the POST went out; a retry could deliver twice.
  ['UND_ERR_HEADERS_TIMEOUT', 'SMSQ_DESCOM_TIMEOUT'],
  // The answer had started (Descom acted) but did not finish.
  ['UND_ERR_BODY_TIMEOUT', 'SMSQ_DESCOM_TIMEOUT'],
  // An established connection stopped answering (kernel retransmission timeout).
  ['ETIMEDOUT', 'SMSQ_DESCOM_TIMEOUT'],
  // "other side closed", resets, broken pipes: the socket died with the request written or being
  // written; Descom may have performed it before the connection went.
  ['UND_ERR_SOCKET', 'SMSQ_DESCOM_CONNECTION_LOST'],
  ['ECONNRESET', 'SMSQ_DESCOM_CONNECTION_LOST'],
  ['EPIPE', 'SMSQ_DESCOM_CONNECTION_LOST'],
  // The request was cancelled or the pool destroyed mid-flight.
  ['UND_ERR_ABORTED', 'SMSQ_DESCOM_ABORTED'],
  ['UND_ERR_DESTROYED', 'SMSQ_DESCOM_ABORTED'],
]);

/** `AbortSignal` reasons (DOMException names): the deadline or the caller gave up mid-request. */
const ABORT_NAMES: ReadonlyMap<string, string> = new Map([
  ['TimeoutError', 'SMSQ_DESCOM_TIMEOUT'],
  ['AbortError', 'SMSQ_DESCOM_ABORTED'],
]);

function readCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  // DOMException carries a numeric legacy `code`; only string codes are Node/undici codes.
  return typeof err.code === 'string' ? err.code : undefined;
}

function readName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

/** True when every attempt of a happy-eyeballs connect (AggregateError) failed before sending. */
function allAttemptsNeverLeft(err: unknown): boolean {
  if (!(err instanceof AggregateError) || err.errors.length === 0) return false;
  return err.errors.every((inner) => neverLeft(readCode(inner)));
}

/**
 * Classifies an error thrown by the HTTP call (no status received). Only codes known to be raised
 * before the request left give a TransientError; everything else is an AmbiguousError.
 */
export function classifyDescomNetworkError(err: unknown): DeliveryError {
  const code = readCode(err);
  if (neverLeft(code) || (code === undefined && allAttemptsNeverLeft(err))) {
    return new TransientError(`Could not reach Descom (${code ?? 'connect failed'}); nothing was sent`, {
      code: 'SMSQ_DESCOM_UNREACHABLE',
      cause: err,
    });
  }
  const abortCode = ABORT_NAMES.get(readName(err) ?? '');
  if (abortCode !== undefined) {
    // No retry after a deadline or a cancel mid-request: the POST may already have been sent.
    return new AmbiguousError('Descom request was aborted before an answer; the batch may have been sent', {
      code: abortCode,
      cause: err,
    });
  }
  // Unknown errors count as "may have left": resending on a guess is how SMS get delivered twice.
  const ourCode = (code !== undefined ? MAY_HAVE_LEFT_CODES.get(code) : undefined) ?? 'SMSQ_DESCOM_NETWORK';
  return new AmbiguousError(
    `Descom request failed (${code ?? readName(err) ?? 'unknown error'}); the batch may have been sent`,
    { code: ourCode, cause: err },
  );
}
