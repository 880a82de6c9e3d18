/**
 * smsq's error taxonomy. Providers classify their failures once, at the boundary, into one of the
 * delivery classes below; the batch processor maps each class to one queue decision
 * (see `src/queue/batch-processor.ts`). Every class carries a stable `code`.
 */

export type DeliveryErrorKind = 'transient' | 'rate-limited' | 'permanent' | 'ambiguous' | 'account';

export class SmsqError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The request never reached the provider, or the provider says it did not act: safe to send again. */
export class TransientError extends SmsqError {
  readonly kind = 'transient' as const;
  constructor(message: string, options?: ErrorOptions & { code?: string }) {
    super(options?.code ?? 'SMSQ_PROVIDER_TRANSIENT', message, options);
  }
}

/** The provider asked us to slow down; nothing was sent. `retryAfterMs` is how long to wait. */
export class RateLimitedError extends SmsqError {
  readonly kind = 'rate-limited' as const;
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options?: ErrorOptions) {
    super('SMSQ_PROVIDER_RATE_LIMITED', message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/** The provider refused the batch for good (bad data, unknown service): never retried. */
export class PermanentError extends SmsqError {
  readonly kind = 'permanent' as const;
  constructor(message: string, options?: ErrorOptions & { code?: string }) {
    super(options?.code ?? 'SMSQ_PROVIDER_REJECTED', message, options);
  }
}

/** The request may have reached the provider (timeout or reset after it went out, 5xx): do not blindly resend. */
export class AmbiguousError extends SmsqError {
  readonly kind = 'ambiguous' as const;
  constructor(message: string, options?: ErrorOptions & { code?: string }) {
    super(options?.code ?? 'SMSQ_PROVIDER_AMBIGUOUS', message, options);
  }
}

/**
 * Out of credit or bad credentials: pause that provider and keep the jobs; no attempt is used.
 * `failAfterRepeats`: a cause a probe cannot tell from a lasting refusal (OVH NOT_GRANTED_CALL):
 * after that many pauses for the same code, the waiting batches end `failed` with this reason.
 */
export class AccountError extends SmsqError {
  readonly kind = 'account' as const;
  readonly failAfterRepeats?: number;
  constructor(message: string, options?: ErrorOptions & { code?: string; failAfterRepeats?: number }) {
    super(options?.code ?? 'SMSQ_PROVIDER_ACCOUNT', message, options);
    if (options?.failAfterRepeats !== undefined) this.failAfterRepeats = options.failAfterRepeats;
  }
}

export type DeliveryError =
  TransientError | RateLimitedError | PermanentError | AmbiguousError | AccountError;

export function isDeliveryError(err: unknown): err is DeliveryError {
  return (
    err instanceof TransientError ||
    err instanceof RateLimitedError ||
    err instanceof PermanentError ||
    err instanceof AmbiguousError ||
    err instanceof AccountError
  );
}

/** One issue of a rejected input: `path` is dot-joined (`messages.0.to.3`). */
export interface InputIssue {
  path: string;
  message: string;
}

/** A producer's input is invalid; nothing was enqueued. */
export class InputError extends SmsqError {
  readonly issues: InputIssue[];
  constructor(message: string, issues: InputIssue[], code = 'SMSQ_INVALID_INPUT') {
    super(code, message);
    this.issues = issues;
  }
}

/** Same idempotency key, different request body. */
export class IdempotencyConflictError extends SmsqError {
  constructor(key: string) {
    super('SMSQ_IDEMPOTENCY_CONFLICT', `Idempotency key "${key}" was already used with a different request`);
  }
}

/** The request exceeds a hard size limit (recipients or bytes). */
export class TooLargeError extends SmsqError {
  constructor(message: string) {
    super('SMSQ_TOO_LARGE', message);
  }
}

export class NotFoundError extends SmsqError {
  constructor(message: string) {
    super('SMSQ_NOT_FOUND', message);
  }
}

/** Configuration could not be parsed; the message names every bad variable. */
export class ConfigError extends SmsqError {
  constructor(message: string) {
    super('SMSQ_BAD_CONFIG', message);
  }
}

/** Turns anything thrown into an Error, keeping the original as `cause`. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return new Error(`Non-error thrown: ${text}`, { cause: value });
}
