import { brotliCompressSync, brotliDecompressSync, constants as zlib, inflateRawSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import type { SendWindow } from '../message/send-window.js';
import type { InvalidRecipient } from '../message/recipients.js';
import type { Batch, BatchReceipt, ProviderId, StoredReceipt } from '../message/types.js';
import { acceptedOf } from './ledger.js';
import { isFinalBatchState, type BatchState } from './batch-state.js';
import type { SmsqKeys } from './names.js';
import { withScripts } from '../redis.js';

/** A request as stored (`<prefix>:req:<id>`). */
export interface RequestRecord {
  id: string;
  createdAt: string;
  state: 'queued' | 'sending' | 'completed';
  finishedAt?: string;
  provider?: ProviderId;
  total: number;
  invalid: InvalidRecipient[];
  duplicates?: number;
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
  /** Recipients a provider accepted a second time for this request (duplicate receipts; see `recordReceipt`). */
  duplicatesSent: number;
  /** The producer's `tag`, echoed in webhooks. */
  tag?: string;
  /** Where this request's webhooks go (its `callbackUrl`, else SMSQ_WEBHOOK_URL); unset: no webhooks. */
  webhookUrl?: string;
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
  /** The run that holds the batch in `sending` (its job lock token and attempt): only it settles the batch. */
  owner?: string;
  /** When the owner's provider call began (Redis time, ms); unset while no call has started. */
  callAt?: number;
  /** True once that call returned (an error): it is no longer in flight. */
  callEnded?: boolean;
  /** Consecutive failed lookups of an ambiguous batch. */
  lookupFailures?: number;
  /** Lookups made since the batch's last call (drives their backoff). */
  lookups?: number;
  /** Duplicate receipts recorded for this batch. */
  duplicates?: number;
  /** Providers this batch may fail over between, in order (its route); absent: it never moves. */
  route?: ProviderId[];
  /** Providers it failed over from, oldest first. */
  history?: BatchMove[];
  /** Once `moved`: the ids of the batches that replaced it. */
  movedTo?: string[];
}

/** One failover of a batch: the provider it left, why, and when (ISO). */
export interface BatchMove {
  provider: ProviderId;
  reason: 'paused' | 'circuit-open';
  at: string;
}

const TRANSITION_SCRIPT = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', ''} end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == state then allowed = true end
end
if not allowed then return {'conflict', state} end
if state == 'sending' and ARGV[6] ~= '' then
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if ARGV[6] == '-' then
    if redis.call('HEXISTS', KEYS[1], 'callAt') == 1 then return {'conflict', state} end
  elseif owner ~= ARGV[6] then
    return {'conflict', state}
  end
end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[7]) end
if ARGV[2] ~= 'sending' then redis.call('HDEL', KEYS[1], 'owner') end
if ARGV[2] == 'planned' then redis.call('HDEL', KEYS[1], 'callAt', 'callEnded', 'lookups', 'lookupFailures') end
if ARGV[8] == '1' then redis.call('HSET', KEYS[1], 'callEnded', '1') end
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

/**
 * planned → sending for one run (the owner), unless the request was cancelled: then the batch
 * ends `failed` here, atomically with the check, so nothing is sent after a cancel answered.
 */
const CLAIM_SCRIPT = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', ''} end
if state ~= 'planned' then return {'conflict', state} end
if redis.call('HGET', KEYS[2], 'cancelled') == 'true' then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'error', 'cancelled', 'updatedAt', ARGV[2])
  return {'cancelled', state}
end
redis.call('HSET', KEYS[1], 'state', 'sending', 'owner', ARGV[1], 'updatedAt', ARGV[2])
redis.call('HDEL', KEYS[1], 'callAt', 'callEnded', 'lookups', 'lookupFailures')
if redis.call('HGET', KEYS[2], 'state') == 'queued' then
  redis.call('HSET', KEYS[2], 'state', 'sending')
end
return {'ok', state}
`;

/**
 * The last check before a provider call: the batch is still this run's, the job lock is still
 * this run's token (a worker frozen past its lock has lost it), and the request is not cancelled.
 * Marks the call as begun (Redis time) and counts the attempt.
 */
const BEGIN_CALL_SCRIPT = `
local h = redis.call('HMGET', KEYS[1], 'state', 'owner')
if h[1] ~= 'sending' or h[2] ~= ARGV[1] then return {'lost', h[1] or ''} end
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then return {'lost', 'lock'} end
if redis.call('HGET', KEYS[2], 'cancelled') == 'true' then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'error', 'cancelled', 'updatedAt', ARGV[3])
  redis.call('HDEL', KEYS[1], 'owner')
  return {'cancelled', ''}
end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'callAt', ms)
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return {'ok', tostring(ms)}
`;

/**
 * Records a provider's receipt whatever the batch's state, since a receipt is proof the batch
 * was sent: the owner's `sending` → sent; taken over (planned, or another run's sending) → sent;
 * unknown, failed, rejected, expired → upgraded to sent (ledger entry says so); already sent →
 * the same send when the provider ids overlap, else a duplicate (ledger entry, counted).
 */
const RECORD_RECEIPT_SCRIPT = `
local h = redis.call('HMGET', KEYS[1], 'state', 'owner', 'receipt', 'receiptIds')
local state = h[1]
if not state then return {'missing', ''} end
local function settle(kind, entry)
  redis.call('HSET', KEYS[1], 'state', 'sent', 'receipt', ARGV[2], 'updatedAt', ARGV[7])
  redis.call('HDEL', KEYS[1], 'owner', 'error', 'receiptIds')
  local fields = cjson.decode(entry)
  if kind ~= 'sent' then
    table.insert(fields, 'note')
    table.insert(fields, kind)
    table.insert(fields, 'previousState')
    table.insert(fields, state)
  end
  redis.call('XADD', KEYS[2], '*', unpack(fields))
  return {kind, state}
end
if state == 'sending' and ARGV[1] ~= '' and h[2] == ARGV[1] then return settle('sent', ARGV[3]) end
if state == 'sending' or state == 'planned' then return settle('taken-over', ARGV[3]) end
if state == 'sent' then
  local seen = {}
  if h[4] then
    -- A compacted record keeps its provider ids joined by commas (see COMPACT_SCRIPT).
    for id in string.gmatch(h[4], '[^,]+') do seen[id] = true end
  else
    local stored = cjson.decode(h[3] or '{}')
    for _, id in ipairs(stored.providerIds or {}) do seen[id] = true end
  end
  for _, id in ipairs(cjson.decode(ARGV[5])) do
    if seen[id] then return {'same', state} end
  end
  local fields = cjson.decode(ARGV[4])
  redis.call('XADD', KEYS[2], '*', unpack(fields))
  redis.call('HINCRBY', KEYS[3], 'duplicatesSent', ARGV[6])
  redis.call('HINCRBY', KEYS[1], 'duplicates', 1)
  return {'duplicate', state}
end
return settle('late', ARGV[3])
`;

/**
 * Cancels a request in one step: flags it (so no later claim or call can start) and fails every
 * batch that no call has begun for. Returns the number of batches cancelled, or -1 when missing.
 */
const CANCEL_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], 'cancelled', 'true')
local ids = cjson.decode(redis.call('HGET', KEYS[1], 'batchIds') or '[]')
local n = 0
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  local h = redis.call('HMGET', key, 'state', 'callAt')
  if h[1] == 'planned' or (h[1] == 'sending' and not h[2]) then
    redis.call('HSET', key, 'state', 'failed', 'error', 'cancelled', 'updatedAt', ARGV[2])
    redis.call('HDEL', key, 'owner')
    n = n + 1
  end
end
return n
`;

/**
 * Stores a request's plan once: nothing when it is already planned, never over an existing batch
 * record, and with the `cancelled` flag read inside (a cancel that raced planning cancels).
 */
const SAVE_PLAN_SCRIPT = `
if redis.call('HGET', KEYS[1], 'planned') == 'true' then return 'exists' end
local cancelled = redis.call('HGET', KEYS[1], 'cancelled') == 'true'
for _, b in ipairs(cjson.decode(ARGV[2])) do
  local key = ARGV[1] .. b.id
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, unpack(b.fields))
    if cancelled and b.state == 'planned' then
      redis.call('HSET', key, 'state', 'failed', 'error', 'cancelled')
    end
  end
end
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[3])))
return 'ok'
`;

/**
 * Compacts a final batch record, rewriting it so that Redis keeps it in its small-hash encoding
 * (a listpack: a few bytes per field, where a hash with one value over `hash-max-listpack-value`,
 * 64 bytes by default, costs a table entry and two allocations per field). ARGV: the batch
 * compressed (replacing the JSON \`batch\`), the receipt JSON it was computed from, that receipt
 * without its provider ids, the ids joined by commas, and the piece size. The batch is stored as
 * fields \`z0\`, \`z1\`, … of at most that size each, or all in \`z0\` when the record is a full
 * hash anyway (another value longer, or more than 128 fields: \`hash-max-listpack-entries\`).
 * Only a final record still holding its JSON batch is touched (final states never go back), and
 * its receipt only when unchanged since it was read (a late receipt may have landed meanwhile:
 * that one stays as written). Drops what a final batch no longer needs: its call and lookup
 * bookkeeping. Keeps the record's TTL. Returns 1 when compacted.
 */
const COMPACT_SCRIPT = `
local final = { sent = true, rejected = true, unknown = true, failed = true, expired = true }
local h = redis.call('HMGET', KEYS[1], 'state', 'batch', 'receipt')
if not h[2] or not final[h[1]] then return 0 end
local swapReceipt = ARGV[2] ~= '' and h[3] == ARGV[2]
local drop = { batch = true, callAt = true, callEnded = true, lookups = true, lookupFailures = true }
if swapReceipt then drop.receipt = true end
local fields = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if not drop[all[i]] then
    table.insert(fields, all[i])
    table.insert(fields, all[i + 1])
  end
end
if swapReceipt then
  table.insert(fields, 'receipt')
  table.insert(fields, ARGV[3])
  table.insert(fields, 'receiptIds')
  table.insert(fields, ARGV[4])
end
local size = tonumber(ARGV[5])
local pieces = math.ceil(#ARGV[1] / size)
-- A record that keeps a longer value, or too many fields, is a full hash whatever is done: there
-- the batch is one value (pieces would only cost a field each).
for i = 2, #fields, 2 do
  if #fields[i] > size then pieces = 1 end
end
if #fields / 2 + pieces > 128 then pieces = 1 end
size = math.ceil(#ARGV[1] / pieces)
for i = 0, pieces - 1 do
  table.insert(fields, 'z' .. i)
  table.insert(fields, string.sub(ARGV[1], i * size + 1, (i + 1) * size))
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(fields))
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`;

/**
 * Writes a request record, with its idempotency key (KEYS[1]; the record's own key when none) and
 * its enqueue mark (ARGV[3] in the enqueuing set KEYS[3], scored by Redis's clock, as
 * enqueue-repair.ts reads it; none when ARGV[3] is empty): one step, so a record never exists
 * without its mark. The record's fields and values follow, from ARGV[4] on, as they are (the 202
 * body among them is JSON already: wrapping the fields in JSON would escape it once more, for Lua
 * to decode). A key already used writes nothing and returns its value.
 */
const CREATE_REQUEST_SCRIPT = `
if KEYS[1] ~= KEYS[2] then
  local existing = redis.call('GET', KEYS[1])
  if existing then return existing end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
if ARGV[3] ~= '' then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[3])
end
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
return false
`;

/** The webhook list entry that stands for "the request completed" (src/webhooks/ turns it into `message.completed`). */
export const COMPLETED_WEBHOOK_ENTRY = '{"type":"completed"}';

type TransitionResult = { ok: true; from: BatchState } | { ok: false; current?: BatchState };

/** What `claim` did: `cancelled` means the batch ended `failed` because its request was cancelled. */
export type ClaimResult =
  { status: 'ok' } | { status: 'cancelled' } | { status: 'conflict'; current?: BatchState };

/** What `beginCall` found: `ok` with the call's start (Redis time, ms), or why no call may start. */
export type BeginCallResult =
  { status: 'ok'; callAt: number } | { status: 'cancelled' } | { status: 'lost'; reason: string };

/**
 * How a receipt was recorded: `sent` by its owner; `taken-over` (another run held the batch);
 * `late` (the batch had ended unknown/failed/rejected/expired and is now sent); `same` (already
 * recorded from this send); `duplicate` (the batch was already sent by another call).
 */
export type ReceiptOutcome = 'sent' | 'taken-over' | 'late' | 'same' | 'duplicate';

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
    ifOwner: string,
    setOwner: string,
    callEnded: string,
  ): Promise<[string, string]>;
  smsqClaim(batchKey: string, requestKey: string, owner: string, now: string): Promise<[string, string]>;
  smsqBeginCall(
    batchKey: string,
    requestKey: string,
    lockKey: string,
    owner: string,
    lockToken: string,
    now: string,
  ): Promise<[string, string]>;
  smsqRecordReceipt(
    batchKey: string,
    ledgerKey: string,
    requestKey: string,
    owner: string,
    receipt: string,
    ledgerSent: string,
    ledgerDuplicate: string,
    providerIds: string,
    acceptedCount: string,
    now: string,
  ): Promise<[string, string]>;
  smsqCancel(requestKey: string, batchKeyPrefix: string, now: string): Promise<number>;
  smsqSavePlan(
    requestKey: string,
    batchKeyPrefix: string,
    batches: string,
    requestFields: string,
  ): Promise<string>;
  smsqCompact(
    batchKey: string,
    compact: Buffer,
    receiptSeen: string,
    receiptWithoutIds: string,
    providerIds: string,
    chunkBytes: number,
  ): Promise<number>;
  smsqCreateRequest(
    idemKey: string,
    requestKey: string,
    enqueuingKey: string,
    idemValue: string,
    ttlS: number,
    enqueuingMember: string,
    ...fields: string[]
  ): Promise<string | null>;
}

const SCRIPTS = {
  smsqTransition: { keys: 3, lua: TRANSITION_SCRIPT },
  smsqClaim: { keys: 2, lua: CLAIM_SCRIPT },
  smsqBeginCall: { keys: 3, lua: BEGIN_CALL_SCRIPT },
  smsqRecordReceipt: { keys: 3, lua: RECORD_RECEIPT_SCRIPT },
  smsqCancel: { keys: 1, lua: CANCEL_SCRIPT },
  smsqSavePlan: { keys: 1, lua: SAVE_PLAN_SCRIPT },
  smsqCreateRequest: { keys: 3, lua: CREATE_REQUEST_SCRIPT },
  smsqCompact: { keys: 1, lua: COMPACT_SCRIPT },
};

function commands(redis: Redis): SmsqCommands {
  return withScripts<SmsqCommands>(redis, SCRIPTS);
}

export function toHashFields(
  values: Record<string, string | number | boolean | undefined | object>,
): string[] {
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

/**
 * The longest value Redis keeps in a small hash's compact encoding by default
 * (`hash-max-listpack-value`): a compacted record's batch is stored in pieces of this size.
 */
export const COMPACT_CHUNK_BYTES = 64;

/** Brotli's smallest and largest window (log2 bytes); a window larger than the input gains nothing. */
const MIN_WINDOW_BITS = 10;
const MAX_WINDOW_BITS = 22;

/**
 * A final batch as stored: its JSON compressed with Brotli (numbers and repeated or templated
 * texts shrink most; quality 5 is within a few percent of the best at a hundredth of its time;
 * the window no larger than the batch, so the encoder sets up no more memory than it can use).
 * On the event loop, one at a time: compressed in libuv's pool, a campaign's thousands of
 * batches each held an encoder at once, and the worker process peaked 20–55 MB higher (RSS,
 * `npm run bench`, section `memory`).
 */
export function compactBatch(batch: Batch): Buffer {
  const json = Buffer.from(JSON.stringify(batch));
  const windowBits = Math.min(MAX_WINDOW_BITS, Math.max(MIN_WINDOW_BITS, Math.ceil(Math.log2(json.length))));
  return brotliCompressSync(json, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: 5,
      [zlib.BROTLI_PARAM_LGWIN]: windowBits,
      [zlib.BROTLI_PARAM_SIZE_HINT]: json.length,
    },
  });
}

/**
 * The batch of a compacted record: fields `z0`, `z1`, … joined (Brotli), or `batchz` (raw
 * deflate, how records compacted by earlier versions hold it); undefined when it has neither.
 */
function expandBatch(raw: Record<string, Buffer>): Batch | undefined {
  if (raw.batchz) return JSON.parse(inflateRawSync(raw.batchz).toString('utf8')) as Batch;
  const chunks: Buffer[] = [];
  for (let i = 0; raw[`z${i}`] !== undefined; i++) chunks.push(raw[`z${i}`]!);
  if (chunks.length === 0) return undefined;
  return JSON.parse(brotliDecompressSync(Buffer.concat(chunks)).toString('utf8')) as Batch;
}

/** Fields of a compacted record that hold its batch (see `expandBatch`). */
const isCompactField = (field: string) => field === 'batchz' || /^z\d+$/.test(field);

/** Ids joined by commas can be split back only when none is empty or holds a comma. */
function joinableIds(ids: readonly string[]): boolean {
  return ids.every((id) => id !== '' && !id.includes(','));
}

function parseJson<T>(value: string | undefined, fallback: T): T {
  return value === undefined || value === '' ? fallback : (JSON.parse(value) as T);
}

/**
 * The JSON `batch` and `receipt` fields of each record `getBatch` read from a record not compacted
 * yet, as stored: `compactBatches` of the records a caller just read does not read them again.
 */
const jsonFieldsRead = new WeakMap<BatchRecord, { batch: string; receipt?: string }>();

/** Reads and writes request and batch records. All state changes of a batch go through `transition`. */
export class RecordStore {
  constructor(
    readonly redis: Redis,
    readonly keys: SmsqKeys,
  ) {}

  /**
   * Creates a request record, atomically with its idempotency key when one is given and with its
   * enqueue mark (`enqueuingMember`, see enqueue-repair.ts) when one is given.
   * Returns the existing idempotency value (`<id>|<bodyHash>`) when the key was already used:
   * then nothing was written, mark included.
   */
  async createRequest(
    record: Omit<
      RequestRecord,
      'batchIds' | 'planned' | 'cancelled' | 'suppressed' | 'state' | 'duplicatesSent' | 'unsentFailed'
    >,
    idempotency?: { hash: string; bodyHash: string; ttlS: number },
    enqueuingMember?: string,
  ): Promise<string | null> {
    const requestKey = this.keys.request(record.id);
    const fields = toHashFields({ ...record, state: 'queued', suppressed: 0, batchIds: [] });
    return commands(this.redis).smsqCreateRequest(
      idempotency ? this.keys.idempotency(idempotency.hash) : requestKey,
      requestKey,
      this.keys.enqueuing,
      idempotency ? `${record.id}|${idempotency.bodyHash}` : '',
      idempotency?.ttlS ?? 0,
      enqueuingMember ?? '',
      ...fields,
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
      provider: h.provider,
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
      duplicatesSent: Number(h.duplicatesSent ?? 0),
      ...(h.tag !== undefined ? { tag: h.tag } : {}),
      ...(h.webhookUrl ? { webhookUrl: h.webhookUrl } : {}),
    };
  }

  /** A request's state alone (what a wait polls); undefined when there is no such request. */
  async getRequestState(id: string): Promise<RequestRecord['state'] | undefined> {
    const state = await this.redis.hget(this.keys.request(id), 'state');
    return state === null ? undefined : (state as RequestRecord['state']);
  }

  /**
   * Stores a request's plan once, atomically: its batches (state `planned`, or `failed` when the
   * request was cancelled meanwhile) and the suppressed count. Returns false when a plan was
   * already stored (a retried or concurrent splitter): the caller reads the stored batches.
   */
  async savePlan(
    requestId: string,
    plan: { provider?: ProviderId; suppressed: number; batches: BatchRecord[] },
  ): Promise<boolean> {
    const batches = plan.batches.map((record) => ({
      id: record.batch.id,
      state: record.state,
      fields: this.batchFields(record),
    }));
    const requestFields = toHashFields({
      provider: plan.provider,
      suppressed: plan.suppressed,
      batchIds: plan.batches.map((b) => b.batch.id),
      planned: true,
    });
    const result = await commands(this.redis).smsqSavePlan(
      this.keys.request(requestId),
      this.keys.batch(''),
      JSON.stringify(batches),
      JSON.stringify(requestFields),
    );
    return result === 'ok';
  }

  batchFields(record: BatchRecord): string[] {
    return toHashFields({
      batch: record.batch,
      state: record.state,
      attempts: record.attempts,
      expiresAt: record.expiresAt,
      sendAt: record.sendAt,
      window: record.window,
      timezone: record.timezone,
      error: record.error,
      route: record.route,
      history: record.history,
      updatedAt: new Date().toISOString(),
    });
  }

  /** A batch record, from either encoding (JSON while in flight, compacted once final). */
  async getBatch(id: string): Promise<BatchRecord | undefined> {
    const raw = await this.redis.hgetallBuffer(this.keys.batch(id));
    const h: Record<string, string | undefined> = {};
    for (const [field, value] of Object.entries(raw)) if (!isCompactField(field)) h[field] = value.toString();
    const batch = h.batch ? (JSON.parse(h.batch) as Batch) : expandBatch(raw);
    if (!batch) return undefined;
    let receipt = h.receipt ? (JSON.parse(h.receipt) as StoredReceipt) : undefined;
    if (receipt && h.receiptIds !== undefined)
      receipt = { ...receipt, providerIds: h.receiptIds === '' ? [] : h.receiptIds.split(',') };
    const record: BatchRecord = {
      batch,
      state: h.state as BatchState,
      attempts: Number(h.attempts ?? 0),
      expiresAt: h.expiresAt,
      sendAt: h.sendAt,
      ...(h.window ? { window: JSON.parse(h.window) as SendWindow, timezone: h.timezone } : {}),
      receipt,
      error: h.error,
      updatedAt: h.updatedAt,
      ...(h.owner ? { owner: h.owner } : {}),
      ...(h.callAt ? { callAt: Number(h.callAt) } : {}),
      ...(h.callEnded ? { callEnded: true } : {}),
      lookupFailures: Number(h.lookupFailures ?? 0),
      lookups: Number(h.lookups ?? 0),
      duplicates: Number(h.duplicates ?? 0),
      ...(h.route ? { route: JSON.parse(h.route) as ProviderId[] } : {}),
      ...(h.history ? { history: JSON.parse(h.history) as BatchMove[] } : {}),
      ...(h.movedTo ? { movedTo: JSON.parse(h.movedTo) as string[] } : {}),
    };
    if (h.batch) jsonFieldsRead.set(record, { batch: h.batch, ...(h.receipt ? { receipt: h.receipt } : {}) });
    return record;
  }

  /**
   * Compacts the final ones among `records` (see COMPACT_SCRIPT): their recipients and texts
   * compressed, their provider ids joined, their call bookkeeping dropped, each rewritten as a
   * small hash. `getBatch` reads both
   * encodings, so nothing else changes. Returns how many were compacted.
   */
  async compactBatches(records: readonly BatchRecord[]): Promise<number> {
    const done = await Promise.all(
      records
        .filter((record) => isFinalBatchState(record.state))
        .map(async (record) => {
          const { batch } = record;
          const key = this.keys.batch(batch.id);
          // The fields as `getBatch` read them, when it read this record: the script checks again
          // what it relies on (final, JSON batch still there, receipt unchanged), as after a read here.
          const read = jsonFieldsRead.get(record);
          const [json, receiptJson] = read
            ? [read.batch, read.receipt ?? null]
            : await this.redis.hmget(key, 'batch', 'receipt');
          if (!json) return 0; // already compacted
          let seen = '';
          let withoutIds = '';
          let ids = '';
          if (receiptJson) {
            const { providerIds, ...rest } = JSON.parse(receiptJson) as StoredReceipt;
            if (joinableIds(providerIds)) {
              seen = receiptJson;
              withoutIds = JSON.stringify(rest);
              ids = providerIds.join(',');
            }
          }
          const stored = JSON.parse(json) as Batch;
          return commands(this.redis).smsqCompact(
            key,
            compactBatch(stored),
            seen,
            withoutIds,
            ids,
            COMPACT_CHUNK_BYTES,
          );
        }),
    );
    return done.reduce((n: number, d) => n + d, 0);
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
      /**
       * From `sending`: only when this run owns the batch (its token), or, with the value `no-call`, only
       * while no provider call has begun. Without it, any holder's `sending` may move.
       */
      ifOwner?: string;
      /** Makes this run the owner (a takeover of `sending` fences the previous owner out). */
      setOwner?: string;
      /** The owner's provider call has returned (with an error): nothing of it is in flight any more. */
      callEnded?: boolean;
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
      opts.ifOwner === 'no-call' ? '-' : (opts.ifOwner ?? ''),
      opts.setOwner ?? '',
      opts.callEnded ? '1' : '0',
    );
    if (status === 'ok') return { ok: true, from: current as BatchState };
    return { ok: false, current: current ? (current as BatchState) : undefined };
  }

  /** Claims a planned batch for one run (see CLAIM_SCRIPT). */
  async claim(batch: Batch, owner: string): Promise<ClaimResult> {
    const [status, current] = await commands(this.redis).smsqClaim(
      this.keys.batch(batch.id),
      this.keys.request(batch.requestId),
      owner,
      new Date().toISOString(),
    );
    if (status === 'ok') return { status: 'ok' };
    if (status === 'cancelled') return { status: 'cancelled' };
    return { status: 'conflict', current: current ? (current as BatchState) : undefined };
  }

  /**
   * The check right before a provider call (see BEGIN_CALL_SCRIPT). `lock` is the job's BullMQ
   * lock key and this run's token; without it only the batch owner is checked.
   */
  async beginCall(
    batch: Batch,
    owner: string,
    lock?: { key: string; token: string },
  ): Promise<BeginCallResult> {
    const [status, detail] = await commands(this.redis).smsqBeginCall(
      this.keys.batch(batch.id),
      this.keys.request(batch.requestId),
      lock?.key ?? this.keys.batch(batch.id),
      owner,
      lock?.token ?? '',
      new Date().toISOString(),
    );
    if (status === 'ok') return { status: 'ok', callAt: Number(detail) };
    if (status === 'cancelled') return { status: 'cancelled' };
    return { status: 'lost', reason: detail };
  }

  /** True while `lock.key` (a job's BullMQ lock) still holds this run's token. */
  async holdsLock(lock: { key: string; token: string }): Promise<boolean> {
    return (await this.redis.get(lock.key)) === lock.token;
  }

  /** Records a provider receipt, whatever the batch's state (see RECORD_RECEIPT_SCRIPT). */
  async recordReceipt(
    batch: Batch,
    receipt: BatchReceipt,
    owner: string,
    ledger: { sent: Record<string, string>; duplicate: Record<string, string> },
  ): Promise<{ outcome: ReceiptOutcome; previous: BatchState }> {
    const flat = (entry: Record<string, string>) => JSON.stringify(Object.entries(entry).flat());
    const [outcome, previous] = await commands(this.redis).smsqRecordReceipt(
      this.keys.batch(batch.id),
      this.keys.ledger,
      this.keys.request(batch.requestId),
      owner,
      JSON.stringify(storedReceipt(receipt)),
      flat(ledger.sent),
      flat(ledger.duplicate),
      JSON.stringify(receipt.providerIds),
      // Recipients a duplicate acceptance reached a second time (its ledger line's `accepted`).
      String(acceptedOf(ledger.duplicate)),
      new Date().toISOString(),
    );
    if (outcome === 'missing') throw new Error(`Batch ${batch.id} has no record`);
    return { outcome: outcome as ReceiptOutcome, previous: previous as BatchState };
  }

  /** Counts a lookup of an ambiguous batch (and whether it failed); returns the counts after it. */
  async countLookup(batch: Batch, failed: boolean): Promise<{ lookups: number; failures: number }> {
    const key = this.keys.batch(batch.id);
    const multi = this.redis.multi().hincrby(key, 'lookups', 1);
    if (failed) multi.hincrby(key, 'lookupFailures', 1);
    else multi.hset(key, 'lookupFailures', 0);
    const results = (await multi.exec()) ?? [];
    const lookups = Number(results[0]?.[1] ?? 0);
    const failures = failed ? Number(results[1]?.[1] ?? 0) : 0;
    return { lookups, failures };
  }

  /** Redis's clock, in ms: the one clock every worker's `callAt` is written in. */
  async redisTimeMs(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /** Cancels a request in one step (see CANCEL_SCRIPT); undefined when there is no such request. */
  async cancelRequest(id: string): Promise<number | undefined> {
    const n = await commands(this.redis).smsqCancel(
      this.keys.request(id),
      this.keys.batch(''),
      new Date().toISOString(),
    );
    return n < 0 ? undefined : n;
  }

  /**
   * Marks a request completed and starts the retention clock on its records. A request with
   * webhooks gets its `message.completed` entry in the same transaction (the first time only), so
   * a crash cannot separate the completion from the event (src/webhooks/ drains it).
   */
  async completeRequest(record: RequestRecord, ttlS: number): Promise<string> {
    const finishedAt = record.finishedAt ?? new Date().toISOString();
    const multi = this.redis.multi();
    if (record.webhookUrl && record.state !== 'completed') {
      multi.rpush(this.keys.webhookUpdates(record.id), COMPLETED_WEBHOOK_ENTRY);
      multi.zadd(this.keys.webhookDue, 'NX', Date.now(), record.id);
    }
    multi.hset(this.keys.request(record.id), 'state', 'completed', 'finishedAt', finishedAt);
    multi.expire(this.keys.request(record.id), ttlS);
    for (const id of record.batchIds) multi.expire(this.keys.batch(id), ttlS);
    await multi.exec();
    return finishedAt;
  }
}

export { isFinalBatchState };
