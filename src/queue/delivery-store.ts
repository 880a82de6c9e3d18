import type { Redis } from 'ioredis';
import type { ProviderId } from '../message/types.js';
import { withScripts } from '../redis.js';
import type { SmsqKeys } from './names.js';

/** A recipient's delivery status once its batch is sent. */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'undelivered', 'expired', 'unreported'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
export type FinalDeliveryStatus = Exclude<DeliveryStatus, 'pending'>;
export const FINAL_DELIVERY_STATUSES: readonly FinalDeliveryStatus[] = [
  'delivered',
  'undelivered',
  'expired',
  'unreported',
];

/** Delivery counts of a request; they add up to its `counts.accepted`. */
export type DeliveryCounts = Record<DeliveryStatus, number>;

/**
 * One fixed-size record per recipient of a batch, at `index × RECORD_BYTES` of one string:
 * 1 status byte, the time of the final status as centiseconds after the batch was sent (uint32,
 * big-endian: 497 days), and the provider's code in 3 ASCII bytes (space-padded; a longer code is
 * kept in the batch's bookkeeping hash). 8 bytes per recipient. The records are followed by the
 * batch's own fields (see `packTrailer`), so a batch's state is one key: the bookkeeping hash
 * exists only for what a report source adds (notes, longer codes, OVH's id range).
 */
export const RECORD_BYTES = 8;
const CODE_BYTES = 3;

/** Status byte of each status; `-` is a recipient of the batch that was not accepted (no status). */
const STATUS_BYTE: Record<DeliveryStatus | 'none', string> = {
  none: '-',
  pending: 'p',
  delivered: 'd',
  undelivered: 'u',
  expired: 'x',
  unreported: 'r',
};
const STATUS_OF_BYTE = new Map<string, DeliveryStatus>(
  DELIVERY_STATUSES.map((status) => [STATUS_BYTE[status], status]),
);

/** Upper bounds (seconds) of the accepted → final latency histogram. */
export const LATENCY_BUCKETS_S = [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600];

/** One final status to record for one recipient. */
export interface DeliveryUpdate {
  /** The recipient's index in its batch (batch order). */
  index: number;
  status: FinalDeliveryStatus;
  /** When the provider says it happened (ms since the epoch). */
  at: number;
  code?: string;
  /** The number (for the webhook update; never stored here). */
  to: string;
  providerId?: string;
}

/** A recipient's delivery as stored. */
export interface RecipientDelivery {
  status: DeliveryStatus;
  at?: string;
  code?: string;
}

/** What a batch's delivery state says, decoded. */
export interface BatchDelivery {
  requestId: string;
  provider: ProviderId;
  sentAt: number;
  horizonAt: number;
  /** Per recipient index: its delivery, or null when it was not accepted. */
  recipients: (RecipientDelivery | null)[];
  /** The report source's notes (fields `s:*` of the bookkeeping hash, without the prefix). */
  notes: Record<string, string>;
}

const STATUS_LUA = `local byteOf = { delivered = 'd', undelivered = 'u', expired = 'x', unreported = 'r' }`;

/**
 * Pushes the request's `{"type":"delivered"}` webhook entry once, when every accepted recipient has
 * a final status and every batch is settled (the request is completed). KEYS: dlrq, req, whq, whdue.
 */
const DELIVERED_LUA = `
local function pushDelivered(dlrq, req, whq, whdue, nowMs)
  if redis.call('HGET', req, 'state') ~= 'completed' then return 0 end
  local h = redis.call('HMGET', dlrq, 'delivered', 'undelivered', 'expired', 'unreported', 'finals')
  local final = tonumber(h[5] or '0')
  local accepted = tonumber(redis.call('HGET', dlrq, 'accepted') or '0')
  if final < accepted then return 0 end
  if redis.call('HSETNX', dlrq, 'deliveredEvent', '1') == 0 then return 0 end
  if redis.call('HEXISTS', req, 'webhookUrl') == 1 then
    local counts = { pending = 0, delivered = tonumber(h[1] or '0'), undelivered = tonumber(h[2] or '0'),
      expired = tonumber(h[3] or '0'), unreported = tonumber(h[4] or '0') }
    -- Written by hand so that "type" comes first: the webhook cut (src/webhooks/outbox.ts) tells
    -- typed entries from recipient updates by their '{"type":"' prefix, and cjson orders keys as
    -- its hash table does.
    redis.call('RPUSH', whq, '{"type":"delivered","delivery":' .. cjson.encode(counts) .. '}')
    redis.call('ZADD', whdue, 'NX', nowMs, ARGV[1])
  end
  return 1
end
`;

/**
 * Creates a sent batch's delivery state once (a re-run finds it and changes nothing).
 * KEYS: dlr, dlrb, dlrq, ids. ARGV: requestId, records and trailer, accepted, ttlMs, batchId,
 * lowest provider id ('' for none), highest provider id.
 */
const INIT_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[2], 'minId', ARGV[6], 'maxId', ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('ZADD', KEYS[4], tonumber(ARGV[6]), ARGV[5])
end
redis.call('HINCRBY', KEYS[3], 'accepted', tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[3], ttl)
return 1
`;

/** Gives a bookkeeping hash (KEYS[2]) made after its batch's state the state's (KEYS[1]) lifetime. */
const KEEP_WITH_STATE_LUA = `
local function keepWithState()
  if redis.call('PTTL', KEYS[2]) == -1 then
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
  end
end
`;

/** Saves report-source notes (ARGV: field, value, …) in the bookkeeping hash. KEYS: dlr, dlrb. */
const NOTES_SCRIPT = `
${KEEP_WITH_STATE_LUA}
redis.call('HSET', KEYS[2], unpack(ARGV))
keepWithState()
return 1
`;

/**
 * Records final statuses, each only when its recipient is still pending: the first final status
 * wins and a second report (callback and poll, two polls, a re-run) changes nothing. Each one
 * recorded is counted (request counts, metrics) and, when the request has a webhook target,
 * queued as a webhook update; the update that leaves the request with nothing pending queues its
 * `delivered` entry. KEYS: dlr, dlrb, dlrq, req, whq, whdue, stats.
 * ARGV: requestId, now (ms), provider, sentAt (ms), updates (JSON), histogram bounds (JSON).
 */
const APPLY_SCRIPT = `
${STATUS_LUA}
${DELIVERED_LUA}
${KEEP_WITH_STATE_LUA}
local nowMs = tonumber(ARGV[2])
local provider = ARGV[3]
local sentAt = tonumber(ARGV[4])
local bounds = cjson.decode(ARGV[6])
local webhooks = redis.call('HEXISTS', KEYS[4], 'webhookUrl') == 1
local applied = 0
local latencies = {}
-- Where the records end: before the trailer (see packTrailer), or at the end of a state written
-- by an earlier version (its fields are in the bookkeeping hash), so no update lands past them.
local recordsEnd = redis.call('STRLEN', KEYS[1])
if recordsEnd >= 2 and redis.call('HEXISTS', KEYS[2], 'requestId') == 0 then
  local trailer = struct.unpack('>I2', redis.call('GETRANGE', KEYS[1], recordsEnd - 2, recordsEnd - 1))
  recordsEnd = recordsEnd - 2 - trailer
end
for _, u in ipairs(cjson.decode(ARGV[5])) do
  local offset = u.i * ${RECORD_BYTES}
  if offset + ${RECORD_BYTES} <= recordsEnd and redis.call('GETRANGE', KEYS[1], offset, offset) == 'p' then
    local cs = math.floor((u.at - sentAt) / 10)
    if cs < 0 then cs = 0 end
    if cs > 4294967295 then cs = 4294967295 end
    local code = u.code or ''
    local packed = code
    if #code > ${CODE_BYTES} then
      redis.call('HSET', KEYS[2], 'c:' .. u.i, code)
      keepWithState()
      packed = ''
    end
    packed = packed .. string.rep(' ', ${CODE_BYTES} - #packed)
    redis.call('SETRANGE', KEYS[1], offset, byteOf[u.s] .. struct.pack('>I4', cs) .. packed)
    redis.call('HINCRBY', KEYS[3], u.s, 1)
    redis.call('HINCRBY', KEYS[3], 'finals', 1)
    redis.call('HINCRBY', KEYS[7], provider .. '|' .. u.s, 1)
    if u.s == 'delivered' or u.s == 'undelivered' then
      table.insert(latencies, cs / 100)
    end
    if webhooks then
      local update = { to = u.to, status = u.s, at = u.iso, provider = provider }
      if code ~= '' then update.code = code end
      if u.pid then update.providerId = u.pid end
      redis.call('RPUSH', KEYS[5], cjson.encode(update))
      redis.call('ZADD', KEYS[6], 'NX', nowMs, ARGV[1])
    end
    applied = applied + 1
  end
end
for _, seconds in ipairs(latencies) do
  for _, le in ipairs(bounds) do
    if seconds <= le then redis.call('HINCRBY', KEYS[7], provider .. '|le|' .. le, 1) end
  end
  redis.call('HINCRBY', KEYS[7], provider .. '|count', 1)
  redis.call('HINCRBYFLOAT', KEYS[7], provider .. '|sum', seconds)
end
if applied > 0 then pushDelivered(KEYS[3], KEYS[4], KEYS[5], KEYS[6], nowMs) end
return applied
`;

/**
 * A request completed: queues its `delivered` webhook entry when nothing is pending any more (every
 * accepted recipient already final, or none accepted). KEYS: dlrq, req, whq, whdue. ARGV:
 * requestId, now (ms), ttl (ms).
 */
const COMPLETED_SCRIPT = `
${DELIVERED_LUA}
local r = pushDelivered(KEYS[1], KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[2]))
-- Created here (nothing accepted): give it a lifetime; one made by a sent batch keeps its own.
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3])) end
return r
`;

interface DeliveryCommands {
  smsqDlrInit(
    dlr: string,
    dlrb: string,
    dlrq: string,
    ids: string,
    requestId: string,
    state: Buffer,
    accepted: number,
    ttlMs: number,
    batchId: string,
    minId: string,
    maxId: string,
  ): Promise<number>;
  smsqDlrApply(
    dlr: string,
    dlrb: string,
    dlrq: string,
    req: string,
    whq: string,
    whdue: string,
    stats: string,
    requestId: string,
    now: number,
    provider: string,
    sentAt: number,
    updates: string,
    bounds: string,
  ): Promise<number>;
  smsqDlrCompleted(
    dlrq: string,
    req: string,
    whq: string,
    whdue: string,
    requestId: string,
    now: number,
    ttlMs: number,
  ): Promise<number>;
  smsqDlrNotes(dlr: string, dlrb: string, ...fields: string[]): Promise<number>;
}

const SCRIPTS = {
  smsqDlrInit: { keys: 4, lua: INIT_SCRIPT },
  smsqDlrNotes: { keys: 2, lua: NOTES_SCRIPT },
  smsqDlrApply: { keys: 7, lua: APPLY_SCRIPT },
  smsqDlrCompleted: { keys: 4, lua: COMPLETED_SCRIPT },
};

/** A batch's own fields, stored after its records (see `packTrailer`). */
type BatchFields = Pick<BatchDelivery, 'requestId' | 'provider' | 'sentAt' | 'horizonAt'>;

/**
 * The batch's fields after its records: `sentAt horizonAt provider requestId` (space-separated
 * text; the request id last, so whatever it holds reads back), then that text's length as a
 * uint16 (big-endian), so a reader finds where the records end.
 */
function packTrailer(fields: BatchFields): Buffer {
  const text = Buffer.from(
    [fields.sentAt, fields.horizonAt, fields.provider, fields.requestId].join(' '),
    'utf8',
  );
  const length = Buffer.alloc(2);
  length.writeUInt16BE(text.length);
  return Buffer.concat([text, length]);
}

/** Splits a batch's state into its records and fields; undefined when it holds no valid trailer. */
function unpackTrailer(state: Buffer): { records: Buffer; fields: BatchFields } | undefined {
  if (state.length < 2) return undefined;
  const textLength = state.readUInt16BE(state.length - 2);
  const end = state.length - 2 - textLength;
  if (end < 0 || end % RECORD_BYTES !== 0) return undefined;
  const match = /^(\S+) (\S+) (\S+) (.+)$/s.exec(state.toString('utf8', end, state.length - 2));
  if (!match) return undefined;
  return {
    records: state.subarray(0, end),
    fields: {
      sentAt: Number(match[1]),
      horizonAt: Number(match[2]),
      provider: match[3]!,
      requestId: match[4]!,
    },
  };
}

/** What a sent batch's delivery state starts from. */
export interface SentBatchDelivery {
  batchId: string;
  requestId: string;
  provider: ProviderId;
  /** Recipients in batch order: true when the provider accepted it (it then awaits a report). */
  accepted: readonly boolean[];
  /** When the batch was sent (ms). */
  sentAt: number;
  /** When recipients still pending get their horizon status (ms). */
  horizonAt: number;
  /** Numeric provider ids of the batch (OVH), indexed for pushed reports that name only an id. */
  numericIds?: readonly number[];
  /** How long the state is kept (ms): past the horizon, for the API. */
  ttlMs: number;
}

/**
 * Delivery state of sent batches, in keys of its own (never the batch record): see RECORD_BYTES
 * for the layout, and APPLY_SCRIPT for "first final status wins".
 */
export class DeliveryStore {
  constructor(
    readonly redis: Redis,
    readonly keys: SmsqKeys,
  ) {}

  private get commands(): DeliveryCommands {
    return withScripts<DeliveryCommands>(this.redis, SCRIPTS);
  }

  /** Creates a sent batch's state (every accepted recipient `pending`) once; false when it existed. */
  async initBatch(sent: SentBatchDelivery): Promise<boolean> {
    const records = Buffer.alloc(sent.accepted.length * RECORD_BYTES, ' ');
    sent.accepted.forEach((accepted, i) => {
      records.write(accepted ? STATUS_BYTE.pending : STATUS_BYTE.none, i * RECORD_BYTES, 'latin1');
      records.writeUInt32BE(0, i * RECORD_BYTES + 1);
    });
    const ids = sent.numericIds ?? [];
    const min = ids.length > 0 ? Math.min(...ids) : undefined;
    const max = ids.length > 0 ? Math.max(...ids) : undefined;
    const created = await this.commands.smsqDlrInit(
      this.keys.delivery(sent.batchId),
      this.keys.deliveryBatch(sent.batchId),
      this.keys.deliveryRequest(sent.requestId),
      this.keys.deliveryIds(sent.provider),
      sent.requestId,
      Buffer.concat([records, packTrailer(sent)]),
      sent.accepted.filter(Boolean).length,
      sent.ttlMs,
      sent.batchId,
      min === undefined ? '' : String(min),
      max === undefined ? '' : String(max),
    );
    return created === 1;
  }

  /** Records final statuses (first final status wins, see APPLY_SCRIPT); returns how many were new. */
  async apply(
    batchId: string,
    state: Pick<BatchDelivery, 'requestId' | 'provider' | 'sentAt'>,
    updates: readonly DeliveryUpdate[],
  ): Promise<number> {
    if (updates.length === 0) return 0;
    const payload = updates.map((u) => ({
      i: u.index,
      s: u.status,
      at: Math.round(u.at),
      iso: new Date(u.at).toISOString(),
      ...(u.code !== undefined && u.code !== '' ? { code: u.code } : {}),
      to: u.to,
      ...(u.providerId ? { pid: u.providerId } : {}),
    }));
    return this.commands.smsqDlrApply(
      this.keys.delivery(batchId),
      this.keys.deliveryBatch(batchId),
      this.keys.deliveryRequest(state.requestId),
      this.keys.request(state.requestId),
      this.keys.webhookUpdates(state.requestId),
      this.keys.webhookDue,
      this.keys.deliveryStats,
      state.requestId,
      Date.now(),
      state.provider,
      state.sentAt,
      JSON.stringify(payload),
      JSON.stringify(LATENCY_BUCKETS_S),
    );
  }

  /** A request completed: queues its `delivered` webhook entry if nothing is pending (once). */
  async requestCompleted(requestId: string, ttlMs: number): Promise<boolean> {
    const pushed = await this.commands.smsqDlrCompleted(
      this.keys.deliveryRequest(requestId),
      this.keys.request(requestId),
      this.keys.webhookUpdates(requestId),
      this.keys.webhookDue,
      requestId,
      Date.now(),
      ttlMs,
    );
    return pushed === 1;
  }

  /** A batch's delivery state, decoded; undefined when the batch has none (not sent, or expired). */
  async getBatch(batchId: string): Promise<BatchDelivery | undefined> {
    const [state, meta] = await Promise.all([
      this.redis.getBuffer(this.keys.delivery(batchId)),
      this.redis.hgetall(this.keys.deliveryBatch(batchId)),
    ]);
    if (!state) return undefined;
    // States written by earlier versions keep the batch's fields in the bookkeeping hash.
    const unpacked = meta.requestId
      ? {
          records: state,
          fields: {
            requestId: meta.requestId,
            provider: meta.provider ?? '',
            sentAt: Number(meta.sentAt ?? 0),
            horizonAt: Number(meta.horizonAt ?? 0),
          },
        }
      : unpackTrailer(state);
    if (!unpacked) return undefined;
    const { records, fields } = unpacked;
    const sentAt = fields.sentAt;
    const recipients: (RecipientDelivery | null)[] = [];
    for (let offset = 0; offset + RECORD_BYTES <= records.length; offset += RECORD_BYTES) {
      const status = STATUS_OF_BYTE.get(records.toString('latin1', offset, offset + 1));
      if (!status) {
        recipients.push(null);
        continue;
      }
      if (status === 'pending') {
        recipients.push({ status });
        continue;
      }
      const at = new Date(sentAt + records.readUInt32BE(offset + 1) * 10).toISOString();
      const packed = records.toString('latin1', offset + 5, offset + RECORD_BYTES).trim();
      const code = packed || meta[`c:${offset / RECORD_BYTES}`];
      recipients.push({ status, at, ...(code ? { code } : {}) });
    }
    const notes: Record<string, string> = {};
    for (const [field, value] of Object.entries(meta))
      if (field.startsWith('s:')) notes[field.slice(2)] = value;
    return { ...fields, recipients, notes };
  }

  /** Saves report-source notes on a batch (e.g. whether OVH's ids are in receiver order). */
  async setNotes(batchId: string, notes: Record<string, string>): Promise<void> {
    const fields = Object.entries(notes).flatMap(([k, v]) => [`s:${k}`, v]);
    if (fields.length > 0)
      await this.commands.smsqDlrNotes(
        this.keys.delivery(batchId),
        this.keys.deliveryBatch(batchId),
        ...fields,
      );
  }

  /** Final counts of a request (pending is the caller's: accepted less these). */
  async getRequestFinals(requestId: string): Promise<Omit<DeliveryCounts, 'pending'>> {
    const [delivered, undelivered, expired, unreported] = await this.redis.hmget(
      this.keys.deliveryRequest(requestId),
      'delivered',
      'undelivered',
      'expired',
      'unreported',
    );
    return {
      delivered: Number(delivered ?? 0),
      undelivered: Number(undelivered ?? 0),
      expired: Number(expired ?? 0),
      unreported: Number(unreported ?? 0),
    };
  }

  /** Batches awaiting reports whose provider ids may include `id` (lowest id ≤ `id` ≤ highest). */
  async batchesForId(provider: ProviderId, id: number, max = 50): Promise<string[]> {
    const candidates = await this.redis.zrevrangebyscore(
      this.keys.deliveryIds(provider),
      id,
      '-inf',
      'LIMIT',
      0,
      max,
    );
    if (candidates.length === 0) return [];
    const highs = await Promise.all(
      candidates.map((b) => this.redis.hget(this.keys.deliveryBatch(b), 'maxId')),
    );
    return candidates.filter((_, i) => Number(highs[i] ?? -1) >= id);
  }

  /** A batch's reports are over (all final, or its horizon passed): no pushed report is looked up in it. */
  async retire(provider: ProviderId, batchId: string): Promise<void> {
    await this.redis.zrem(this.keys.deliveryIds(provider), batchId);
  }

  /** Delivery counters and latency histogram, by provider, for /metrics. */
  async getStats(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.deliveryStats);
  }
}
