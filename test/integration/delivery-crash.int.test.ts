import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { SmsClient } from '../../src/client.js';
import { smsqKeys } from '../../src/queue/names.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { eventually } from '../helpers/pipeline.js';
import { redisUrl, removePrefix, uniquePrefix } from '../helpers/smsq.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

describe('a worker SIGKILLed while delivery reports are being applied', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('loses no report and counts none twice: counts, metrics and webhook updates agree with the recipients', async () => {
    const prefix = uniquePrefix();
    cleanups.push(() => removePrefix(redisUrl(), prefix));
    const env = {
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
      SMSQ_LOCK_DURATION_MS: '1000',
      SIMULATOR_LATENCY_MS: '0',
      SIMULATOR_DLR_DELAY_MS: '500',
      SMSQ_DLR_POLL_MS: '100',
      LOG_LEVEL: 'info',
    };
    const start = async (): Promise<WorkerProcess> => {
      const w = spawnWorker(env);
      cleanups.push(() => w.kill('SIGKILL'));
      await w.waitForOutput('Workers started');
      return w;
    };
    const client = new SmsClient({ redis: redisUrl(), prefix });
    cleanups.push(() => client.close());
    const redis = new Redis(redisUrl());
    cleanups.push(() => Promise.resolve(redis.disconnect()));
    const keys = smsqKeys(prefix);

    const first = await start();
    const numbers = spanishMobiles(50_000);
    const ids: string[] = [];
    for (let r = 0; r < 5; r++) {
      const { id } = await client.send({ to: numbers.slice(r * 10_000, (r + 1) * 10_000), text: 'Hola' });
      // Stand in for the webhook branch, which marks a request with a target at enqueue.
      await redis.hset(keys.request(id), 'webhookUrl', 'https://example.com/hook');
      ids.push(id);
    }
    const finals = async () => {
      const counts = await Promise.all(
        ids.map((id) => redis.hget(keys.deliveryRequest(id), 'finals').then((n) => Number(n ?? 0))),
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
    // Let anything still in flight land (a double count would show as more than 50,000).
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await finals()).toBe(50_000);
    let updates = 0;
    for (const id of ids) {
      const result = await client.get(id);
      expect(result.counts.accepted).toBe(10_000);
      expect(result.delivery.pending).toBe(0);
      expect(result.delivery.delivered + result.delivery.undelivered).toBe(10_000);
      const list = (await redis.lrange(keys.webhookUpdates(id), 0, -1)).map(
        (u) => JSON.parse(u) as { to?: string; type?: string },
      );
      const perRecipient = list.filter((u) => u.to !== undefined);
      expect(perRecipient).toHaveLength(10_000);
      expect(new Set(perRecipient.map((u) => u.to)).size).toBe(10_000);
      expect(list.filter((u) => u.type === 'delivered')).toHaveLength(1);
      updates += perRecipient.length;
    }
    const stats = await redis.hgetall(keys.deliveryStats);
    expect(Number(stats['simulator|delivered']) + Number(stats['simulator|undelivered'])).toBe(50_000);
    expect(updates).toBe(50_000);
    console.log(`reports recorded when the worker was killed: ${atKill} of 50000`);
  }, 120_000);
});
