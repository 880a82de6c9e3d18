import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { SmsClient } from '../../src/client.js';
import { smsqKeys } from '../../src/queue/names.js';
import {
  expectDeliveryWebhooks,
  waitForDeliveredWebhook,
  webhookEnv,
  type RequestWebhooks,
} from '../helpers/delivery-webhooks.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { redisUrl, testPrefix } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { eventually } from '../helpers/wait.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

describe('a worker SIGKILLed while delivery reports are being applied', () => {
  it('loses no report and counts none twice: counts, metrics and the webhooks agree with the recipients', async () => {
    const prefix = testPrefix();
    const receiver = await startWebhookReceiver();
    onTeardown('webhook receiver', () => receiver.close());
    const env = {
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
      SMSQ_LOCK_DURATION_MS: '1000',
      SIMULATOR_LATENCY_MS: '0',
      SIMULATOR_DLR_DELAY_MS: '500',
      SMSQ_DLR_POLL_MS: '100',
      LOG_LEVEL: 'info',
      ...webhookEnv(receiver),
    };
    const start = async (): Promise<WorkerProcess> => {
      const w = spawnWorker(env);
      await w.waitForOutput('Workers started');
      return w;
    };
    // The workers sign with SMSQ_WEBHOOK_SECRET; the producer only checks the target.
    const client = new SmsClient({ redis: redisUrl(), prefix, webhooks: { allowPrivate: true } });
    onTeardown('client', () => client.close());
    const redis = new Redis(redisUrl());
    onTeardown('redis connection', () => redis.disconnect());
    const keys = smsqKeys(prefix);

    const first = await start();
    const numbers = spanishMobiles(50_000);
    const requests: { id: string; to: string[] }[] = [];
    for (let r = 0; r < 5; r++) {
      const to = numbers.slice(r * 10_000, (r + 1) * 10_000);
      const { id } = await client.send({ to, text: 'Hola', callbackUrl: receiver.url });
      requests.push({ id, to });
    }
    const finals = async () => {
      const counts = await Promise.all(
        requests.map(({ id }) => redis.hget(keys.deliveryRequest(id), 'finals').then((n) => Number(n ?? 0))),
      );
      return counts.reduce((a, b) => a + b, 0);
    };
    // Kill the worker while reports are landing: some recorded, many not yet.
    await eventually(async () => (await finals()) >= 2_000, 30_000);
    await first.kill('SIGKILL');
    const atKill = await finals();
    expect(atKill).toBeLessThan(50_000);

    await start();
    await eventually(async () => (await finals()) === 50_000, 30_000);
    const lastReportSeenAt = Date.now();
    // Let anything still in flight land (a double count would show as more than 50,000).
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await finals()).toBe(50_000);
    const hooks: RequestWebhooks[] = [];
    for (const { id, to } of requests) {
      const result = await client.get(id);
      expect(result.counts.accepted).toBe(10_000);
      expect(result.delivery.pending).toBe(0);
      expect(result.delivery.delivered + result.delivery.undelivered).toBe(10_000);
      const got = await waitForDeliveredWebhook(receiver, id, 30_000);
      expectDeliveryWebhooks(receiver, got, { accepted: to, delivery: result.delivery });
      hooks.push(got);
    }
    const stats = await redis.hgetall(keys.deliveryStats);
    expect(Number(stats['simulator|delivered']) + Number(stats['simulator|undelivered'])).toBe(50_000);
    expect(hooks.reduce((n, h) => n + h.updates.length, 0)).toBe(50_000);
    const lastDelivered = Math.max(...hooks.map((h) => h.delivered.receivedAt));
    console.log(
      `reports recorded when the worker was killed: ${atKill} of 50000; webhooks: ` +
        `${hooks.reduce((n, h) => n + h.events.length, 0)} events in ${hooks.reduce((n, h) => n + h.requests, 0)} ` +
        `requests; last message.delivered ${lastDelivered - lastReportSeenAt} ms after the last report was seen applied`,
    );
  }, 120_000);
});
