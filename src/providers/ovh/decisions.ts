import type { DecisionTable } from '../decisions.js';

/**
 * A 429 without a readable `Retry-After` waits this long (ms). OVH's own guidance is "about 60
 * requests per minute per consumer key".
 */
export const OVH_RATE_LIMIT_DEFAULT_MS = 2_000;

/** How many pauses for a refused grant (NOT_GRANTED_CALL) before the waiting batches fail. */
export const OVH_NOT_GRANTED_REPEATS = 3;

/**
 * Every decision about an OVH answer, by what was observed (see src/providers/decisions.ts for the
 * keys; `reason …` is the failure reason of an OvhRequestError with no status). Reads (GET) use the
 * same rows, safe to repeat, except `GET …` rows.
 */
export const OVH_DECISIONS: DecisionTable = [
  {
    when: 'HTTP 200',
    kind: 'sent',
    code: 'SMSQ_OVH_SENT',
    mayHaveLeft: true,
    why: 'OVH created the job (its report gives ids, receivers and credits)',
  },
  // ovh@2 rejects every non-200 2xx (e.g. 204) and drops its body, and a 200 it cannot parse: OVH
  // answered success, so it acted. Calling it ambiguous would only delay the same conclusion.
  {
    when: 'HTTP 2xx',
    kind: 'sent',
    code: 'SMSQ_OVH_SENT_UNREAD',
    mayHaveLeft: true,
    why: 'OVH accepted the job but its report is unreadable (credits estimated)',
  },
  // OVH documents no "out of credit" error: a 400 on a send is a business refusal, a bad signature
  // (clock, secret) or an empty account; the provider reads `creditsLeft` and picks one of these.
  {
    when: 'HTTP 400, credit below the estimate',
    kind: 'account',
    code: 'SMSQ_OVH_NO_CREDIT',
    mayHaveLeft: false,
    why: 'OVH refused the job and the account has too little credit for it',
  },
  {
    when: 'HTTP 400, credit enough',
    kind: 'permanent',
    code: 'SMSQ_OVH_REJECTED',
    mayHaveLeft: false,
    why: 'OVH refused the job with enough credit left',
  },
  {
    when: 'HTTP 400, credit check refused',
    kind: 'account',
    code: 'SMSQ_OVH_CREDENTIALS',
    mayHaveLeft: false,
    why: 'OVH refused the job and the credit check too: check the OVH keys and clock',
  },
  // A 400 means OVH did not create the job: retrying is safe and checks the credit again.
  {
    when: 'HTTP 400, credit check failed',
    kind: 'transient',
    code: 'SMSQ_OVH_CREDIT_UNKNOWN',
    mayHaveLeft: false,
    why: 'OVH refused the job and the credit check failed; will check again',
  },
  // Our GETs carry no business input, so a 400 is the signature (wrong secret or clock).
  {
    when: 'GET HTTP 400',
    kind: 'account',
    code: 'SMSQ_OVH_SIGNATURE',
    mayHaveLeft: false,
    why: 'OVH refused the signature: check the OVH keys and clock',
  },
  // Credentials: unknown/expired consumer key. Retrying cannot help; pause.
  {
    when: 'HTTP 401',
    kind: 'account',
    code: 'SMSQ_OVH_UNAUTHORIZED',
    mayHaveLeft: false,
    why: 'OVH refused the credentials; pause the provider',
  },
  {
    when: 'HTTP 403',
    kind: 'account',
    code: 'SMSQ_OVH_FORBIDDEN',
    mayHaveLeft: false,
    why: 'OVH refused the credentials; pause the provider',
  },
  // The consumer key lacks this call's access rule. A probe (GET /sms/{sn}) may well be granted
  // when the send is not, so it cannot tell when this is fixed: fail after a few pauses.
  {
    when: 'HTTP 403 NOT_GRANTED_CALL',
    kind: 'account',
    code: 'SMSQ_OVH_NOT_GRANTED',
    mayHaveLeft: false,
    why: 'the OVH consumer key is not granted this call',
    failAfterRepeats: OVH_NOT_GRANTED_REPEATS,
  },
  // Unknown service or sender, conflicting state: resending the same batch gets the same answer.
  {
    when: 'HTTP 404',
    kind: 'permanent',
    code: 'SMSQ_OVH_NOT_FOUND',
    mayHaveLeft: false,
    why: 'OVH does not know the service or sender',
  },
  {
    when: 'HTTP 409',
    kind: 'permanent',
    code: 'SMSQ_OVH_CONFLICT',
    mayHaveLeft: false,
    why: 'OVH refused the call as conflicting',
  },
  // A front timeout: the load balancer may have forwarded the POST before giving up.
  {
    when: 'HTTP 408',
    kind: 'ambiguous',
    code: 'SMSQ_OVH_FRONT_TIMEOUT',
    mayHaveLeft: true,
    why: "OVH's front timed out; the job may have been created: look it up",
  },
  // OVH did not act; wait and send again.
  {
    when: 'HTTP 429',
    kind: 'rate-limited',
    code: 'SMSQ_PROVIDER_RATE_LIMITED',
    mayHaveLeft: false,
    why: 'OVH rate-limited the call',
    retryAfterDefaultMs: OVH_RATE_LIMIT_DEFAULT_MS,
  },
  {
    when: 'HTTP 4xx',
    kind: 'permanent',
    code: 'SMSQ_OVH_REFUSED',
    mayHaveLeft: false,
    why: 'OVH refused the call for good',
  },
  // Redirects are not followed; we cannot tell what the first hop did.
  {
    when: 'HTTP 3xx',
    kind: 'ambiguous',
    code: 'SMSQ_OVH_REDIRECT',
    mayHaveLeft: true,
    why: 'OVH answered a redirect; the job may have been created: look it up',
  },
  // OVH 5xx do not say whether the job was created.
  {
    when: 'HTTP 5xx',
    kind: 'ambiguous',
    code: 'SMSQ_OVH_SERVER_ERROR',
    mayHaveLeft: true,
    why: 'OVH failed; the job may have been created: look it up',
  },
  // Before-send failures (the shared never-left codes, a failed time sync, the allowance wait):
  // nothing was signed nor sent.
  {
    when: 'never-left',
    kind: 'transient',
    code: 'SMSQ_OVH_UNREACHABLE',
    mayHaveLeft: false,
    why: 'did not reach OVH; safe to retry',
  },
  // An HTML page from a proxy/load balancer (the status is lost with it): the POST got somewhere.
  {
    when: 'reason non-json-body',
    kind: 'ambiguous',
    code: 'SMSQ_OVH_NOT_JSON',
    mayHaveLeft: true,
    why: 'OVH (or a proxy) answered a page that is not JSON; the job may have been created: look it up',
  },
  // Reset, hang-up, broken pipe after the request was written: it may have landed.
  {
    when: 'reason network',
    kind: 'ambiguous',
    code: 'SMSQ_OVH_CONNECTION_LOST',
    mayHaveLeft: true,
    why: 'the connection to OVH was lost; the job may have been created: look it up',
  },
  {
    when: 'reason deadline',
    kind: 'ambiguous',
    code: 'SMSQ_OVH_TIMEOUT',
    mayHaveLeft: true,
    why: 'OVH did not answer in time; the job may have been created: look it up',
  },
  {
    when: 'reason aborted',
    kind: 'ambiguous',
    code: 'SMSQ_OVH_ABORTED',
    mayHaveLeft: true,
    why: 'the call was aborted after it went out; the job may have been created: look it up',
  },
  {
    when: 'otherwise',
    kind: 'ambiguous',
    code: 'SMSQ_OVH_UNEXPECTED',
    mayHaveLeft: true,
    why: 'an unexpected failure after the call went out; the job may have been created: look it up',
  },
  // A batch the planner should never have made: refused before any call.
  {
    when: 'batch shape',
    kind: 'permanent',
    code: 'SMSQ_OVH_BATCH_SHAPE',
    mayHaveLeft: false,
    why: 'an OVH batch must hold exactly one message with recipients',
  },
  // OVH would cut or refuse it, and a batch we cannot find by tag could be sent twice.
  {
    when: 'batch tag',
    kind: 'permanent',
    code: 'SMSQ_OVH_BAD_TAG',
    mayHaveLeft: false,
    why: 'an OVH batch needs a tag of 1 to 20 characters',
  },
  // A configuration problem, not the batch's: pause the provider and keep the jobs.
  {
    when: 'service name unknown',
    kind: 'account',
    code: 'SMSQ_OVH_SERVICE_NAME',
    mayHaveLeft: false,
    why: 'the OVH account does not have exactly one SMS service; set OVH_SERVICE_NAME',
  },
  // A lookup: a record listed a moment ago cannot be gone for good; look again rather than guess.
  {
    when: 'GET listed SMS missing',
    kind: 'transient',
    code: 'SMSQ_OVH_LOOKUP_GAP',
    mayHaveLeft: false,
    why: 'OVH listed an SMS but could not show it; will look again',
  },
];
