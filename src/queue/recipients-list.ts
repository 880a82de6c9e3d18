import { InputError } from '../errors.js';
import { batchRecipients, type ProviderId } from '../message/types.js';
import { isFinalBatchState, OUTCOME_OF_STATE, type BatchState } from './batch-state.js';
import { DeliveryStore, DELIVERY_STATUSES, type RecipientDelivery } from './delivery-store.js';
import type { BatchRecord, RecordStore } from './records.js';

/** A recipient's outcome (see the README's outcome table). */
export const OUTCOMES = ['accepted', 'invalid', 'rejected', 'failed', 'expired', 'unknown'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** What `status=` can filter by: an outcome or a delivery status (`expired` matches both kinds). */
export const RECIPIENT_STATUSES = [...new Set([...OUTCOMES, ...DELIVERY_STATUSES])] as [string, ...string[]];

/** One recipient of a request, as `GET /v1/messages/:id/recipients` lists it. */
export interface RecipientItem {
  to: string;
  /** Null while its batch is still in flight. */
  outcome: Outcome | null;
  /** Null unless the provider accepted it. */
  delivery: RecipientDelivery | null;
  /** Null for a number refused at enqueue (it never had a batch). */
  provider: ProviderId | null;
  providerId?: string;
  batchId: string | null;
}

export interface RecipientPage {
  items: RecipientItem[];
  nextCursor: string | null;
}

/** Where a page starts: a batch and an index in it, or an index in the enqueue-time invalid list. */
type Cursor = { b: string; i: number } | { v: number };

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeCursor(text: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof c.b === 'string' && Number.isInteger(c.i)) return { b: c.b, i: c.i as number };
    if (Number.isInteger(c.v)) return { v: c.v as number };
  } catch {
    // Reported below.
  }
  throw new InputError('Invalid cursor', [{ path: 'cursor', message: 'not a cursor this API returned' }]);
}

/** Provider ids by recipient index, where known: one id for the whole batch, or OVH's verified order. */
function providerIdsOf(
  record: BatchRecord,
  notes: Record<string, string>,
  accepted: number[],
): Map<number, string> {
  const ids = record.receipt?.providerIds ?? [];
  const out = new Map<number, string>();
  if (ids.length === 1 && accepted.length !== 1) {
    for (const i of accepted) out.set(i, ids[0]!);
    return out;
  }
  if (ids.length === accepted.length && (notes.order === 'kept' || ids.length === 1))
    accepted.forEach((index, k) => out.set(index, ids[k]!));
  for (const [note, index] of Object.entries(notes))
    if (note.startsWith('id:')) out.set(Number(index), note.slice(3));
  return out;
}

function batchItems(
  record: BatchRecord,
  delivery: (RecipientDelivery | null)[] | undefined,
  notes: Record<string, string>,
): RecipientItem[] {
  const { batch, state } = record;
  const invalid = new Set(record.receipt?.invalid ?? []);
  const recipients = batchRecipients(batch);
  const accepted = state === 'sent' ? recipients.flatMap((to, i) => (invalid.has(to) ? [] : [i])) : [];
  const ids = state === 'sent' ? providerIdsOf(record, notes, accepted) : new Map<number, string>();
  return recipients.map((to, i) => {
    let outcome: Outcome | null = null;
    if (state === 'sent') outcome = invalid.has(to) ? 'invalid' : 'accepted';
    else if (isFinalBatchState(state) && state !== 'moved')
      outcome = OUTCOME_OF_STATE[state as Exclude<BatchState, 'planned' | 'sending' | 'moved'>];
    const providerId = ids.get(i);
    return {
      to,
      outcome,
      delivery: outcome === 'accepted' ? (delivery?.[i] ?? { status: 'pending' }) : null,
      provider: batch.provider,
      ...(providerId !== undefined ? { providerId } : {}),
      batchId: batch.id,
    };
  });
}

const matches = (item: RecipientItem, status: string | undefined) =>
  status === undefined || item.outcome === status || item.delivery?.status === status;

/**
 * A page of a request's recipients in a stable order: its batches in plan order, each batch's
 * recipients in batch order, then the numbers refused at enqueue. Undefined for an unknown request.
 */
export async function listRecipients(
  store: RecordStore,
  id: string,
  opts: { status?: string; limit: number; cursor?: string },
): Promise<RecipientPage | undefined> {
  const request = await store.getRequest(id);
  if (!request) return undefined;
  const deliveries = new DeliveryStore(store.redis, store.keys);
  const cursor = opts.cursor ? decodeCursor(opts.cursor) : { b: request.batchIds[0] ?? '', i: 0 };
  const items: RecipientItem[] = [];
  let start = 'b' in cursor ? request.batchIds.indexOf(cursor.b) : request.batchIds.length;
  if ('b' in cursor && start < 0) {
    if (request.batchIds.length > 0)
      throw new InputError('Invalid cursor', [
        { path: 'cursor', message: 'its batch is no longer part of this request' },
      ]);
    start = 0;
  }
  for (let b = start; b < request.batchIds.length; b++) {
    const batchId = request.batchIds[b]!;
    const record = await store.getBatch(batchId);
    if (!record) continue;
    const delivery = record.state === 'sent' ? await deliveries.getBatch(batchId) : undefined;
    const all = batchItems(record, delivery?.recipients, delivery?.notes ?? {});
    const from = 'b' in cursor && b === start ? cursor.i : 0;
    for (let i = from; i < all.length; i++) {
      const item = all[i]!;
      if (!matches(item, opts.status)) continue;
      if (items.length === opts.limit) return { items, nextCursor: encodeCursor({ b: batchId, i }) };
      items.push(item);
    }
  }
  const fromInvalid = 'v' in cursor ? cursor.v : 0;
  for (let v = fromInvalid; v < request.invalid.length; v++) {
    const item: RecipientItem = {
      to: request.invalid[v]!.to,
      outcome: 'invalid',
      delivery: null,
      provider: null,
      batchId: null,
    };
    if (!matches(item, opts.status)) continue;
    if (items.length === opts.limit) return { items, nextCursor: encodeCursor({ v }) };
    items.push(item);
  }
  return { items, nextCursor: null };
}
