import type { DecisionTable } from '../decisions.js';

/** Wait after a 429 without a usable `Retry-After`, in ms. */
export const DESCOM_RETRY_AFTER_DEFAULT_MS = 1_000;

/**
 * Every decision about a Descom answer, by what was observed (see src/providers/decisions.ts for
 * the keys). Statuses are the ones Descom documents (plus 429); its error bodies are undocumented,
 * so nothing is read from them.
 */
export const DESCOM_DECISIONS: DecisionTable = [
  {
    when: 'HTTP 2xx',
    kind: 'sent',
    code: 'SMSQ_DESCOM_SENT',
    mayHaveLeft: true,
    why: 'Descom performed the send (credits estimated when its answer is unreadable)',
  },
  // Credentials refused: nothing was sent; pause the provider and keep the jobs until fixed.
  {
    when: 'HTTP 401',
    kind: 'account',
    code: 'SMSQ_DESCOM_UNAUTHORIZED',
    mayHaveLeft: false,
    why: 'Descom refused the credentials',
  },
  // Out of credit: nothing was sent; pause until the account is topped up (the probe resumes it).
  {
    when: 'HTTP 402',
    kind: 'account',
    code: 'SMSQ_DESCOM_NO_CREDIT',
    mayHaveLeft: false,
    why: 'the Descom account has insufficient credit',
  },
  // Invalid data: sending the same batch again gets the same answer.
  {
    when: 'HTTP 422',
    kind: 'permanent',
    code: 'SMSQ_DESCOM_INVALID',
    mayHaveLeft: false,
    why: 'Descom rejected the batch as invalid',
  },
  // Rate limited: Descom did not act; wait as told (no attempt used).
  {
    when: 'HTTP 429',
    kind: 'rate-limited',
    code: 'SMSQ_PROVIDER_RATE_LIMITED',
    mayHaveLeft: false,
    why: 'Descom rate-limited the request',
    retryAfterDefaultMs: DESCOM_RETRY_AFTER_DEFAULT_MS,
  },
  // Descom documents 503 as "Error interno, la petición no ha sido efectuada": it did not act.
  {
    when: 'HTTP 503',
    kind: 'transient',
    code: 'SMSQ_DESCOM_UNAVAILABLE',
    mayHaveLeft: false,
    why: 'Descom is unavailable and did not act',
  },
  // No blind retry on a 408/5xx other than 503: Descom documents none of them, and a proxy or the
  // API itself may have failed after the send was performed; a retry could deliver twice.
  {
    when: 'HTTP 408',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_SERVER_ERROR',
    mayHaveLeft: true,
    why: 'Descom timed out; the batch may have been sent',
  },
  {
    when: 'HTTP 5xx',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_SERVER_ERROR',
    mayHaveLeft: true,
    why: 'Descom failed; the batch may have been sent',
  },
  // Any other client error is about the request itself: resending it unchanged cannot succeed.
  {
    when: 'HTTP 4xx',
    kind: 'permanent',
    code: 'SMSQ_DESCOM_REJECTED',
    mayHaveLeft: false,
    why: 'Descom rejected the request',
  },
  // 1xx/3xx as a final answer means a misconfigured DESCOM_URL (e.g. a redirect to https): the API
  // never saw the send. Pause like a credential problem so an operator fixes it, keeping the jobs.
  {
    when: 'HTTP 3xx',
    kind: 'account',
    code: 'SMSQ_DESCOM_UNEXPECTED_STATUS',
    mayHaveLeft: false,
    why: 'Descom answered a redirect; check DESCOM_URL',
  },
  {
    when: 'HTTP 1xx',
    kind: 'account',
    code: 'SMSQ_DESCOM_UNEXPECTED_STATUS',
    mayHaveLeft: false,
    why: 'Descom answered an informational status; check DESCOM_URL',
  },
  // The shared transport list (src/providers/transport.ts): no byte reached Descom.
  {
    when: 'never-left',
    kind: 'transient',
    code: 'SMSQ_DESCOM_UNREACHABLE',
    mayHaveLeft: false,
    why: 'could not reach Descom; nothing was sent',
  },
  // Cancelled before anything was written: a later retry is safe.
  {
    when: 'cancelled before the call',
    kind: 'transient',
    code: 'SMSQ_DESCOM_CANCELLED',
    mayHaveLeft: false,
    why: 'the batch was cancelled before it was sent to Descom',
  },
  // Descom would answer 422 anyway; refusing first spares a request and names the cause (a planning bug).
  {
    when: 'over the limits',
    kind: 'permanent',
    code: 'SMSQ_DESCOM_BATCH_TOO_LARGE',
    mayHaveLeft: false,
    why: "the batch exceeds Descom's limits (50 messages × 100 recipients)",
  },
  // No retry after a deadline or a cancel mid-request: the POST may already have been sent.
  {
    when: 'error TimeoutError',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_TIMEOUT',
    mayHaveLeft: true,
    why: 'the deadline passed before Descom answered; the batch may have been sent',
  },
  {
    when: 'error AbortError',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_ABORTED',
    mayHaveLeft: true,
    why: 'the request was aborted before Descom answered; the batch may have been sent',
  },
  // No retry on a headers timeout: the POST went out; a retry could deliver twice.
  {
    when: 'code UND_ERR_HEADERS_TIMEOUT',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_TIMEOUT',
    mayHaveLeft: true,
    why: 'Descom did not answer in time; the batch may have been sent',
  },
  // The answer had started (Descom acted) but did not finish.
  {
    when: 'code UND_ERR_BODY_TIMEOUT',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_TIMEOUT',
    mayHaveLeft: true,
    why: "Descom's answer stopped; the batch may have been sent",
  },
  // An established connection stopped answering (kernel retransmission timeout).
  {
    when: 'code ETIMEDOUT',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_TIMEOUT',
    mayHaveLeft: true,
    why: 'the connection to Descom timed out; the batch may have been sent',
  },
  // "other side closed", resets, broken pipes: the socket died with the request written or being
  // written; Descom may have performed it before the connection went.
  {
    when: 'code UND_ERR_SOCKET',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_CONNECTION_LOST',
    mayHaveLeft: true,
    why: 'the connection to Descom was lost; the batch may have been sent',
  },
  {
    when: 'code ECONNRESET',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_CONNECTION_LOST',
    mayHaveLeft: true,
    why: 'the connection to Descom was reset; the batch may have been sent',
  },
  {
    when: 'code EPIPE',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_CONNECTION_LOST',
    mayHaveLeft: true,
    why: 'the connection to Descom broke; the batch may have been sent',
  },
  // The request was cancelled or the pool destroyed mid-flight.
  {
    when: 'code UND_ERR_ABORTED',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_ABORTED',
    mayHaveLeft: true,
    why: 'the request was aborted mid-flight; the batch may have been sent',
  },
  {
    when: 'code UND_ERR_DESTROYED',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_ABORTED',
    mayHaveLeft: true,
    why: 'the connection was destroyed mid-flight; the batch may have been sent',
  },
  // Unknown errors count as "may have left": resending on a guess is how SMS get delivered twice.
  {
    when: 'network',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_NETWORK',
    mayHaveLeft: true,
    why: 'the request to Descom failed; the batch may have been sent',
  },
  {
    when: 'otherwise',
    kind: 'ambiguous',
    code: 'SMSQ_DESCOM_NETWORK',
    mayHaveLeft: true,
    why: 'an unexpected failure; the batch may have been sent',
  },
];
