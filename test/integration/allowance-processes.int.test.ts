import { describe, expect, it } from 'vitest';
import { startFakeDescom } from '../helpers/fake-descom.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { redisEnv } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { waitFor } from '../helpers/wait.js';
import { spawnWorker } from '../helpers/worker-process.js';
import { busiestWindow } from '../helpers/windows.js';

/**
 * The provider's allowance as the provider sees it: two real worker processes share one Descom
 * account of 20 requests per second, and the fake counts when each request arrived. On main before
 * this, BullMQ's fixed-window limiter let 2 × 20 through in a second (one window per process
 * boundary, and two processes), and 8 batches in flight per process capped a slow provider.
 */
describe('the provider allowance across worker processes', () => {
  it('never lets more than DESCOM_RATE_PER_S requests reach Descom in any second, and uses it', async () => {
    const rate = 20;
    const fake = await startFakeDescom({ latencyMs: 300 });
    onTeardown('fake Descom', () => fake.close());
    const { config, client } = await startTestSmsq({ api: false, workers: false });
    const env = {
      ...redisEnv(),
      SMSQ_PREFIX: config.prefix,
      SMSQ_PROVIDER: 'descom',
      ...fake.env,
      DESCOM_RATE_PER_S: String(rate),
      LOG_LEVEL: 'info',
    };
    // 140 single-recipient requests: 140 Descom batches, 7 s of work at the allowance.
    const numbers = spanishMobiles(140);
    const ids: string[] = [];
    for (const to of numbers) ids.push((await client.send({ to, text: 'Hola' })).id);
    const workers = [spawnWorker(env), spawnWorker(env)];
    await Promise.all(workers.map((w) => w.waitForOutput('Workers started')));

    await waitFor(() => Promise.resolve(fake.recipientsDelivered().length === numbers.length), {
      timeoutMs: 30_000,
      what: 'every batch sent',
    });
    const sends = fake.requests.filter((r) => r.path === '/api/sms/send').map((r) => r.at);
    expect(sends).toHaveLength(numbers.length);
    expect(busiestWindow(sends, 1_000)).toBeLessThanOrEqual(rate);
    // With 300 ms per call, 6 calls must be in flight to use 20/s: the workers size for it. Over
    // the steady part (first and last second left out), the rate reached is near the allowance.
    const sorted = [...sends].sort((a, b) => a - b);
    const steady = sorted.filter((t) => t >= sorted[0]! + 1_000 && t < sorted.at(-1)! - 1_000);
    const perSecond = (steady.length / (steady.at(-1)! - steady[0]!)) * 1_000;
    expect(perSecond).toBeGreaterThan(rate * 0.8);
    expect(new Set(fake.recipientsDelivered()).size).toBe(numbers.length);
    for (const id of ids.slice(0, 5)) expect((await client.get(id)).counts.accepted).toBe(1);
  });
});
