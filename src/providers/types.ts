import type { Batch, BatchReceipt, ProviderId, ProviderLimits } from '../message/types.js';

export type { ProviderLimits } from '../message/types.js';

/**
 * Which calls go first when the allowance is short: `urgent` (sends of high-priority requests,
 * e.g. one-time codes), then `normal` (other sends, lookups, probes), then `background`
 * (delivery-report polls). A call waits while one of a class before it is waiting.
 */
export type CallPriority = 'urgent' | 'normal' | 'background';

/**
 * One call taken from the allowance. The allowance counts it from when it was granted; a call
 * that leaves much later (a starved process, a connection still opening) would be counted too
 * early, so whoever makes the call says when its request is written, and a late one is counted
 * from then instead.
 */
export interface CallGrant {
  /** The request is being written to the provider's socket. */
  readonly written: () => void;
}

/**
 * Waits until one more call to the provider fits its request allowance (sends, lookups, probes and
 * credit checks alike). Rejects when `signal` fires while waiting.
 */
export type CallMeter = (signal: AbortSignal, priority?: CallPriority) => Promise<CallGrant>;

/** The grant of a meter that counts nothing. */
export const NOTHING_COUNTED: CallGrant = { written: () => {} };

/** A meter that never waits (tests of a provider alone, the simulator). */
export const UNMETERED: CallMeter = () => Promise.resolve(NOTHING_COUNTED);

export interface SendOptions {
  signal: AbortSignal;
  /**
   * Called when the provider accepts the batch after `send` already settled with an error (a 2xx
   * that arrived after our deadline): the receipt proves the batch was sent and must be recorded.
   */
  onLateReceipt?: (receipt: BatchReceipt) => void;
  /** Called when the request is being written to the provider's socket (see CallGrant). */
  onWritten?: () => void;
}

export interface LookupOptions {
  signal: AbortSignal;
  /** When the batch went `sending` (ms since the epoch): provider records older than this are not its. */
  sendingSince: number;
}

export interface ProbeOptions {
  signal: AbortSignal;
  /** Credits the smallest waiting batch needs: the account can send again only with at least this much. */
  neededCredits?: number;
}

/**
 * One SMS provider account. `send` makes exactly one HTTP request and throws only errors from
 * `src/errors.ts` (TransientError, RateLimitedError, PermanentError, AmbiguousError, AccountError).
 * `send` does not wait for the account's allowance: its caller (the batch processor) has taken
 * the call from it before marking the call begun. Every other call (lookups, probes, credit
 * checks, delivery reports) awaits the provider's meter itself.
 */
export interface SmsProvider {
  readonly id: ProviderId;
  readonly limits: ProviderLimits;
  send(batch: Batch, opts: SendOptions): Promise<BatchReceipt>;
  /**
   * Reconciles an ambiguous send: the receipt if the provider has the batch, sent or still pending
   * (OVH: by tag in `/outgoing`, by receiver and text in `/jobs`), else undefined. Throws a
   * DeliveryError when the lookup itself failed (RateLimitedError for a 429).
   */
  lookup?(batch: Batch, opts: LookupOptions): Promise<BatchReceipt | undefined>;
  /**
   * With `lookup`: how long (ms) an ambiguous batch keeps being looked up, once the provider
   * deadline has passed, before a lookup that finds nothing allows a resend.
   */
  readonly settleMs?: number;
  /** True when the account can send again (credit ≥ `neededCredits`, credentials accepted); drives automatic resume. */
  probe(opts: ProbeOptions): Promise<boolean>;
  close(): Promise<void>;
}
