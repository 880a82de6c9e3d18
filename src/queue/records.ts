import type { Redis } from 'ioredis';
import type { SendWindow } from '../message/send-window.js';
import type { InvalidRecipient } from '../message/recipients.js';
import type { Batch, BatchReceipt, ProviderId, StoredReceipt } from '../message/types.js';
import { isFinalBatchState, type BatchState } from './batch-state.js';
import type { SmsqKeys } from './names.js';

/** A request as stored (`<prefix>:req:<id>`). */
export interface RequestRecord {
  id: string;
  createdAt: string;
  state: 'queued' | 'sending' | 'completed';
  finishedAt?: string;
  provider?: ProviderId;
  total: number;
  invalid: InvalidRecipient[];
  duplicates: number;
  suppressed: number;
  estimatedCredits: number;
  /** The 202 body, replayed for a repeated idempotency key. */
  accepted: string;
  batchIds: string[];
  planned: boolean;
  cancelled: boolean;
  /** Recipients counted `failed` without a batch: the enqueue was interrupted (see enqueue-repair.ts). */
  unsentFailed: number;
  sendAt?: string;
  expiresAt?: string;
}

/** A batch as stored (`<prefix>:batch:<id>`). */
export interface BatchRecord {
  batch: Batch;
  state: BatchState;
  attempts: number;
  expiresAt?: string;
  sendAt?: string;
  /** Send window (with its time zone) checked before each send attempt. */
  window?: SendWindow;
  timezone?: string;
  receipt?: StoredReceipt;
  error?: string;
  updatedAt?: string;
}

const TRANSITION_SCRIPT = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', ''} end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == state then allowed = true end
end
if not allowed then return {'conflict', state} end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
local fields = cjson.decode(ARGV[3])
for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[2], '*', unpack(cjson.decode(ARGV[5])))
end
if ARGV[2] == 'sending' and redis.call('HGET', KEYS[3], 'state') == 'queued' then
  redis.call('HSET', KEYS[3], 'state', 'sending')
end
return {'ok', state}
`;

const CREATE_REQUEST_SCRIPT = `
if KEYS[1] ~= KEYS[2] then
  local existing = redis.call('GET', KEYS[1])
  if existing then return existing end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
redis.call('HSET', KEYS[2], unpack(cjson.decode(ARGV[3])))
return false
`;

type TransitionResult = { ok: true; from: BatchState } | { ok: false; current?: BatchState };

interface SmsqCommands {
  smsqTransition(
    batchKey: string,
    ledgerKey: string,
    requestKey: string,
    from: string,
    to: string,
    fields: string,
    incrementAttempts: string,
    ledgerEntry: string,
  ): Promise<[string, string]>;
  smsqCreateRequest(
    idemKey: string,
    requestKey: string,
    idemValue: string,
    ttlS: number,
    fields: string,
  ): Promise<string | null>;
}

function commands(redis: Redis): SmsqCommands {
  const r = redis as Redis & Partial<SmsqCommands>;
  if (!r.smsqTransition) {
    redis.defineCommand('smsqTransition', { numberOfKeys: 3, lua: TRANSITION_SCRIPT });
    redis.defineCommand('smsqCreateRequest', { numberOfKeys: 2, lua: CREATE_REQUEST_SCRIPT });
  }
  return r as unknown as SmsqCommands;
}

function toHashFields(values: Record<string, string | number | boolean | undefined | object>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    out.push(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  return out;
}

function storedReceipt({ accepted: _accepted, ...rest }: BatchReceipt): StoredReceipt {
  return rest;
}

function parseJson<T>(value: string | undefined, fallback: T): T {
  return value === undefined || value === '' ? fallback : (JSON.parse(value) as T);
}

/** Reads and writes request and batch records. All state changes of a batch go through `transition`. */
export class RecordStore {
  constructor(
    readonly redis: Redis,
    readonly keys: SmsqKeys,
  ) {}

  /**
   * Creates a request record, atomically with its idempotency key when one is given.
   * Returns the existing idempotency value (`<id>|<bodyHash>`) when the key was already used.
   */
  async createRequest(
    record: Omit<RequestRecord, 'batchIds' | 'planned' | 'cancelled' | 'suppressed' | 'state' | 'unsentFailed'>,
    idempotency?: { hash: string; bodyHash: string; ttlS: number },
  ): Promise<string | null> {
    const requestKey = this.keys.request(record.id);
    const fields = toHashFields({ ...record, state: 'queued', suppressed: 0, batchIds: [] });
    return commands(this.redis).smsqCreateRequest(
      idempotency ? this.keys.idempotency(idempotency.hash) : requestKey,
      requestKey,
      idempotency ? `${record.id}|${idempotency.bodyHash}` : '',
      idempotency?.ttlS ?? 0,
      JSON.stringify(fields),
    );
  }

  async deleteRequest(id: string, idempotencyHash?: string): Promise<void> {
    const keys = [this.keys.request(id)];
    if (idempotencyHash) keys.push(this.keys.idempotency(idempotencyHash));
    await this.redis.del(...keys);
  }

  async getRequest(id: string): Promise<RequestRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.request(id));
    if (!h.id) return undefined;
    return {
      id: h.id,
      createdAt: h.createdAt ?? '',
      state: (h.state as RequestRecord['state']) ?? 'queued',
      finishedAt: h.finishedAt,
      provider: h.provider as ProviderId | undefined,
      total: Number(h.total ?? 0),
      invalid: parseJson(h.invalid, []),
      duplicates: Number(h.duplicates ?? 0),
      suppressed: Number(h.suppressed ?? 0),
      estimatedCredits: Number(h.estimatedCredits ?? 0),
      accepted: h.accepted ?? '{}',
      batchIds: parseJson(h.batchIds, []),
      planned: h.planned === 'true',
      cancelled: h.cancelled === 'true',
      unsentFailed: Number(h.unsentFailed ?? 0),
      sendAt: h.sendAt,
      expiresAt: h.expiresAt,
    };
  }

  /**
   * Stores a request's plan once: its batches (state `planned`) and the suppressed count, in one
   * transaction. A retried splitter finds `planned` set and reuses the stored batches.
   */
  async savePlan(
    requestId: string,
    plan: { provider: ProviderId; suppressed: number; batches: BatchRecord[] },
  ): Promise<void> {
    const multi = this.redis.multi();
    for (const record of plan.batches) {
      multi.hset(this.keys.batch(record.batch.id), ...this.batchFields(record));
    }
    multi.hset(
      this.keys.request(requestId),
      ...toHashFields({
        provider: plan.provider,
        suppressed: plan.suppressed,
        batchIds: plan.batches.map((b) => b.batch.id),
        planned: true,
      }),
    );
    await multi.exec();
  }

  private batchFields(record: BatchRecord): string[] {
    return toHashFields({
      batch: record.batch,
      state: record.state,
      attempts: record.attempts,
      expiresAt: record.expiresAt,
      sendAt: record.sendAt,
      window: record.window,
      timezone: record.timezone,
      error: record.error,
      updatedAt: new Date().toISOString(),
    });
  }

  async getBatch(id: string): Promise<BatchRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.batch(id));
    if (!h.batch) return undefined;
    return {
      batch: JSON.parse(h.batch) as Batch,
      state: h.state as BatchState,
      attempts: Number(h.attempts ?? 0),
      expiresAt: h.expiresAt,
      sendAt: h.sendAt,
      ...(h.window ? { window: JSON.parse(h.window) as SendWindow, timezone: h.timezone } : {}),
      receipt: h.receipt ? (JSON.parse(h.receipt) as StoredReceipt) : undefined,
      error: h.error,
      updatedAt: h.updatedAt,
    };
  }

  async getBatches(ids: readonly string[]): Promise<BatchRecord[]> {
    const records = await Promise.all(ids.map((id) => this.getBatch(id)));
    return records.filter((r): r is BatchRecord => r !== undefined);
  }

  /**
   * Moves a batch from one of `from` to `to`, atomically with its fields, an attempt count and
   * (for final states) its ledger entry. Fails without writing when the batch is in another state.
   */
  async transition(
    batch: Batch,
    from: readonly BatchState[],
    to: BatchState,
    opts: {
      receipt?: BatchReceipt;
      error?: string;
      countAttempt?: boolean;
      ledger?: Record<string, string>;
    } = {},
  ): Promise<TransitionResult> {
    const fields = toHashFields({
      updatedAt: new Date().toISOString(),
      receipt: opts.receipt && storedReceipt(opts.receipt),
      error: opts.error,
    });
    const fieldObject: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) fieldObject[fields[i]!] = fields[i + 1]!;
    const ledger = opts.ledger ? JSON.stringify(Object.entries(opts.ledger).flat()) : '';
    const [status, current] = await commands(this.redis).smsqTransition(
      this.keys.batch(batch.id),
      this.keys.ledger,
      this.keys.request(batch.requestId),
      from.join(','),
      to,
      JSON.stringify(fieldObject),
      opts.countAttempt ? '1' : '0',
      ledger,
    );
    if (status === 'ok') return { ok: true, from: current as BatchState };
    return { ok: false, current: current ? (current as BatchState) : undefined };
  }

  /** Marks a request completed and starts the retention clock on its records. */
  async completeRequest(record: RequestRecord, ttlS: number): Promise<string> {
    const finishedAt = record.finishedAt ?? new Date().toISOString();
    const multi = this.redis.multi();
    multi.hset(this.keys.request(record.id), 'state', 'completed', 'finishedAt', finishedAt);
    multi.expire(this.keys.request(record.id), ttlS);
    for (const id of record.batchIds) multi.expire(this.keys.batch(id), ttlS);
    await multi.exec();
    return finishedAt;
  }

  async markCancelled(id: string): Promise<void> {
    await this.redis.hset(this.keys.request(id), 'cancelled', 'true');
  }
}

export { isFinalBatchState };
