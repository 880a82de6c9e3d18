import type { Batch, BatchReceipt, ProviderId } from '../message/types.js';

export interface ProviderLimits {
  /** Message objects (distinct texts) in one provider request. */
  maxMessagesPerRequest: number;
  /** Recipients of one message object. */
  maxRecipientsPerMessage: number;
}

/**
 * One SMS provider account. `send` makes exactly one HTTP request and throws only errors from
 * `src/errors.ts` (TransientError, RateLimitedError, PermanentError, AmbiguousError, AccountError).
 */
export interface SmsProvider {
  readonly id: ProviderId;
  readonly limits: ProviderLimits;
  send(batch: Batch, opts: { signal: AbortSignal }): Promise<BatchReceipt>;
  /** Reconciles an ambiguous send: the receipt if the provider has the batch (OVH: by tag), else undefined. */
  lookup?(batch: Batch, opts: { signal: AbortSignal }): Promise<BatchReceipt | undefined>;
  /** True when the account can send again (credit left, credentials accepted); drives automatic resume. */
  probe(opts: { signal: AbortSignal }): Promise<boolean>;
  close(): Promise<void>;
}
