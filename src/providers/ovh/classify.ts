import {
  AccountError,
  AmbiguousError,
  PermanentError,
  RateLimitedError,
  TransientError,
  type DeliveryError,
} from '../../errors.js';
import { parseRetryAfterMs } from '../transport.js';
import type { OvhFailureReason, OvhRequestError } from './errors.js';

/**
 * A 429 without a readable `Retry-After` waits this long (ms). OVH's own guidance is "about 60
 * requests per minute per consumer key".
 */
export const OVH_RATE_LIMIT_DEFAULT_MS = 2_000;

/** How many pauses for a refused grant (NOT_GRANTED_CALL) before the waiting batches fail. */
export const OVH_NOT_GRANTED_REPEATS = 3;

/**
 * What to do with a failed send. `check-credit`: an OVH 400, decided by reading `creditsLeft`.
 * `accepted`: a 2xx the client rejected (any non-200, or a 200 whose body it could not parse):
 * OVH created the job, we only cannot read its report.
 */
export type OvhSendClass =
  'transient' | 'rate-limited' | 'permanent' | 'ambiguous' | 'account' | 'check-credit' | 'accepted';

/** What to do with a failed read (GET): never ambiguous, since a GET is safe to repeat. */
export type OvhReadClass = 'transient' | 'rate-limited' | 'permanent' | 'account';

/** Send (POST /jobs) outcome per HTTP status; statuses not listed fall back to {@link SEND_BY_STATUS_CLASS}. */
const SEND_BY_STATUS: Readonly<Record<number, OvhSendClass>> = {
  // OVH documents no "out of credit" error: a 400 is a business refusal, a bad signature (clock,
  // secret) or an empty account; only `creditsLeft` tells which.
  400: 'check-credit',
  // Credentials: unknown/expired consumer key, call not granted. Retrying cannot help; pause.
  401: 'account',
  403: 'account',
  // Unknown service or sender, conflicting state: resending the same batch gets the same answer.
  404: 'permanent',
  409: 'permanent',
  // A front timeout: the load balancer may have forwarded the POST before giving up.
  408: 'ambiguous',
  // OVH did not act; wait and send again.
  429: 'rate-limited',
};

/** Fallback per status class (1xx … 5xx). */
const SEND_BY_STATUS_CLASS: Readonly<Record<number, OvhSendClass>> = {
  // ovh@2 rejects every non-200 2xx (e.g. 204) and drops its body, and a 200 it cannot parse: OVH
  // answered success, so it acted. Calling it ambiguous would only delay the same conclusion.
  2: 'accepted',
  // Redirects are not followed; we cannot tell what the first hop did.
  3: 'ambiguous',
  4: 'permanent',
  // OVH 5xx do not say whether the job was created (DESIGN: "OVH 5xx → look it up by tag").
  5: 'ambiguous',
};

/** Outcome per failure reason when no status decides it and the request may have left. */
const SEND_BY_REASON: Readonly<Record<Exclude<OvhFailureReason, 'http-status'>, OvhSendClass>> = {
  // An HTML page from a proxy/load balancer (the status is lost with it): the POST got somewhere.
  'non-json-body': 'ambiguous',
  // Only ever raised before anything was signed or sent.
  'time-sync': 'transient',
  // Reset, hang-up, broken pipe after the request was written: it may have landed.
  network: 'ambiguous',
  deadline: 'ambiguous',
  aborted: 'ambiguous',
  unexpected: 'ambiguous',
};

/** Reads keep the send table except where a GET differs. */
const READ_BY_STATUS: Readonly<Record<number, OvhReadClass>> = {
  // Our GETs carry no business input, so a 400 is the signature (wrong secret or clock): an account problem.
  400: 'account',
};

/** Classifies a failed `POST /sms/{sn}/jobs`. */
export function classifyOvhSendError(err: OvhRequestError): OvhSendClass {
  // Never left: sending again cannot duplicate anything.
  if (err.phase === 'before-send') return 'transient';
  if (err.status !== undefined) {
    return SEND_BY_STATUS[err.status] ?? SEND_BY_STATUS_CLASS[Math.floor(err.status / 100)] ?? 'ambiguous';
  }
  return err.reason === 'http-status' ? 'ambiguous' : SEND_BY_REASON[err.reason];
}

/** Classifies a failed GET (service discovery, credit check, lookup, probe): ambiguity becomes a retry. */
export function classifyOvhReadError(err: OvhRequestError): OvhReadClass {
  const byStatus = err.status === undefined ? undefined : READ_BY_STATUS[err.status];
  if (byStatus) return byStatus;
  const cls = classifyOvhSendError(err);
  // A GET's 2xx we cannot read tells nothing: read again.
  return cls === 'ambiguous' || cls === 'check-credit' || cls === 'accepted' ? 'transient' : cls;
}

/** What each class means for the batch, as the first words of the error (the OVH error follows as cause). */
const VERDICT: Readonly<Record<Exclude<OvhSendClass, 'check-credit' | 'accepted'>, string>> = {
  transient: 'did not reach OVH or was not acted on; safe to retry',
  'rate-limited': 'was rate-limited by OVH; retry later',
  permanent: 'was refused by OVH for good',
  ambiguous: 'may have been accepted by OVH; look it up by tag before resending',
  account: 'was refused for the account (credentials or credit); pause the provider',
};

/** How long a 429 asks to wait: its `Retry-After`, else {@link OVH_RATE_LIMIT_DEFAULT_MS}. */
export function retryAfterMsOf(err: OvhRequestError, now: number = Date.now()): number {
  return parseRetryAfterMs(err.retryAfter, OVH_RATE_LIMIT_DEFAULT_MS, now);
}

/**
 * Builds the delivery error for a class, with the OVH error as `cause`. `check-credit` and
 * `accepted` are the caller's to resolve first.
 */
export function toDeliveryError(
  cls: Exclude<OvhSendClass, 'check-credit' | 'accepted'>,
  err: OvhRequestError,
): DeliveryError {
  const message = `OVH ${err.method === 'POST' ? 'send' : 'call'} ${VERDICT[cls]}`;
  const options = { cause: err };
  switch (cls) {
    case 'transient':
      return new TransientError(message, options);
    case 'rate-limited': {
      const retryAfterMs = retryAfterMsOf(err);
      return new RateLimitedError(`${message} (in ${retryAfterMs} ms)`, retryAfterMs, options);
    }
    case 'permanent':
      return new PermanentError(message, options);
    case 'ambiguous':
      return new AmbiguousError(message, options);
    case 'account':
      if (err.errorCode === 'NOT_GRANTED_CALL') {
        // The consumer key lacks this call's access rule. A probe (GET /sms/{sn}) may well be
        // granted when the send is not, so it cannot tell when this is fixed: fail after a few pauses.
        return new AccountError(`${message}: the OVH consumer key is not granted this call`, {
          ...options,
          code: 'SMSQ_OVH_NOT_GRANTED',
          failAfterRepeats: OVH_NOT_GRANTED_REPEATS,
        });
      }
      return new AccountError(message, options);
  }
}
