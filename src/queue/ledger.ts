import type { Redis } from 'ioredis';
import type { Batch, BatchReceipt } from '../message/types.js';
import { batchRecipients } from '../message/types.js';
import type { BatchState } from './batch-state.js';

/**
 * What a ledger line records: a batch's final state, or `duplicate` (a provider accepted a batch
 * that was already sent: those recipients got it twice, and it cost credits).
 */
export type LedgerState = BatchState | 'duplicate';

/** One ledger line: one provider request that reached a final state. */
export interface LedgerEntry {
  /** Stream entry id (`<ms>-<seq>`), also the order of the ledger. */
  entryId: string;
  at: string;
  requestId: string;
  batchId: string;
  provider: string;
  state: LedgerState;
  recipients: number;
  accepted: number;
  invalid: number;
  segments: number;
  creditsEstimated: number;
  creditsCharged: number;
  /** True when creditsCharged is our estimate (the provider did not say). */
  creditsChargedIsEstimate: boolean;
  providerIds: string[];
  /**
   * Set on a `sent` line that corrects an earlier one: `late` (the batch had been recorded
   * `previousState`, e.g. unknown, and a receipt proved it sent; this line supersedes that one)
   * or `taken-over` (recorded by a run other than the batch's owner).
   */
  note?: string;
  previousState?: string;
}

export const LEDGER_FIELDS = [
  'at',
  'requestId',
  'batchId',
  'provider',
  'state',
  'recipients',
  'accepted',
  'invalid',
  'segments',
  'creditsEstimated',
  'creditsCharged',
  'creditsChargedIsEstimate',
  'providerIds',
  'note',
  'previousState',
] as const;

/** The stream fields of a batch's ledger entry, written atomically with its final state. */
export function ledgerFields(
  batch: Batch,
  state: LedgerState,
  receipt?: BatchReceipt,
): Record<string, string> {
  const recipients = batchRecipients(batch).length;
  const invalid = receipt ? countInvalid(batch, receipt) : 0;
  const charged = receipt ? receipt.creditsCharged : state === 'unknown' ? batch.estimatedCredits : 0;
  return {
    at: new Date().toISOString(),
    requestId: batch.requestId,
    batchId: batch.id,
    provider: batch.provider,
    state,
    recipients: String(recipients),
    accepted: String(receipt ? recipients - invalid : 0),
    invalid: String(invalid),
    // Credits are estimated at one per SMS part, so the estimate is also the part count.
    segments: String(batch.estimatedCredits),
    creditsEstimated: String(batch.estimatedCredits),
    creditsCharged: String(charged),
    creditsChargedIsEstimate: String(state === 'unknown' || Boolean(receipt?.creditsEstimated)),
    providerIds: JSON.stringify(receipt?.providerIds ?? []),
  };
}

/** The ledger line of a duplicate send: what the second acceptance cost. */
export function duplicateLedgerFields(batch: Batch, receipt: BatchReceipt): Record<string, string> {
  return ledgerFields(batch, 'duplicate', receipt);
}

/** Recipients of the batch the provider listed invalid (so accepted + invalid = recipients, always). */
export function countInvalid(batch: Batch, receipt: Pick<BatchReceipt, 'invalid'>): number {
  if (receipt.invalid.length === 0) return 0;
  const invalid = new Set(receipt.invalid);
  return batchRecipients(batch).filter((n) => invalid.has(n)).length;
}

function toEntry(id: string, flat: string[]): LedgerEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return {
    entryId: id,
    at: f.at ?? '',
    requestId: f.requestId ?? '',
    batchId: f.batchId ?? '',
    provider: f.provider ?? '',
    state: (f.state ?? 'sent') as LedgerState,
    recipients: Number(f.recipients ?? 0),
    accepted: Number(f.accepted ?? 0),
    invalid: Number(f.invalid ?? 0),
    segments: Number(f.segments ?? 0),
    creditsEstimated: Number(f.creditsEstimated ?? 0),
    creditsCharged: Number(f.creditsCharged ?? 0),
    creditsChargedIsEstimate: f.creditsChargedIsEstimate === 'true',
    providerIds: JSON.parse(f.providerIds ?? '[]') as string[],
    ...(f.note ? { note: f.note } : {}),
    ...(f.previousState ? { previousState: f.previousState } : {}),
  };
}

/** Streams the ledger in order, from `since` (a Date) to `until`, a page at a time. */
export async function* readLedger(
  redis: Redis,
  key: string,
  opts: { since?: Date; until?: Date; pageSize?: number } = {},
): AsyncGenerator<LedgerEntry> {
  let start = opts.since ? String(opts.since.getTime()) : '-';
  const end = opts.until ? String(opts.until.getTime()) : '+';
  const pageSize = opts.pageSize ?? 500;
  for (;;) {
    const page = await redis.xrange(key, start, end, 'COUNT', pageSize);
    for (const [id, fields] of page) yield toEntry(id, fields);
    if (page.length < pageSize) return;
    start = `(${page[page.length - 1]![0]}`;
  }
}
