import type { Redis } from 'ioredis';
import type { SendRequestInput } from './message/request.js';
import type { ProviderId } from './message/types.js';
import { createQueueContext, type QueueContext } from './queue/context.js';
import { enqueueRequest, type AcceptedRequest, type EnqueueDeps } from './queue/enqueue.js';
import { cancelRequest, getRequestSummary } from './queue/status.js';
import type { RequestSummary } from './queue/summary.js';
import { createWebhookTargetResolver } from './webhooks/target.js';
import { listRecipients, RECIPIENT_STATUSES, type RecipientPage } from './queue/recipients-list.js';
import { InputError, NotFoundError } from './errors.js';
import type { DeliveryCounts } from './queue/delivery-store.js';

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

  /** The request's result (the shape of `GET /v1/messages/:id`), its delivery counts included. */
  async get(id: string): Promise<RequestSummary & { delivery: DeliveryCounts }> {
    await this.context.ready();
    return getRequestSummary(this.context.store, id);
  }

  /**
   * Resolves when every recipient has an outcome (state `completed`); rejects after `timeoutMs`.
   * Each poll reads the request's state alone; the summary (every batch and its recipients) is
   * read once, when it is final.
   */
  async wait(id: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<RequestSummary> {
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    let delay = 50;
    for (;;) {
      await this.context.ready();
      const state = await this.context.store.getRequestState(id);
      // A missing request: `get` says so (NotFoundError).
      if (state === undefined || state === 'completed') {
        const summary = await this.get(id);
        if (summary.state === 'completed') return summary;
      }
      if (Date.now() > deadline)
        throw new Error(`Request ${id} not completed within ${options.timeoutMs ?? 600_000} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(options.pollMs ?? 1_000, delay * 2);
    }
  }

  /**
   * A page of the request's recipients with their outcome and delivery status (the shape of
   * `GET /v1/messages/:id/recipients`): `status` filters by outcome or delivery status, `limit`
   * 1–1000 (default 100), `cursor` is the previous page's `nextCursor`.
   */
  async recipients(
    id: string,
    options: { status?: string; limit?: number; cursor?: string } = {},
  ): Promise<RecipientPage> {
    await this.context.ready();
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1_000)
      throw new InputError('Invalid limit', [{ path: 'limit', message: 'an integer from 1 to 1000' }]);
    if (options.status !== undefined && !RECIPIENT_STATUSES.includes(options.status))
      throw new InputError('Invalid status', [
        { path: 'status', message: `one of ${RECIPIENT_STATUSES.join(', ')}` },
      ]);
    const page = await listRecipients(this.context.store, id, { ...options, limit });
    if (!page) throw new NotFoundError(`No request with id ${id}`);
    return page;
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
