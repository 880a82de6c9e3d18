import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { SmsqKeys } from '../queue/names.js';
import { withScripts } from '../redis.js';
import {
  buildWebhookJob,
  MAX_UPDATES_PER_EVENT,
  WEBHOOK_JOB,
  type CutEvent,
  type WebhookJobData,
} from './events.js';

/**
 * Cuts the next event off one request's webhook list, in one step: the entries leave the list and
 * land in the outbox under a new event id together, so a crash loses none and never builds one
 * twice. A run of plain updates (≤ ARGV[3]) becomes one `delivery` event, at most one per
 * ARGV[2] ms per request (the script reschedules the request when it is too early); a typed entry
 * (`{"type":"delivered",…}`, `{"type":"completed"}`) becomes an event of its own, in list order.
 * A request without `webhookUrl` (or whose record is gone) has its list dropped.
 *
 * KEYS: the request's list, its record, the due set, the outbox. ARGV: request id, coalesce ms, max updates.
 * Returns false (nothing to cut now) or {event id, event JSON}.
 */
const CUT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local head = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
if #head == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return false
end
local r = redis.call('HMGET', KEYS[2], 'webhookUrl', 'tag', 'webhookDeliveryAt')
if not r[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return false
end
local function typed(entry) return string.sub(entry, 1, 9) == '{"type":"' end
local coalesce = tonumber(ARGV[2])
local last = tonumber(r[3] or '0') or 0
local kind
local n = 0
if typed(head[1]) then
  kind = string.match(head[1], '^{"type":"([%w_-]+)"') or 'unknown'
  n = 1
else
  if now < last + coalesce then
    redis.call('ZADD', KEYS[3], last + coalesce, ARGV[1])
    return false
  end
  kind = 'delivery'
  for _, entry in ipairs(head) do
    if typed(entry) then break end
    n = n + 1
  end
end
local seq = redis.call('HINCRBY', KEYS[2], 'webhookSeq', 1)
local id = 'msg_' .. ARGV[1] .. '_' .. seq
local meta = { id = id, kind = kind, requestId = ARGV[1], url = r[1], at = now }
if r[2] then meta.tag = r[2] end
local parts = {}
for i = 1, n do parts[i] = head[i] end
local event = '{"meta":' .. cjson.encode(meta) .. ',"entries":[' .. table.concat(parts, ',') .. ']}'
redis.call('LTRIM', KEYS[1], n, -1)
redis.call('HSET', KEYS[4], id, event)
if kind == 'delivery' then
  redis.call('HSET', KEYS[2], 'webhookDeliveryAt', now)
  last = now
end
local nextEntry = redis.call('LRANGE', KEYS[1], 0, 0)[1]
if not nextEntry then
  redis.call('ZREM', KEYS[3], ARGV[1])
elseif typed(nextEntry) then
  redis.call('ZADD', KEYS[3], now, ARGV[1])
else
  redis.call('ZADD', KEYS[3], math.max(now, last + coalesce), ARGV[1])
end
return {id, event}
`;

interface OutboxCommands {
  smsqCutWebhookEvent(
    listKey: string,
    requestKey: string,
    dueKey: string,
    outboxKey: string,
    requestId: string,
    coalesceMs: number,
    maxUpdates: number,
  ): Promise<[string, string] | null>;
}

const SCRIPTS = { smsqCutWebhookEvent: { keys: 4, lua: CUT_SCRIPT } };

/** Options of every webhook job: retried by the webhook backoff (see retry-policy.ts) until the processor gives up. */
export const WEBHOOK_JOB_OPTIONS = {
  // The processor stops retrying after 24 h; this only bounds a runaway.
  attempts: 1_000,
  backoff: { type: 'webhook' },
  // Kept a day: re-adding an event from the outbox (after a crash) is then a no-op, not a second delivery.
  removeOnComplete: { age: 24 * 3600 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

export interface WebhookOutboxDeps {
  redis: Redis;
  keys: SmsqKeys;
  queue: Queue<WebhookJobData>;
  coalesceMs: number;
  /** `GET /v1/messages/:id` without `batches`, for `message.completed`; undefined when the request is gone. */
  completedData: (requestId: string) => Promise<Record<string, unknown> | undefined>;
  logger: Logger;
}

/** Drains the due set into webhook jobs: cut (one script), then publish (add the job, clear the outbox entry). */
export class WebhookOutbox {
  private readonly log: Logger;

  constructor(private readonly deps: WebhookOutboxDeps) {
    this.log = deps.logger.child({ module: 'webhook-outbox' });
  }

  /** Cuts one event off a request's list; undefined when there is nothing to cut now. */
  async cut(requestId: string): Promise<{ id: string; json: string } | undefined> {
    const { redis, keys } = this.deps;
    const result = await withScripts<OutboxCommands>(redis, SCRIPTS).smsqCutWebhookEvent(
      keys.webhookUpdates(requestId),
      keys.request(requestId),
      keys.webhookDue,
      keys.webhookOutbox,
      requestId,
      this.deps.coalesceMs,
      MAX_UPDATES_PER_EVENT,
    );
    return result ? { id: result[0], json: result[1] } : undefined;
  }

  /**
   * Turns an outbox entry into its job (job id = event id: adding it again is a no-op while the
   * job is kept), then removes the entry. Safe to run twice for one event, from any process.
   */
  async publish(id: string, json: string): Promise<void> {
    const job = await buildWebhookJob(JSON.parse(json) as CutEvent, this.deps.completedData);
    if (job) await this.deps.queue.add(WEBHOOK_JOB, job, { ...WEBHOOK_JOB_OPTIONS, jobId: id });
    else this.log.warn({ eventId: id }, 'Webhook event dropped: unknown type or its request is gone');
    await this.deps.redis.hdel(this.deps.keys.webhookOutbox, id);
  }

  /**
   * Cuts and publishes every event due now: requests side by side, each request's events in
   * order. Returns how many were published.
   */
  async drainDue(limit = 200): Promise<number> {
    const { redis, keys } = this.deps;
    let published = 0;
    for (;;) {
      const [seconds, micros] = await redis.time();
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      const due = await redis.zrangebyscore(keys.webhookDue, '-inf', now, 'LIMIT', 0, limit);
      const counts = await Promise.all(
        due.map(async (requestId) => {
          let n = 0;
          for (let cut = await this.cut(requestId); cut; cut = await this.cut(requestId)) {
            await this.publish(cut.id, cut.json);
            n += 1;
          }
          return n;
        }),
      );
      published += counts.reduce((a, b) => a + b, 0);
      // A full page may have more behind it; a request waiting on its window stays due, so stop
      // once a page cut nothing.
      if (due.length < limit || counts.every((n) => n === 0)) return published;
    }
  }

  /** Publishes what a crashed process cut but never published (and, harmlessly, what one is publishing now). */
  async publishLeftovers(): Promise<number> {
    const { redis, keys } = this.deps;
    let cursor = '0';
    let published = 0;
    do {
      const [next, flat] = await redis.hscan(keys.webhookOutbox, cursor, 'COUNT', 200);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        await this.publish(flat[i]!, flat[i + 1]!);
        published += 1;
      }
    } while (cursor !== '0');
    return published;
  }
}
