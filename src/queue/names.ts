import type { ProviderId } from '../message/types.js';

/**
 * A lane is a pair of queues of its own (a send queue, and a batch queue per provider) with its own
 * workers and slots in every worker process: `priority` carries `high` requests, `bulk` every
 * other one, so bulk work (campaigns) can never hold a slot a `high` send waits for. Which lane a
 * request takes is decided in one place, `laneOf` (src/queue/jobs.ts).
 */
export type Lane = 'priority' | 'bulk';
export const LANES: readonly Lane[] = ['priority', 'bulk'];

/** Whether `value` names a lane (the one check of a `--lane` value and of StartWorkersOptions.lanes). */
export function isLane(value: string): value is Lane {
  return (LANES as readonly string[]).includes(value);
}

/** A value per lane (a lane's queue of one kind). */
export type PerLane<T> = Readonly<Record<Lane, T>>;

/**
 * One job per send request; its processor is the splitter. The bulk lane keeps the name queues
 * had before lanes (`send`), so jobs queued then go on; the priority lane's is `send-priority`.
 */
export function sendQueueName(lane: Lane): string {
  return lane === 'bulk' ? 'send' : 'send-priority';
}
export const SEND_JOB = 'send';
export const BATCH_JOB = 'batch';
/** Delivery reports: polls per sent batch and pushed reports, apart from sending (src/queue/delivery-worker.ts). */
export const DLR_QUEUE = 'dlr';

/**
 * One queue per provider account and lane, so a pause applies to that provider only and bulk
 * batches never hold the slots of `high` ones: `batch-<provider>` (bulk, the name from before
 * lanes) and `batch-<provider>-priority`.
 */
export function batchQueueName(provider: ProviderId, lane: Lane): string {
  return lane === 'bulk' ? `batch-${provider}` : `batch-${provider}-priority`;
}

/** Redis keys smsq owns beside BullMQ's, all under the same prefix (a hash tag keeps them in one slot). */
export function smsqKeys(prefix: string) {
  return {
    request: (id: string) => `${prefix}:req:${id}`,
    batch: (id: string) => `${prefix}:batch:${id}`,
    idempotency: (hash: string) => `${prefix}:idem:${hash}`,
    ledger: `${prefix}:ledger`,
    suppressions: `${prefix}:suppressions`,
    paused: (provider: ProviderId) => `${prefix}:paused:${provider}`,
    /** ZSET of the provider account's recent call times (src/queue/allowance.ts). */
    allowance: (provider: ProviderId) => `${prefix}:allowance:${provider}`,
    /**
     * Sorted set of enqueues in progress (member `<requestId>` or `<requestId>|<idempotency hash>`,
     * score = Redis time in ms): added before a request record, removed once its send job exists.
     * A member left behind is an enqueue that died between the two; see enqueue-repair.ts.
     */
    enqueuing: `${prefix}:enqueuing`,
    /** Hash of a provider's circuit breaker (state, cause, times); `:calls` is its list of recent outcomes. */
    circuit: (provider: ProviderId) => `${prefix}:circuit:${provider}`,
    /** Hash of failover counts, field `<from>|<to>|<reason>` (read by /metrics). */
    failovers: `${prefix}:failovers`,
    /** Final delivery updates waiting to be sent as webhooks, per request (a LIST of JSON). */
    webhookUpdates: (requestId: string) => `${prefix}:whq:${requestId}`,
    /** ZSET of requests with webhook updates waiting (score: earliest time to drain, ms). */
    webhookDue: `${prefix}:whq-due`,
    /**
     * Webhook events cut from `webhookUpdates` whose delivery job may not exist yet (HASH event id →
     * event JSON): written in the same script as the cut, removed once the job is added (src/webhooks/).
     */
    webhookOutbox: `${prefix}:wh-outbox`,
    /** A batch's delivery status: one fixed-size record per recipient, then the batch's request, provider and times (src/queue/delivery-store.ts). */
    delivery: (batchId: string) => `${prefix}:dlr:${batchId}`,
    /** What a batch's report source adds to its delivery state (notes, longer codes, OVH's id range); absent when nothing. */
    deliveryBatch: (batchId: string) => `${prefix}:dlrb:${batchId}`,
    /** A request's delivery counts (final statuses; pending is what `accepted` leaves). */
    deliveryRequest: (requestId: string) => `${prefix}:dlrq:${requestId}`,
    /** Delivery counters and latency histogram of every provider, for /metrics. */
    deliveryStats: `${prefix}:dlr-stats`,
    /** ZSET of batches still awaiting reports, scored by their lowest provider id (push lookups). */
    deliveryIds: (provider: ProviderId) => `${prefix}:dlr-ids:${provider}`,
  };
}

export type SmsqKeys = ReturnType<typeof smsqKeys>;
