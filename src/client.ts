import type { Redis } from 'ioredis';
import type { SendRequestInput } from './message/request.js';
import type { ProviderId } from './message/types.js';
import { createQueueContext, type QueueContext } from './queue/context.js';
import { enqueueRequest, type AcceptedRequest, type EnqueueDeps } from './queue/enqueue.js';
import { cancelRequest, getRequestSummary } from './queue/status.js';
import type { RequestSummary } from './queue/summary.js';
import { createWebhookTargetResolver } from './webhooks/target.js';

export interface SmsClientOptions {
  /** Redis URL (default `redis://127.0.0.1:6379`). */
  redis?: string;
  /** BullMQ prefix shared with the workers (default `smsq`). */
  prefix?: string;
  /** Country for numbers written without a country code (default `ES`). */
  defaultCountry?: string;
  /**
   * Webhooks of the requests this client sends, signed by the workers with their
   * SMSQ_WEBHOOK_SECRET: `url` for requests without `callbackUrl` (as SMSQ_WEBHOOK_URL), and
   * whether private targets are allowed. Without it, a request with `callbackUrl` is refused.
   */
  webhooks?: { url?: string; allowPrivate?: boolean };
}

export interface SendOptions {
  /** Same key + same request → same id (kept 24 h); same key + another request → IdempotencyConflictError. */
  idempotencyKey?: string;
}

/**
 * For producer apps: enqueue SMS requests and follow them. Fails fast (RedisUnavailableError)
 * while Redis is down instead of queueing commands in memory.
 */
export class SmsClient {
  private readonly context: QueueContext;

  constructor(options: SmsClientOptions = {}) {
    this.context = createQueueContext({
      redisUrl: options.redis ?? 'redis://127.0.0.1:6379',
      prefix: options.prefix ?? 'smsq',
      defaultCountry: options.defaultCountry ?? 'ES',
      role: 'producer',
    });
    this.defaultCountry = options.defaultCountry ?? 'ES';
    this.webhookTarget = options.webhooks
      ? createWebhookTargetResolver({
          defaultUrl: options.webhooks.url,
          signing: true,
          allowPrivate: options.webhooks.allowPrivate ?? false,
        })
      : undefined;
  }

  private readonly webhookTarget: EnqueueDeps['webhookTarget'];

  private readonly defaultCountry: string;

  /** The Redis connection (for health checks). */
  get redis(): Redis {
    return this.context.redis;
  }

  async send(
    request: SendRequestInput & { provider?: ProviderId },
    options: SendOptions = {},
  ): Promise<AcceptedRequest> {
    await this.context.ready();
    const { accepted } = await enqueueRequest(
      {
        store: this.context.store,
        sendQueue: this.context.sendQueue,
        defaultCountry: this.defaultCountry,
        webhookTarget: this.webhookTarget,
      },
      request,
      { idempotencyKey: options.idempotencyKey, scope: 'client' },
    );
    return accepted;
  }

  async get(id: string): Promise<RequestSummary> {
    await this.context.ready();
    return getRequestSummary(this.context.store, id);
  }

  /** Resolves when every recipient has an outcome (state `completed`); rejects after `timeoutMs`. */
  async wait(id: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<RequestSummary> {
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    let delay = 50;
    for (;;) {
      const summary = await this.get(id);
      if (summary.state === 'completed') return summary;
      if (Date.now() > deadline)
        throw new Error(`Request ${id} not completed within ${options.timeoutMs ?? 600_000} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(options.pollMs ?? 1_000, delay * 2);
    }
  }

  /** Cancels batches not yet sent; those already in flight finish. */
  async cancel(id: string): Promise<{ cancelledBatches: number }> {
    await this.context.ready();
    return cancelRequest(this.context.store, id);
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}
