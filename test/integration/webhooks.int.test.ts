import { describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { SmsClient } from '../../src/client.js';
import type { Config } from '../../src/config.js';
import { buildApp } from '../../src/http/app.js';
import { createQueueContext, type QueueContext } from '../../src/queue/context.js';
import { startWorkers, type SmsqWorkers } from '../../src/queue/workers.js';
import type { WebhookDeliveryResult } from '../../src/webhooks/delivery.js';
import { startWebhookWorkers } from '../../src/webhooks/worker.js';
import { COMPLETED_WEBHOOK_ENTRY } from '../../src/queue/records.js';
import { eventually } from '../helpers/wait.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { captureLogger, removePrefix, testConfig } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import {
  startWebhookReceiver,
  type ReceivedWebhook,
  type WebhookReceiver,
} from '../helpers/webhook-receiver.js';

const AUTH = { authorization: 'Bearer test-key', 'content-type': 'application/json' };

interface HookedSmsq {
  config: Config;
  url: string;
  context: QueueContext;
  workers: SmsqWorkers;
  /** Every webhook delivery attempt's result, in order (what `smsq_webhook_deliveries_total` counts). */
  results: WebhookDeliveryResult[];
  lines: () => string;
  post(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }>;
  get(id: string): Promise<Record<string, unknown>>;
  /** Restarts the API (a new app and producer connection on the same prefix); the workers stay. */
  restartApi(): Promise<void>;
}

describe('producer webhooks', () => {
  async function receiver(): Promise<WebhookReceiver> {
    const r = await startWebhookReceiver();
    onTeardown('webhook receiver', () => r.close());
    return r;
  }

  /**
   * The API and the simulator workers in this process, webhooks signed with the receiver's secret.
   * Built here rather than with startTestSmsq: the tests count each delivery attempt's result
   * (`onWebhookDelivery`) and restart the API alone, which the harness does not expose.
   */
  async function startSmsq(env: Record<string, string>): Promise<HookedSmsq> {
    const config = testConfig({
      SMSQ_API_KEYS: 'test-key',
      SMSQ_WEBHOOK_RETRY_MS: '50',
      SMSQ_WEBHOOK_COALESCE_MS: '300',
      SMSQ_WEBHOOK_TIMEOUT_MS: '2000',
      ...env,
    });
    const { logger, lines } = captureLogger('info');
    const results: WebhookDeliveryResult[] = [];
    const workers = await startWorkers({ config, logger, onWebhookDelivery: (r) => results.push(r) });
    let context!: QueueContext;
    let app!: FastifyInstance;
    let url = '';
    const startApi = async () => {
      context = createQueueContext({ ...config, redisUrl: config.redisUrl, role: 'producer' });
      app = await buildApp({ config, context, logger, workers });
      url = await app.listen({ port: 0, host: '127.0.0.1' });
    };
    const stopApi = async () => {
      await app.close();
      await context.close();
    };
    await startApi();
    onTeardown('webhook smsq', async () => {
      await stopApi();
      await workers.close(500);
      await removePrefix(config.redisUrl, config.prefix);
    });
    return {
      config,
      get url() {
        return url;
      },
      get context() {
        return context;
      },
      workers,
      results,
      lines,
      async post(body) {
        const res = await fetch(`${url}/v1/messages`, {
          method: 'POST',
          headers: AUTH,
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      },
      async get(id) {
        const res = await fetch(`${url}/v1/messages/${id}`, { headers: AUTH });
        return (await res.json()) as Record<string, unknown>;
      },
      async restartApi() {
        await stopApi();
        await startApi();
      },
    };
  }

  const privateOk = (r: WebhookReceiver) => ({
    SMSQ_WEBHOOK_SECRET: r.secret,
    SMSQ_WEBHOOK_ALLOW_PRIVATE: 'true',
  });
  const ofType = (r: WebhookReceiver, type: string): ReceivedWebhook[] =>
    r.delivered().filter((h) => h.type === type);

  /** Pushes final delivery updates exactly as the delivery-report side does (see the Redis contract). */
  async function pushUpdates(smsq: HookedSmsq, requestId: string, numbers: string[], delivered?: object) {
    const { redis, keys } = smsq.workers.context;
    const multi = redis.multi();
    numbers.forEach((to, i) =>
      multi.rpush(
        keys.webhookUpdates(requestId),
        JSON.stringify({
          to,
          status: 'delivered',
          at: new Date().toISOString(),
          provider: 'simulator',
          providerId: `p${i}`,
        }),
      ),
    );
    if (delivered)
      multi.rpush(keys.webhookUpdates(requestId), JSON.stringify({ type: 'delivered', delivery: delivered }));
    multi.zadd(keys.webhookDue, 'NX', Date.now(), requestId);
    await multi.exec();
  }

  it('sends a signed message.completed with the request summary (no batches) and its tag', async () => {
    const hooks = await receiver();
    const smsq = await startSmsq(privateOk(hooks));
    const sent = await smsq.post({
      to: spanishMobiles(3),
      text: 'Hola',
      callbackUrl: hooks.url,
      tag: 'order-42',
    });
    expect(sent.status).toBe(202);
    const id = sent.body.id as string;

    await hooks.waitFor((r) => ofType(r, 'message.completed').length === 1);
    const [completed] = ofType(hooks, 'message.completed');
    const { batches: _batches, ...summary } = await smsq.get(id);
    expect(completed!.id).toMatch(new RegExp(`^msg_${id}_\\d+$`));
    expect(completed!.body.data).toEqual({ ...summary, tag: 'order-42' });
    expect(completed!.body.data).not.toHaveProperty('batches');
    expect(completed!.body.data.counts).toMatchObject({ total: 3, accepted: 3 });
    expect(Date.parse(completed!.body.timestamp)).toBeGreaterThan(0);
    expect(hooks.rejected).toEqual([]);
    expect(smsq.results).toEqual(['delivered']);
  });

  it('uses SMSQ_WEBHOOK_URL for a request without callbackUrl', async () => {
    const hooks = await receiver();
    const smsq = await startSmsq({ ...privateOk(hooks), SMSQ_WEBHOOK_URL: hooks.url });
    const sent = await smsq.post({ to: spanishMobiles(1), text: 'Hola' });
    await hooks.waitFor((r) => ofType(r, 'message.completed').length === 1);
    expect(ofType(hooks, 'message.completed')[0]!.body.data.id).toBe(sent.body.id);
  });

  it('retries a 500 with the same webhook-id and body until the receiver accepts it', async () => {
    const hooks = await receiver();
    hooks.respond((h) => (h.attempt <= 3 ? 500 : 200));
    const smsq = await startSmsq(privateOk(hooks));
    await smsq.post({ to: spanishMobiles(2), text: 'Hola', callbackUrl: hooks.url });

    await hooks.waitFor((r) => r.delivered().length === 1);
    expect(hooks.requests.map((r) => r.status)).toEqual([500, 500, 500, 200]);
    expect(new Set(hooks.requests.map((r) => r.id)).size).toBe(1);
    expect(new Set(hooks.requests.map((r) => r.raw)).size).toBe(1);
    expect(hooks.changedBodies).toEqual([]);
    expect(hooks.rejected).toEqual([]);
    await eventually(() => Promise.resolve(smsq.results.length === 4));
    expect(smsq.results).toEqual(['retried', 'retried', 'retried', 'delivered']);
    // The receiver's address never reaches the logs beyond its host.
    expect(smsq.lines()).not.toContain('/hooks');
    expect(smsq.lines()).not.toContain(hooks.secret);
  });

  it('coalesces 1,200 updates into three message.delivery events of at most 500, one per window, then message.delivered', async () => {
    const hooks = await receiver();
    const smsq = await startSmsq(privateOk(hooks));
    const numbers = spanishMobiles(1_200);
    const sent = await smsq.post({
      to: numbers.slice(0, 1),
      text: 'Hola',
      callbackUrl: hooks.url,
      tag: 't1',
    });
    const id = sent.body.id as string;
    await hooks.waitFor((r) => ofType(r, 'message.completed').length === 1);

    const delivery = { pending: 0, delivered: 1_200, undelivered: 0, expired: 0, unreported: 0 };
    await pushUpdates(smsq, id, numbers, delivery);
    await hooks.waitFor((r) => ofType(r, 'message.delivered').length === 1, 15_000);

    const events = ofType(hooks, 'message.delivery').sort((a, b) =>
      a.body.timestamp.localeCompare(b.body.timestamp),
    );
    const updates = events.map((e) => e.body.data.updates as { to: string }[]);
    expect(updates.map((u) => u.length)).toEqual([500, 500, 200]);
    expect(updates.flat().map((u) => u.to)).toEqual(numbers);
    for (const e of events) expect(e.body.data).toMatchObject({ id, tag: 't1' });
    const times = events.map((e) => Date.parse(e.body.timestamp));
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(300);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(300);

    const [delivered] = ofType(hooks, 'message.delivered');
    expect(delivered!.body.data).toEqual({ id, tag: 't1', delivery });
    expect(Date.parse(delivered!.body.timestamp)).toBeGreaterThanOrEqual(times[2]!);
    // Event ids count the request's events: the delivered one was cut after the updates before it.
    const seq = (h: ReceivedWebhook) => Number(h.id.split('_').pop());
    expect(seq(delivered!)).toBeGreaterThan(Math.max(...events.map(seq)));
    expect(hooks.rejected).toEqual([]);
    // Drained to the end: nothing waits in the list, the due set or the outbox.
    const { redis, keys } = smsq.workers.context;
    await eventually(
      async () => (await redis.exists(keys.webhookUpdates(id), keys.webhookDue, keys.webhookOutbox)) === 0,
    );
  });

  it('stops the deliveries of a request once its receiver answers 410; later events are dropped and counted', async () => {
    const hooks = await receiver();
    hooks.respond(() => 410);
    const smsq = await startSmsq(privateOk(hooks));
    const numbers = spanishMobiles(5);
    const sent = await smsq.post({ to: numbers, text: 'Hola', callbackUrl: hooks.url });
    await hooks.waitFor((r) => r.requests.length === 1);
    await eventually(() => Promise.resolve(smsq.results.length === 1));

    await pushUpdates(smsq, sent.body.id as string, numbers, {
      pending: 0,
      delivered: 5,
      undelivered: 0,
      expired: 0,
      unreported: 0,
    });
    await eventually(() => Promise.resolve(smsq.results.length === 3));
    expect(smsq.results).toEqual(['gone', 'gone', 'gone']);
    expect(hooks.requests).toHaveLength(1);

    // Another request to the same URL is not affected.
    hooks.respond(() => 200);
    await smsq.post({ to: numbers, text: 'Hola', callbackUrl: hooks.url });
    await hooks.waitFor((r) => r.delivered().length === 1);
  });

  it('refuses callbackUrl targets on loopback, private and link-local addresses, names that do not resolve and non-http schemes', async () => {
    const hooks = await receiver();
    const smsq = await startSmsq({ SMSQ_WEBHOOK_SECRET: hooks.secret });
    for (const callbackUrl of [
      hooks.url,
      'http://10.0.0.1/hooks',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]:8080/hooks',
      'http://[::ffff:127.0.0.1]/hooks',
      'http://no-such-host.invalid/hooks',
      'ftp://example.com/hooks',
    ]) {
      const res = await smsq.post({ to: spanishMobiles(1), text: 'Hola', callbackUrl });
      expect(res.status, callbackUrl).toBe(400);
      expect(res.body.issues, callbackUrl).toEqual([{ path: 'callbackUrl', message: expect.any(String) }]);
    }
    // Nothing half-enqueued: no request record at all.
    expect(await smsq.context.redis.keys(`${smsq.config.prefix}:req:*`)).toEqual([]);
  });

  it('refuses a callbackUrl when no secret is configured, naming callbackUrl', async () => {
    const smsq = await startSmsq({});
    const res = await smsq.post({
      to: spanishMobiles(1),
      text: 'Hola',
      callbackUrl: 'https://example.com/h',
    });
    expect(res.status).toBe(400);
    expect(res.body.issues).toEqual([
      { path: 'callbackUrl', message: expect.stringMatching(/SMSQ_WEBHOOK_SECRET/) },
    ]);
  });

  it('checks the target again at delivery: a private target the workers do not allow is refused, not sent', async () => {
    const hooks = await receiver();
    const smsq = await startSmsq({ SMSQ_WEBHOOK_SECRET: hooks.secret });
    // A producer that allows private targets; the workers do not.
    const client = new SmsClient({
      redis: smsq.config.redisUrl,
      prefix: smsq.config.prefix,
      webhooks: { allowPrivate: true },
    });
    onTeardown('client', () => client.close());
    await client.send({ to: spanishMobiles(1), text: 'Hola', callbackUrl: hooks.url });
    await eventually(() => Promise.resolve(smsq.results.length === 1));
    expect(smsq.results).toEqual(['refused']);
    expect(hooks.requests).toEqual([]);
  });

  it('loses nothing across an API restart, nor from an enqueue whose producer died before its job', async () => {
    const hooks = await receiver();
    const smsq = await startSmsq({ ...privateOk(hooks), SMSQ_ENQUEUE_REPAIR_AFTER_MS: '500' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await smsq.post({ to: spanishMobiles(2, i * 2), text: 'Hola', callbackUrl: hooks.url })).body
          .id as string,
      );
    await smsq.restartApi();
    for (let i = 3; i < 6; i++)
      ids.push(
        (await smsq.post({ to: spanishMobiles(2, i * 2), text: 'Hola', callbackUrl: hooks.url })).body
          .id as string,
      );

    // A producer that wrote its record (with its webhook target) and died before adding the job.
    const { store } = smsq.context;
    const orphan = 'rorphan00000000000000000000000000';
    await store.createRequest(
      {
        id: orphan,
        createdAt: new Date().toISOString(),
        total: 2,
        invalid: [],
        estimatedCredits: 2,
        accepted: '{}',
        webhookUrl: hooks.url,
      },
      undefined,
      orphan, // its enqueue mark, written with the record as enqueueRequest does
    );
    ids.push(orphan);

    await hooks.waitFor((r) => ofType(r, 'message.completed').length === 7, 15_000);
    const completed = ofType(hooks, 'message.completed');
    expect(completed.map((h) => h.body.data.id).sort()).toEqual([...ids].sort());
    expect(completed.find((h) => h.body.data.id === orphan)!.body.data.counts).toMatchObject({
      total: 2,
      failed: 2,
    });
    expect(hooks.requests).toHaveLength(7);
  });
});

describe('webhooks in `smsq start`', () => {
  it('counts deliveries in smsq_webhook_deliveries_total and shows the webhooks queue in /metrics and the dashboard', async () => {
    const hooks = await startWebhookReceiver();
    onTeardown('webhook receiver', () => hooks.close());
    const service = await startTestSmsq({
      logLevel: 'fatal',
      env: { SMSQ_WEBHOOK_SECRET: hooks.secret, SMSQ_WEBHOOK_ALLOW_PRIVATE: 'true' },
    });
    const res = await service.api('/v1/messages', {
      body: { to: spanishMobiles(1), text: 'Hola', callbackUrl: hooks.url },
    });
    expect(res.status).toBe(202);
    await hooks.waitFor((r) => r.delivered().length === 1);
    let text = '';
    await eventually(async () => {
      text = await (await fetch(`${service.url}/metrics`)).text();
      return /^smsq_webhook_deliveries_total\{result="delivered"\} 1$/m.test(text);
    });
    expect(text).toMatch(/^bullmq_job_count\{queue="webhooks", state="completed"[^}]*\} 1$/m);
    const listing = await fetch(`${service.url}/admin/queues/api/queues`);
    const queues = ((await listing.json()) as { queues: { name: string }[] }).queues;
    expect(queues.map((q) => q.name)).toContain('webhooks');
  });
});

/** Webhook workers alone on a fresh prefix, with test-only options (DNS of the pre-check, retry period). */
function startWebhooksOnly(
  env: Record<string, string>,
  extra: Pick<Parameters<typeof startWebhookWorkers>[0], 'lookup' | 'retryForMs'>,
) {
  const config = testConfig(env);
  const { logger, lines } = captureLogger('info');
  const context = createQueueContext({ ...config, role: 'worker' });
  const commands = context.redis.duplicate();
  const workerConnection = context.redis.duplicate();
  const results: WebhookDeliveryResult[] = [];
  const webhooks = startWebhookWorkers({
    config,
    logger,
    connections: { commands, worker: workerConnection },
    onDelivery: (r) => results.push(r),
    ...extra,
  });
  onTeardown('webhook workers', async () => {
    await webhooks.worker.close();
    await webhooks.stop();
    commands.disconnect();
    workerConnection.disconnect();
    await context.close();
    await removePrefix(config.redisUrl, config.prefix);
  });
  return {
    context,
    results,
    lines,
    /** A request record with `webhookUrl` and its `message.completed` entry, due now. */
    async addCompletedEvent(id: string, webhookUrl: string) {
      await context.store.createRequest({
        id,
        createdAt: new Date().toISOString(),
        total: 1,
        invalid: [],
        estimatedCredits: 1,
        accepted: '{}',
        webhookUrl,
      });
      await context.redis.rpush(context.keys.webhookUpdates(id), COMPLETED_WEBHOOK_ENTRY);
      await context.redis.zadd(context.keys.webhookDue, Date.now(), id);
    },
  };
}

describe('webhook target checked at connect', () => {
  it('refuses a name that passed the check but resolves to loopback when connecting (DNS rebinding)', async () => {
    const hooks = await startWebhookReceiver();
    onTeardown('webhook receiver', () => hooks.close());
    // The pre-delivery check sees a public address; the connection's own lookup gets 127.0.0.1.
    const only = startWebhooksOnly(
      { SMSQ_WEBHOOK_SECRET: hooks.secret },
      { lookup: () => Promise.resolve(['93.184.216.34']) },
    );
    const port = new URL(hooks.url).port;
    await only.addCompletedEvent('rrebind0000000000000000000000000', `http://localhost:${port}/hooks`);
    await eventually(() => Promise.resolve(only.results.length === 1));
    expect(only.results).toEqual(['refused']);
    expect(hooks.requests).toEqual([]);
  });
});

describe('webhook retry period', () => {
  it('gives an event up once its retry period is over, counted failed, every attempt under the same id', async () => {
    const hooks = await startWebhookReceiver();
    onTeardown('webhook receiver', () => hooks.close());
    hooks.respond(() => 500);
    // A retry period of 400 ms instead of 24 h: the policy is the same, only shorter.
    const only = startWebhooksOnly(
      { SMSQ_WEBHOOK_SECRET: hooks.secret, SMSQ_WEBHOOK_ALLOW_PRIVATE: 'true', SMSQ_WEBHOOK_RETRY_MS: '50' },
      { retryForMs: 400 },
    );
    const id = 'rgiveup00000000000000000000000000';
    await only.addCompletedEvent(id, hooks.url);
    await eventually(() => Promise.resolve(only.results.includes('failed')));
    expect(only.results.at(-1)).toBe('failed');
    expect(only.results.slice(0, -1).every((r) => r === 'retried')).toBe(true);
    expect(only.results.length).toBeGreaterThanOrEqual(3);
    expect(hooks.requests).toHaveLength(only.results.length);
    expect(new Set(hooks.requests.map((r) => r.id))).toEqual(new Set([`msg_${id}_1`]));
    expect(only.lines()).toContain('Webhook given up');
  });
});
