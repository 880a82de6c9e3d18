import { describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { SmsClient } from '../../src/client.js';
import { createQueueContext } from '../../src/queue/context.js';
import { WEBHOOK_QUEUE } from '../../src/webhooks/events.js';
import { WebhookOutbox } from '../../src/webhooks/outbox.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { redisUrl, testPrefix } from '../helpers/smsq.js';
import { spawnSmsq, waitForLine } from '../helpers/cli.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

describe('webhooks across a worker crash', () => {
  it('a worker SIGKILLed mid-delivery: every event still arrives, under the same webhook-id and body', async () => {
    const hooks = await startWebhookReceiver();
    onTeardown('webhook receiver', () => hooks.close());
    const prefix = testPrefix();
    const env = {
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
      SMSQ_LOCK_DURATION_MS: '1000',
      SIMULATOR_LATENCY_MS: '0',
      // No delivery reports within the test (the default comes 2 s after the send): the events
      // counted here are the five message.completed, not message.delivery events racing them.
      SIMULATOR_DLR_DELAY_MS: '600000',
      SMSQ_WEBHOOK_SECRET: hooks.secret,
      SMSQ_WEBHOOK_ALLOW_PRIVATE: 'true',
      SMSQ_WEBHOOK_RETRY_MS: '50',
      SMSQ_WEBHOOK_TIMEOUT_MS: '8000',
      LOG_LEVEL: 'info',
    };
    const worker = async (): Promise<WorkerProcess> => {
      const w = spawnWorker(env);
      await w.waitForOutput('Workers started');
      return w;
    };

    // Before the crash the receiver holds every request (the worker dies with them in flight).
    const inFlight = new Set<string>();
    let crashed = false;
    hooks.respond(async (h) => {
      if (crashed) return 200;
      inFlight.add(h.id);
      await new Promise((r) => setTimeout(r, 4_000));
      return 503;
    });

    const first = await worker();
    const client = new SmsClient({ redis: redisUrl(), prefix, webhooks: { allowPrivate: true } });
    onTeardown('client', () => client.close());
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        (await client.send({ to: spanishMobiles(3, i * 3), text: 'Hola', callbackUrl: hooks.url })).id,
      );
    }
    await eventually(() => inFlight.size >= 3, { timeoutMs: 10_000, what: '3 webhooks in flight' });
    expect(inFlight.size).toBeGreaterThanOrEqual(3);
    await first.kill('SIGKILL');
    crashed = true;
    const before = [...inFlight];

    await worker();
    await hooks.waitFor((r) => r.delivered().length === 5, 20_000);
    const delivered = hooks.delivered();
    expect(delivered.map((h) => h.body.data.id).sort()).toEqual([...ids].sort());
    // The ids in flight at the crash are the ids delivered after it: no event was rebuilt.
    for (const id of before) expect(delivered.map((h) => h.id)).toContain(id);
    expect(new Set(hooks.requests.map((h) => h.id)).size).toBe(5);
    expect(hooks.changedBodies).toEqual([]);
    expect(hooks.rejected).toEqual([]);
  });
});

describe('webhooks cut but not yet queued', () => {
  it('an event cut by a process that died before queuing it is queued by the next one, under its id', async () => {
    const hooks = await startWebhookReceiver();
    onTeardown('webhook receiver', () => hooks.close());
    // Nothing runs yet: the workers start once the event is cut.
    const smsq = await startTestSmsq({
      api: false,
      workers: false,
      logLevel: 'warn',
      env: { SMSQ_WEBHOOK_SECRET: hooks.secret, SMSQ_WEBHOOK_ALLOW_PRIVATE: 'true' },
    });
    const { config, logger } = smsq;
    const context = createQueueContext({ ...config, role: 'worker' });
    onTeardown('worker context', () => context.close());
    const { store, redis, keys } = context;
    const id = 'rcut0000000000000000000000000000';
    await store.createRequest({
      id,
      createdAt: new Date().toISOString(),
      total: 1,
      invalid: [],
      estimatedCredits: 1,
      accepted: '{}',
      webhookUrl: hooks.url,
    });
    await redis.rpush(
      keys.webhookUpdates(id),
      JSON.stringify({
        to: '+34600000001',
        status: 'delivered',
        at: new Date().toISOString(),
        provider: 'ovh',
      }),
    );
    await redis.zadd(keys.webhookDue, Date.now(), id);
    // The cut of a process that dies right after it (its job never added).
    const queue = new Queue(WEBHOOK_QUEUE, { connection: redis, prefix: config.prefix });
    const outbox = new WebhookOutbox({
      redis,
      keys,
      queue,
      coalesceMs: 0,
      logger,
      completedData: () => Promise.resolve(undefined),
    });
    const cut = await outbox.cut(id);
    await queue.close();
    expect(cut?.id).toBe(`msg_${id}_1`);
    expect(await redis.llen(keys.webhookUpdates(id))).toBe(0);

    await smsq.startWorkers();
    await hooks.waitFor((r) => r.delivered().length === 1);
    expect(hooks.delivered()[0]!.id).toBe(cut!.id);
    expect(hooks.delivered()[0]!.body.data).toMatchObject({ id, updates: [{ to: '+34600000001' }] });
    expect(await redis.hlen(keys.webhookOutbox)).toBe(0);
  });
});

describe('webhooks across an API process crash', () => {
  it('an API process SIGKILLed while requests arrive, then restarted: every request it recorded gets its message.completed', async () => {
    const hooks = await startWebhookReceiver();
    onTeardown('webhook receiver', () => hooks.close());
    const { config, workers } = await startTestSmsq({
      api: false,
      logLevel: 'warn',
      env: {
        SMSQ_WEBHOOK_SECRET: hooks.secret,
        SMSQ_WEBHOOK_ALLOW_PRIVATE: 'true',
        SMSQ_ENQUEUE_REPAIR_AFTER_MS: '500',
      },
    });
    const env = {
      REDIS_URL: config.redisUrl,
      SMSQ_PREFIX: config.prefix,
      PORT: '0',
      SMSQ_API_KEYS: 'test-key',
      SMSQ_WEBHOOK_SECRET: hooks.secret,
      SMSQ_WEBHOOK_ALLOW_PRIVATE: 'true',
      LOG_LEVEL: 'info',
    };
    const headers = { authorization: 'Bearer test-key', 'content-type': 'application/json' };
    const post = (url: string, i: number) =>
      fetch(`${url}/v1/messages`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ to: spanishMobiles(2, i * 2), text: 'Hola', callbackUrl: hooks.url }),
      })
        .then(async (res) => (res.status === 202 ? ((await res.json()) as { id: string }).id : undefined))
        .catch(() => undefined);
    const first = spawnSmsq(['api'], env);
    const firstUrl = urlOf(await waitForLine(first, /"smsq API listening/));
    const answered: string[] = [];
    const inFlight = Array.from({ length: 80 }, (_, i) =>
      post(firstUrl, i).then((id) => {
        if (id) answered.push(id);
      }),
    );
    // Killed as the first answers come back, with the others in flight.
    await eventually(() => answered.length > 0, { intervalMs: 5, what: 'a first answer' });
    first.kill('SIGKILL');
    await Promise.all(inFlight);

    const second = spawnSmsq(['api'], env);
    const secondUrl = urlOf(await waitForLine(second, /"smsq API listening/));
    for (let i = 80; i < 85; i++) answered.push((await post(secondUrl, i))!);

    // Every request with a record (answered or not) completes and gets exactly one message.completed.
    const recorded = async () =>
      (await workers.context.redis.keys(`${config.prefix}:req:*`)).map((k) => k.split(':').pop()!);
    await eventually(async () => {
      const ids = new Set(ofCompleted(hooks));
      return (await recorded()).every((id) => ids.has(id));
    }, 20_000);
    const completed = ofCompleted(hooks);
    expect(completed).toEqual(expect.arrayContaining(answered));
    expect(new Set(completed).size).toBe(completed.length);
    expect((await recorded()).sort()).toEqual([...completed].sort());
    expect(hooks.rejected).toEqual([]);
  });
});

/** Request ids of the message.completed events received (2xx), one per webhook-id. */
function ofCompleted(hooks: WebhookReceiver): string[] {
  return hooks
    .delivered()
    .filter((h) => h.type === 'message.completed')
    .map((h) => h.body.data.id as string);
}

const urlOf = (line: string) => (JSON.parse(line) as { url: string }).url;
