import type { Batch } from '../../../src/message/types.js';
import type { SmsProvider } from '../../../src/providers/types.js';

/** How one scripted fault is played: through another provider, on another batch, signal or call. */
export interface FaultPlan {
  /** Send through this provider instead (e.g. one aimed at a port nothing listens on). */
  provider?: SmsProvider;
  /** Send this batch instead. */
  batch?: Batch;
  /** The caller's signal (e.g. aborted once the fake has the request). */
  signal?: AbortSignal;
  /** `lookup`: the row is reached by a lookup of the batch, not by sending it. */
  call?: 'send' | 'lookup';
}

/** Scripts the fault that reaches one row; may send first (a lookup row needs a sent batch). */
export type Fault = (batch: Batch) => Promise<FaultPlan | void> | FaultPlan | void;

/** A provider under test with its loopback fake (or in-process), as the conformance suite drives it. */
export interface ConformanceHarness {
  provider: SmsProvider;
  /** Every recipient the fake treats as sent, each time it was (a duplicate appears twice). */
  delivered(): string[];
  /** Sets the account's credit: 0 runs it out, more tops it up. */
  setCredits(credits: number): void;
  /** Scripts the next send to answer 429 with this `Retry-After`. */
  rateLimitNext(retryAfter: string): void;
  /** The fault that reaches each row of the provider's decision table, by its `when`. */
  faults: Readonly<Record<string, Fault>>;
  /** Rows no real fault can reach, each with why (its unit test covers it). */
  unreachable: Readonly<Record<string, string>>;
  /** The rows a drop after the provider acted, and a provider that never answers, reach. */
  dropAfterSend: string;
  hang: string;
  close(): Promise<void>;
}

/** What each provider folder's tests give the suite. */
export interface ConformanceAdapter {
  /** Whether the provider can look an ambiguous batch up (the suite checks it says so truly). */
  lookup: boolean;
  /** Starts a fresh provider and fake; every call of the provider ends within `timeoutMs`. */
  start(opts: { timeoutMs: number }): Promise<ConformanceHarness>;
}

/** The receipt's recipients, flat. */
export const recipientsOf = (batch: Batch): string[] => batch.messages.flatMap((m) => m.to);

/** Aborts once `ready` resolves (the fake has read the request): a caller that gives up mid-call. */
export function abortWhen(ready: Promise<unknown>): AbortSignal {
  const controller = new AbortController();
  void ready.then(() => controller.abort());
  return controller.signal;
}
