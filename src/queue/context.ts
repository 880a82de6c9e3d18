import type { EventEmitter } from 'node:events';
import { Queue, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ProviderId } from '../message/types.js';
import { createProducerConnection, createWorkerConnection, ensureReady } from '../redis.js';
import type { BatchJobData, SendJobData } from './jobs.js';
import {
  batchQueueName,
  LANES,
  sendQueueName,
  smsqKeys,
  type Lane,
  type PerLane,
  type SmsqKeys,
} from './names.js';
import { RecordStore } from './records.js';
import { SuppressionList } from './suppressions.js';

/** Connections, queues and stores shared by the client, the HTTP API and the workers. */
export interface QueueContext {
  redis: Redis;
  prefix: string;
  keys: SmsqKeys;
  store: RecordStore;
  suppressions: SuppressionList;
  /** The send queue of a lane (see Lane; a request's lane is `laneOf(priority)`). */
  sendQueue: (lane: Lane) => Queue<SendJobData>;
  /** A provider's batch queues, one per lane. */
  batchQueues: (provider: ProviderId) => PerLane<Queue<BatchJobData>>;
  /** For a producer connection: resolves when Redis answers, or throws RedisUnavailableError within 1 s. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * After a BullMQ queue or worker closed: BullMQ removes its connections' listeners on close but
 * leaves a pending "wait until ready" to reject later (when the connection ends before it was ever
 * ready: Redis down, or frozen while a connection was starting), which then emits an 'error' nobody
 * listens to and crashes the process (seen: `smsq start` exiting 1 inside its grace period with
 * Redis SIGSTOPped). A listener left on each of its connections absorbs it.
 */
export function absorbLateErrors(target: Queue | Worker): void {
  const internals = target as unknown as Record<
    'connection' | 'blockingConnection',
    EventEmitter | undefined
  >;
  for (const connection of [internals.connection, internals.blockingConnection]) {
    connection?.on('error', () => undefined);
  }
}

/** Closes a queue that shares its connection (see {@link absorbLateErrors}). */
export async function closeSharedQueue(queue: Queue): Promise<void> {
  await queue.close().catch(() => undefined);
  absorbLateErrors(queue);
}

/**
 * Options of every smsq Queue (each Queue writes them to the queue's meta, so all must agree).
 * BullMQ's event stream of a queue keeps its last `maxLen` events (default 10,000, ~1 KB each);
 * smsq reads none of them (it follows its own records), so a short stream saves memory.
 */
export function smsqQueueOptions(connection: Redis, prefix: string) {
  return { connection, prefix, streams: { events: { maxLen: 500 } } };
}

export function createQueueContext(opts: {
  redisUrl: string;
  prefix: string;
  defaultCountry: string;
  /** `producer`: fail fast while Redis is down; `worker`: wait through a restart. */
  role: 'producer' | 'worker';
}): QueueContext {
  const redis =
    opts.role === 'producer'
      ? createProducerConnection(opts.redisUrl)
      : createWorkerConnection(opts.redisUrl);
  const keys = smsqKeys(opts.prefix);
  const queueOpts = smsqQueueOptions(redis, opts.prefix);
  const sendQueues = {
    priority: new Queue<SendJobData>(sendQueueName('priority'), queueOpts),
    bulk: new Queue<SendJobData>(sendQueueName('bulk'), queueOpts),
  } satisfies PerLane<Queue<SendJobData>>;
  const batchQueues = new Map<ProviderId, PerLane<Queue<BatchJobData>>>();
  let closed: Promise<void> | undefined;
  return {
    redis,
    prefix: opts.prefix,
    keys,
    store: new RecordStore(redis, keys),
    suppressions: new SuppressionList(redis, keys.suppressions, opts.defaultCountry),
    sendQueue: (lane) => sendQueues[lane],
    batchQueues(provider) {
      let queues = batchQueues.get(provider);
      if (!queues) {
        queues = {
          priority: new Queue<BatchJobData>(batchQueueName(provider, 'priority'), queueOpts),
          bulk: new Queue<BatchJobData>(batchQueueName(provider, 'bulk'), queueOpts),
        };
        batchQueues.set(provider, queues);
      }
      return queues;
    },
    ready: () => ensureReady(redis),
    close() {
      closed ??= (async () => {
        const all = [sendQueues, ...batchQueues.values()].flatMap((lanes) => LANES.map((l) => lanes[l]));
        for (const queue of all) await closeSharedQueue(queue);
        redis.disconnect();
      })();
      return closed;
    },
  };
}
