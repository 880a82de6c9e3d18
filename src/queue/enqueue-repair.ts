/**
 * Repair of interrupted enqueues. An enqueue writes a request record, then adds its send job: two
 * steps, because BullMQ adds jobs with its own scripts. A producer that dies between them would
 * leave a request `queued` forever, with no job to move it. So each enqueue is marked in a sorted
 * set with its record (the same script, RecordStore.createRequest) and unmarked once its job
 * exists; the workers sweep marks older than
 * SMSQ_ENQUEUE_REPAIR_AFTER_MS and complete such requests with every recipient `failed`.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { Lane, SmsqKeys } from './names.js';
import { COMPLETED_WEBHOOK_ENTRY } from './records.js';
import { withScripts } from '../redis.js';

/** The reason recorded on a repaired request. */
export const ENQUEUE_INTERRUPTED = 'enqueue interrupted';

/**
 * One step, so nothing can slip between the check and the repair: a send job that exists (added
 * late, or by an idempotent replay) wins, and a request that moved on is left alone. Marking the
 * request planned (with no batches) makes a send job added after the repair a no-op in the
 * splitter; the idempotency key goes, so the producer's retry with the same key enqueues afresh.
 *
 * A request with webhooks gets its `message.completed` entry in the same step.
 *
 * KEYS: enqueuing set, request record, send job in one lane, idempotency key (the record's key
 * when none), the request's webhook list, the webhook due set, send job in the other lane (the
 * repair does not know the request's priority, so either lane's job counts).
 * ARGV: member, request id, finishedAt, record TTL (s), reason, the completed webhook entry.
 */
const REPAIR_SCRIPT = `
local function done(outcome)
  redis.call('ZREM', KEYS[1], ARGV[1])
  return outcome
end
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[7]) == 1 then return done('enqueued') end
local state = redis.call('HGET', KEYS[2], 'state')
if not state then return done('no-record') end
if state ~= 'queued' or redis.call('HGET', KEYS[2], 'planned') == 'true' then return done('progressed') end
local total = tonumber(redis.call('HGET', KEYS[2], 'total') or '0') or 0
local invalid = cjson.decode(redis.call('HGET', KEYS[2], 'invalid') or '[]')
local suppressed = tonumber(redis.call('HGET', KEYS[2], 'suppressed') or '0') or 0
redis.call('HSET', KEYS[2], 'state', 'completed', 'finishedAt', ARGV[3], 'planned', 'true',
  'unsentFailed', tostring(total - #invalid - suppressed), 'error', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[4])
if redis.call('HEXISTS', KEYS[2], 'webhookUrl') == 1 then
  local t = redis.call('TIME')
  redis.call('RPUSH', KEYS[5], ARGV[6])
  redis.call('ZADD', KEYS[6], 'NX', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[2])
end
if KEYS[4] ~= KEYS[2] then
  local owner = redis.call('GET', KEYS[4])
  if owner and string.sub(owner, 1, #ARGV[2] + 1) == ARGV[2] .. '|' then redis.call('DEL', KEYS[4]) end
end
return done('repaired')
`;

interface RepairCommands {
  smsqRepairEnqueue(
    setKey: string,
    requestKey: string,
    jobKey: string,
    idempotencyKey: string,
    webhookUpdatesKey: string,
    webhookDueKey: string,
    otherLaneJobKey: string,
    member: string,
    requestId: string,
    finishedAt: string,
    ttlS: number,
    reason: string,
    completedWebhookEntry: string,
  ): Promise<string>;
}

const SCRIPTS = {
  smsqRepairEnqueue: { keys: 7, lua: REPAIR_SCRIPT },
};

function commands(redis: Redis): RepairCommands {
  return withScripts<RepairCommands>(redis, SCRIPTS);
}

/** The member of one enqueue in the enqueuing set: the request id, and its idempotency hash when it has one. */
export function enqueuingMember(requestId: string, idempotencyHash?: string): string {
  return idempotencyHash ? `${requestId}|${idempotencyHash}` : requestId;
}

/** Unmarks an enqueue whose send job exists (or that wrote nothing). */
export async function unmarkEnqueuing(redis: Redis, keys: SmsqKeys, member: string): Promise<void> {
  await redis.zrem(keys.enqueuing, member);
}

export type RepairOutcome = 'enqueued' | 'no-record' | 'progressed' | 'repaired';

export interface EnqueueRepairOptions {
  redis: Redis;
  keys: SmsqKeys;
  /** The send queue of each lane: a request's job may be in either. */
  sendQueue: (lane: Lane) => Queue;
  /** Age of a mark, in ms, after which its enqueue is taken for dead (SMSQ_ENQUEUE_REPAIR_AFTER_MS). */
  afterMs: number;
  /** How long a repaired request's record is kept, in s (SMSQ_RECORD_TTL_S). */
  recordTtlS: number;
  logger: Logger;
  /** Called once per repaired request (the `smsq_enqueue_repaired_total` counter). */
  onRepaired?: (requestId: string) => void;
}

/** Marks examined per sweep; older ones first, the rest at the next sweep. */
const SWEEP_BATCH = 100;

/**
 * Examines marks older than `afterMs` once: each is dropped (its job exists, or it wrote nothing,
 * or its request moved on) or repaired. Returns how many requests were repaired.
 */
export async function sweepInterruptedEnqueues(opts: EnqueueRepairOptions): Promise<number> {
  const [seconds, micros] = await opts.redis.time();
  const cutoff = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - opts.afterMs;
  const members = await opts.redis.zrangebyscore(
    opts.keys.enqueuing,
    '-inf',
    cutoff,
    'LIMIT',
    0,
    SWEEP_BATCH,
  );
  let repaired = 0;
  for (const member of members) {
    const [requestId = '', idempotencyHash] = member.split('|');
    const requestKey = opts.keys.request(requestId);
    const outcome = (await commands(opts.redis).smsqRepairEnqueue(
      opts.keys.enqueuing,
      requestKey,
      opts.sendQueue('bulk').toKey(requestId),
      idempotencyHash ? opts.keys.idempotency(idempotencyHash) : requestKey,
      opts.keys.webhookUpdates(requestId),
      opts.keys.webhookDue,
      opts.sendQueue('priority').toKey(requestId),
      member,
      requestId,
      new Date().toISOString(),
      opts.recordTtlS,
      ENQUEUE_INTERRUPTED,
      COMPLETED_WEBHOOK_ENTRY,
    )) as RepairOutcome;
    if (outcome !== 'repaired') continue;
    repaired += 1;
    opts.onRepaired?.(requestId);
    opts.logger.warn(
      { requestId, afterMs: opts.afterMs },
      'Request had a record but no send job (its enqueue was interrupted); completed with its recipients failed',
    );
  }
  return repaired;
}

/** How often the sweep runs: a tenth of the repair age, between 50 ms and 30 s. */
export function repairIntervalMs(afterMs: number): number {
  return Math.min(30_000, Math.max(50, Math.floor(afterMs / 10)));
}

/**
 * Runs the sweep every `repairIntervalMs(afterMs)` until `stop()`, one sweep at a time. `stop()`
 * does not wait for a sweep in flight: each repair is one script, so stopping halfway loses nothing.
 */
export function startEnqueueRepair(opts: EnqueueRepairOptions): { stop(): void } {
  const log = opts.logger.child({ module: 'enqueue-repair' });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      sweepInterruptedEnqueues({ ...opts, logger: log })
        .catch((err: unknown) => log.warn({ err }, 'Sweep of interrupted enqueues failed; retrying later'))
        .finally(schedule);
    }, repairIntervalMs(opts.afterMs));
    // The sweep never keeps a process alive on its own.
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
