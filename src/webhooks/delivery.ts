import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import type { WebhookConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { SmsqKeys } from '../queue/names.js';
import { isBlockedAddress } from './address-policy.js';
import type { WebhookJobData } from './events.js';
import { shouldRetryWebhook } from './retry-policy.js';
import { webhookTargetProblem, type AddressLookup } from './target.js';

/** The result label of `smsq_webhook_deliveries_total`, one per attempt. */
export const WEBHOOK_DELIVERY_RESULTS = ['delivered', 'retried', 'failed', 'gone', 'refused'] as const;
export type WebhookDeliveryResult = (typeof WEBHOOK_DELIVERY_RESULTS)[number];

/** The error code of a connection refused because its host resolved to a blocked address. */
const REFUSED_CODE = 'SMSQ_WEBHOOK_REFUSED';

/**
 * The DNS lookup of the delivery agent: the address actually connected to is checked too, so a
 * name that resolved to a public address at the check and to a private one at connect (DNS
 * rebinding) is still refused.
 */
function guardedLookup(
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const blocked = addresses.find((a) => isBlockedAddress(a.address));
    if (blocked) {
      return callback(
        Object.assign(new Error(`${hostname} resolves to a blocked address`), { code: REFUSED_CODE }),
        [],
      );
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (!first)
      return callback(Object.assign(new Error(`${hostname} does not resolve`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

export interface WebhookDeliveryDeps {
  config: WebhookConfig;
  redis: Redis;
  keys: SmsqKeys;
  logger: Logger;
  onDelivery?: (result: WebhookDeliveryResult) => void;
  /** DNS for the pre-delivery check (tests). */
  lookup?: AddressLookup;
  /** How long an event is retried (default 24 h; tests shorten it). */
  retryForMs?: number;
}

/** The host of a URL, for logs: a URL's path or query may carry the producer's token. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * The webhook job processor: one signed POST per attempt (same `webhook-id` and body, fresh
 * `webhook-timestamp` and signature). 2xx: delivered. 410: no more deliveries of this request to
 * that URL. A target now resolving to a blocked address: refused, not sent. Anything else: thrown,
 * so BullMQ retries it after the webhook backoff, until 24 h have passed; then given up.
 */
export function createWebhookProcessor(deps: WebhookDeliveryDeps) {
  const { config, redis, keys } = deps;
  const log = deps.logger.child({ module: 'webhooks' });
  const signer = config.secret ? new Webhook(config.secret) : undefined;
  const agent = new Agent({
    connect: config.allowPrivate ? {} : { lookup: guardedLookup },
    headersTimeout: config.timeoutMs,
    bodyTimeout: config.timeoutMs,
  });
  const count = (result: WebhookDeliveryResult) => deps.onDelivery?.(result);

  async function send(data: WebhookJobData, signer: Webhook): Promise<number | Error> {
    const now = new Date();
    try {
      const res = await request(data.url, {
        method: 'POST',
        dispatcher: agent,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'smsq-webhooks',
          'webhook-id': data.eventId,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': signer.sign(data.eventId, now, data.body),
        },
        body: data.body,
        signal: AbortSignal.timeout(config.timeoutMs),
      });
      await res.body.dump().catch(() => undefined);
      return res.statusCode;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  async function processWebhookJob(job: Job<WebhookJobData>): Promise<WebhookDeliveryResult> {
    const data = job.data;
    const context = {
      eventId: data.eventId,
      requestId: data.requestId,
      type: data.type,
      host: hostOf(data.url),
    };
    const requestKey = keys.request(data.requestId);

    if ((await redis.hget(requestKey, 'webhookGone')) === data.url) {
      count('gone');
      log.info(context, 'Webhook not sent: the receiver answered 410 Gone for this request');
      return 'gone';
    }
    const problem = await webhookTargetProblem(data.url, {
      allowPrivate: config.allowPrivate,
      lookup: deps.lookup,
    });
    if (problem) {
      count('refused');
      log.warn({ ...context, problem }, 'Webhook refused: its target is not allowed');
      return 'refused';
    }
    if (!signer) {
      count('failed');
      log.error(context, 'Webhook not sent: SMSQ_WEBHOOK_SECRET is not set in this worker');
      throw new UnrecoverableError('SMSQ_WEBHOOK_SECRET is not set');
    }

    const outcome = await send(data, signer);
    if (typeof outcome === 'number' && outcome >= 200 && outcome < 300) {
      count('delivered');
      log.debug({ ...context, status: outcome, attempt: job.attemptsMade + 1 }, 'Webhook delivered');
      return 'delivered';
    }
    if (outcome === 410) {
      // Stop here and for every later event of this request to this URL.
      if ((await redis.exists(requestKey)) === 1) await redis.hset(requestKey, 'webhookGone', data.url);
      count('gone');
      log.info(context, 'Webhook receiver answered 410 Gone; no more webhooks for this request');
      return 'gone';
    }
    if (outcome instanceof Error && (outcome as NodeJS.ErrnoException).code === REFUSED_CODE) {
      count('refused');
      log.warn(context, 'Webhook refused: its host resolved to a blocked address at connect');
      return 'refused';
    }
    const reason =
      typeof outcome === 'number'
        ? `answered ${outcome}`
        : ((outcome as NodeJS.ErrnoException).code ?? outcome.name);
    const attempt = job.attemptsMade + 1;
    if (!shouldRetryWebhook(attempt, Date.now() - job.timestamp, config.retryMs, deps.retryForMs)) {
      count('failed');
      log.error(
        { ...context, reason, attempts: attempt },
        'Webhook given up: no success within its retry period',
      );
      return 'failed';
    }
    count('retried');
    log.warn({ ...context, reason, attempt }, 'Webhook delivery failed; retrying later');
    throw new Error(`Webhook ${data.eventId} ${reason}`);
  }

  return { process: processWebhookJob, close: () => agent.close() };
}
