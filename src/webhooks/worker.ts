import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { closeSharedQueue, smsqQueueOptions } from '../queue/context.js';
import { smsqKeys } from '../queue/names.js';
import { RecordStore } from '../queue/records.js';
import { getRequestSummary } from '../queue/status.js';
import { createWebhookProcessor, type WebhookDeliveryResult } from './delivery.js';
import { WEBHOOK_QUEUE, type WebhookJobData } from './events.js';
import { WebhookOutbox } from './outbox.js';
import { webhookRetryDelayMs } from './retry-policy.js';
import type { AddressLookup } from './target.js';

export interface WebhookWorkersOptions {
  config: Config;
  logger: Logger;
  /**
   * Two connections of their own (closed by the caller): `commands` for the drain, the job adds
   * and the record reads; `worker` for the BullMQ Worker. Never the batch workers' connection,
   * whose `WAIT`/`WAITAOF` before each provider call must not queue behind webhook traffic.
   */
  connections: { commands: Redis; worker: Redis };
  onDelivery?: (result: WebhookDeliveryResult) => void;
  /** Tests: DNS of the delivery-time check, and a shorter retry period than 24 h. */
  lookup?: AddressLookup;
  retryForMs?: number;
}

export interface WebhookWorkers {
  worker: Worker<WebhookJobData, WebhookDeliveryResult>;
  /** Stops draining and closes the queue handle; the Worker is closed by its owner, beside the others. */
  stop(): Promise<void>;
}

/** How often the due set is drained: a quarter of the coalescing window, between 20 and 250 ms. */
function drainIntervalMs(coalesceMs: number): number {
  return Math.min(250, Math.max(20, Math.floor(coalesceMs / 4)));
}

/** Leftovers of a crashed process are published this often (and once at start). */
const LEFTOVER_INTERVAL_MS = 5_000;

/**
 * The webhook side of a worker process: a drain loop that cuts due events into the `webhooks`
 * queue, and its own Worker with its own concurrency, so a slow receiver never holds up sending.
 */
export function startWebhookWorkers(opts: WebhookWorkersOptions): WebhookWorkers {
  const { config, logger } = opts;
  const store = new RecordStore(opts.connections.commands, smsqKeys(config.prefix));
  const wh = config.webhooks;
  const log = logger.child({ module: 'webhooks' });
  if (wh.url && !wh.secret) {
    log.warn('SMSQ_WEBHOOK_URL is set without SMSQ_WEBHOOK_SECRET: no request gets webhooks');
  }
  const queue = new Queue<WebhookJobData>(WEBHOOK_QUEUE, smsqQueueOptions(store.redis, config.prefix));
  const outbox = new WebhookOutbox({
    redis: store.redis,
    keys: store.keys,
    queue,
    coalesceMs: wh.coalesceMs,
    logger,
    async completedData(requestId) {
      const summary = await getRequestSummary(store, requestId).catch(() => undefined);
      if (!summary) return undefined;
      const { batches: _batches, ...rest } = summary;
      return rest;
    },
  });
  const processor = createWebhookProcessor({
    config: wh,
    redis: store.redis,
    keys: store.keys,
    logger,
    onDelivery: opts.onDelivery,
    lookup: opts.lookup,
    retryForMs: opts.retryForMs,
  });
  const worker = new Worker<WebhookJobData, WebhookDeliveryResult>(
    WEBHOOK_QUEUE,
    (job) => processor.process(job),
    {
      prefix: config.prefix,
      connection: opts.connections.worker,
      concurrency: wh.concurrency,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.lockDurationMs,
      // A worker killed mid-delivery leaves its job stalled: it comes back (same webhook-id) rather than failing.
      maxStalledCount: 10,
      settings: { backoffStrategy: (attemptsMade: number) => webhookRetryDelayMs(attemptsMade, wh.retryMs) },
    },
  );

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let lastLeftovers = 0;
  let running: Promise<void> | undefined;
  const tick = async () => {
    if (Date.now() - lastLeftovers >= LEFTOVER_INTERVAL_MS) {
      lastLeftovers = Date.now();
      await outbox.publishLeftovers();
    }
    await outbox.drainDue();
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick()
        .catch((err: unknown) => log.warn({ err }, 'Webhook drain failed; retrying shortly'))
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, drainIntervalMs(wh.coalesceMs));
    timer.unref();
  };
  schedule();

  return {
    worker,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await processor.close().catch(() => undefined);
      await closeSharedQueue(queue);
    },
  };
}
