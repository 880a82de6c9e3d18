import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
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

/** Whether a ledger line of `state` comes with a receipt (its batch was accepted). */
const hasReceipt = (state: LedgerState) => state === 'sent' || state === 'duplicate';

/**
 * The stream fields of a batch's ledger entry, written atomically with its final state. One entry
 * per provider request, so its size counts per batch: what a reader can derive is left out (see
 * `toEntry`): the time (the entry id is when Redis recorded it), the request id (the batch id's
 * part before its first `-`, when it is that), the segments (the credit estimate is one per SMS
 * part), `accepted` when it is recipients less invalid (or 0 without a receipt), and a false
 * `creditsChargedIsEstimate`.
 */
export function ledgerFields(
  batch: Batch,
  state: LedgerState,
  receipt?: BatchReceipt,
): Record<string, string> {
  const recipients = batchRecipients(batch).length;
  const invalid = receipt ? countInvalid(batch, receipt) : 0;
  const accepted = receipt ? recipients - invalid : 0;
  const charged = receipt ? receipt.creditsCharged : state === 'unknown' ? batch.estimatedCredits : 0;
  const chargedIsEstimate = state === 'unknown' || Boolean(receipt?.creditsEstimated);
  return {
    ...(requestIdOf(batch.id) === batch.requestId ? {} : { requestId: batch.requestId }),
    batchId: batch.id,
    provider: batch.provider,
    state,
    recipients: String(recipients),
    ...(accepted === (hasReceipt(state) ? recipients - invalid : 0) ? {} : { accepted: String(accepted) }),
    invalid: String(invalid),
    creditsEstimated: String(batch.estimatedCredits),
    creditsCharged: String(charged),
    ...(chargedIsEstimate ? { creditsChargedIsEstimate: 'true' } : {}),
    providerIds: JSON.stringify(receipt?.providerIds ?? []),
  };
}

/** The request id a batch id starts with (`<requestId>-<n>…`), when it holds a `-`; request ids hold none. */
function requestIdOf(batchId: string): string | undefined {
  const dash = batchId.indexOf('-');
  return dash > 0 ? batchId.slice(0, dash) : undefined;
}

/** When a stream entry was added: its id's milliseconds, as ISO. */
function entryTime(id: string): string {
  return new Date(Number(id.slice(0, id.indexOf('-')))).toISOString();
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

/**
 * A ledger line's `accepted`, from its stream fields: as written when it is there (lines of
 * earlier versions, or a count that differs from the rule), else recipients less invalid for a
 * line with a receipt, else 0.
 */
export function acceptedOf(f: Readonly<Record<string, string>>): number {
  if (f.accepted !== undefined) return Number(f.accepted);
  const state = (f.state ?? 'sent') as LedgerState;
  return hasReceipt(state) ? Number(f.recipients ?? 0) - Number(f.invalid ?? 0) : 0;
}

/** A ledger line from its stream entry; entries written by earlier versions hold every field. */
function toEntry(id: string, flat: string[]): LedgerEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  const state = (f.state ?? 'sent') as LedgerState;
  const recipients = Number(f.recipients ?? 0);
  const invalid = Number(f.invalid ?? 0);
  const creditsEstimated = Number(f.creditsEstimated ?? 0);
  const batchId = f.batchId ?? '';
  return {
    entryId: id,
    at: f.at ?? entryTime(id),
    requestId: f.requestId ?? requestIdOf(batchId) ?? '',
    batchId,
    provider: f.provider ?? '',
    state,
    recipients,
    accepted: acceptedOf(f),
    invalid,
    segments: f.segments !== undefined ? Number(f.segments) : creditsEstimated,
    creditsEstimated,
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

/** The id of the ledger's last entry, or `0-0` when it has none: where "new entries only" start. */
export async function lastLedgerId(redis: Redis, key: string): Promise<string> {
  const [last] = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
  return last?.[0] ?? '0-0';
}

/**
 * Streams ledger entries as they are appended after `after` (a stream id; default: the last entry
 * now, so only new ones), until `signal` aborts. Blocks (XREAD BLOCK) on a connection of its own,
 * which waits through a Redis restart, so the caller's connection stays free.
 */
export async function* followLedger(
  redis: Redis,
  key: string,
  opts: { after?: string; signal: AbortSignal; blockMs?: number; count?: number },
): AsyncGenerator<LedgerEntry> {
  let last = opts.after ?? (await lastLedgerId(redis, key));
  const reader = redis.duplicate({
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    lazyConnect: false,
  });
  // Ends a blocked XREAD at once instead of at its next timeout.
  const stop = () => reader.disconnect();
  opts.signal.addEventListener('abort', stop, { once: true });
  try {
    while (!opts.signal.aborted) {
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = await reader.xread(
          'COUNT',
          opts.count ?? 500,
          'BLOCK',
          opts.blockMs ?? 5_000,
          'STREAMS',
          key,
          last,
        );
      } catch (err) {
        if (opts.signal.aborted) return;
        throw err;
      }
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          last = id;
          yield toEntry(id, fields);
        }
      }
    }
  } finally {
    opts.signal.removeEventListener('abort', stop);
    reader.disconnect();
  }
}

/** Ledger entries removed per XTRIM call at most, so a large first trim never blocks Redis for long. */
const TRIM_STEP = 10_000;

/**
 * Removes ledger entries older than `retentionDays` (by their stream id, which is their time):
 * whole stream nodes first (XTRIM MINID ~, LIMIT-ed), then the few older ones left in the node at
 * the boundary. Cheap when there is nothing to trim. Returns how many entries were removed.
 */
export async function trimLedger(
  redis: Redis,
  key: string,
  retentionDays: number,
  now = Date.now(),
): Promise<number> {
  if (retentionDays <= 0) return 0;
  const minId = String(now - retentionDays * 24 * 3600 * 1000);
  let removed = 0;
  for (;;) {
    const n = await redis.xtrim(key, 'MINID', '~', minId, 'LIMIT', TRIM_STEP);
    removed += n;
    if (n === 0) break;
  }
  return removed + (await redis.xtrim(key, 'MINID', minId));
}

/** How often the workers trim the ledger (and once at start). */
export const LEDGER_TRIM_INTERVAL_MS = 3_600_000;

/**
 * Trims the ledger now and every `intervalMs` (see `trimLedger`); several worker processes doing
 * the same is harmless. `stop` clears the timer and waits for a trim in flight.
 */
export function startLedgerTrim(opts: {
  redis: Redis;
  key: string;
  retentionDays: number;
  logger: Logger;
  intervalMs?: number;
}): { stop(): Promise<void> } {
  if (opts.retentionDays <= 0) return { stop: () => Promise.resolve() };
  const log = opts.logger.child({ module: 'ledger' });
  let running: Promise<void> | undefined;
  const trim = () => {
    running ??= trimLedger(opts.redis, opts.key, opts.retentionDays)
      .then((removed) => {
        if (removed > 0)
          log.info(
            { removed, retentionDays: opts.retentionDays },
            'Ledger entries past their retention removed',
          );
      })
      .catch((err: unknown) => log.warn({ err }, 'Ledger trim failed; trying again at the next interval'))
      .finally(() => {
        running = undefined;
      });
  };
  trim();
  const timer = setInterval(trim, opts.intervalMs ?? LEDGER_TRIM_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
