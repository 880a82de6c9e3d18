/**
 * OVH's failures, classified once at the boundary by its decision table (./decisions.ts): the
 * normalised OvhRequestError (status, OVH `errorCode`, phase, reason) gives the keys, the table
 * the decision.
 */
import type { DeliveryError } from '../../errors.js';
import { decide, decideRead, errorFor, statusKeys, type Decision } from '../decisions.js';
import { parseRetryAfterMs } from '../transport.js';
import { OVH_DECISIONS, OVH_RATE_LIMIT_DEFAULT_MS } from './decisions.js';
import type { OvhRequestError } from './errors.js';

export { OVH_NOT_GRANTED_REPEATS, OVH_RATE_LIMIT_DEFAULT_MS } from './decisions.js';

/** The table keys of a failed call, most specific first. */
export function ovhKeys(err: OvhRequestError): string[] {
  // Never left (the shared never-left codes, a failed time sync, the allowance wait): nothing was sent.
  if (err.phase === 'before-send') return ['never-left'];
  if (err.status !== undefined) return statusKeys(err.status, err.errorCode);
  return [`reason ${err.reason}`];
}

/**
 * The decision for a failed `POST /sms/{sn}/jobs`. A 400 is not decided here: OVH has no "out of
 * credit" error, so the provider reads `creditsLeft` and takes one of the `HTTP 400, …` rows.
 */
export function decideOvhSend(err: OvhRequestError): Decision {
  return decide(OVH_DECISIONS, ovhKeys(err));
}

/** The decision for a failed GET (discovery, credit check, lookup, probe): never ambiguous. */
export function decideOvhRead(err: OvhRequestError): Decision {
  return decideRead(OVH_DECISIONS, ovhKeys(err));
}

/** The decision of a named row (`HTTP 400, credit enough`, `batch tag`, …). */
export function ovhDecision(when: string): Decision {
  return decide(OVH_DECISIONS, [when]);
}

/**
 * The delivery error of a decision, with the OVH error (when there is one) as `cause` and
 * `detail` (no number, no text) after the row's reason.
 */
export function ovhError(decision: Decision, err?: OvhRequestError, detail?: string): DeliveryError {
  const what = err === undefined ? 'OVH' : `OVH ${err.method === 'POST' ? 'send' : 'call'}`;
  return errorFor(decision, `${what}: ${decision.why}${detail ? ` (${detail})` : ''}`, {
    ...(err !== undefined ? { cause: err } : {}),
    ...(err?.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}),
  });
}

/** How long a 429 asks to wait: its `Retry-After`, else {@link OVH_RATE_LIMIT_DEFAULT_MS}. */
export function retryAfterMsOf(err: OvhRequestError, now: number = Date.now()): number {
  return parseRetryAfterMs(err.retryAfter, OVH_RATE_LIMIT_DEFAULT_MS, now);
}
