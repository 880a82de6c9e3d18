/**
 * Descom's failures, classified once at the boundary into smsq's delivery errors (src/errors.ts)
 * by its decision table (./decisions.ts): HTTP statuses and `err.code`s, never message text.
 */
import type { DeliveryError } from '../../errors.js';
import { decide, errorFor, failureKeys, statusKeys } from '../decisions.js';
import { parseRetryAfterMs as parseSharedRetryAfterMs } from '../transport.js';
import { DESCOM_DECISIONS, DESCOM_RETRY_AFTER_DEFAULT_MS } from './decisions.js';

/** Wait after a 429 without a usable `Retry-After`, in ms. */
export const DEFAULT_RETRY_AFTER_MS = DESCOM_RETRY_AFTER_DEFAULT_MS;

/**
 * Classifies a Descom HTTP status. `undefined` for 2xx (the provider acted).
 * `retryAfterHeader` is the raw `Retry-After` value, read only for 429.
 */
export function classifyDescomStatus(status: number, retryAfterHeader?: string): DeliveryError | undefined {
  const decision = decide(DESCOM_DECISIONS, statusKeys(status));
  if (decision.kind === 'sent') return undefined;
  return errorFor(decision, `Descom answered ${status}: ${decision.why}`, { retryAfter: retryAfterHeader });
}

/**
 * `Retry-After` in ms (delta-seconds or an HTTP-date, clamped), DEFAULT_RETRY_AFTER_MS when absent
 * or unreadable: the shared reading, with Descom's default.
 */
export function parseRetryAfterMs(header: string | undefined, now: number = Date.now()): number {
  return parseSharedRetryAfterMs(header, DEFAULT_RETRY_AFTER_MS, now);
}

/**
 * Classifies an error thrown by the HTTP call (no status received). Only codes known to be raised
 * before the request left give a TransientError; everything else is an AmbiguousError.
 */
export function classifyDescomNetworkError(err: unknown): DeliveryError {
  const decision = decide(DESCOM_DECISIONS, failureKeys(err));
  // The error's own code or name, for the operator (an AggregateError names no code: its attempts do).
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  const seen = typeof code === 'string' ? code : err instanceof Error ? err.name : 'unknown error';
  return errorFor(decision, `Descom request failed (${seen}): ${decision.why}`, { cause: err });
}

/** The error of a named Descom decision (`cancelled before the call`, `over the limits`). */
export function descomError(when: string, cause?: unknown): DeliveryError {
  const decision = decide(DESCOM_DECISIONS, [when]);
  return errorFor(decision, `Descom: ${decision.why}`, { cause });
}
