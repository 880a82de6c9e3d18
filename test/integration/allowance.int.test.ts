import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAllowanceMeter } from '../../src/queue/allowance.js';
import { redisUrl, uniquePrefix } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';

/** The most calls that started in any window of `windowMs` (each window opening at a call). */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[j]! <= sorted[i]! - windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('the Redis call allowance shared by processes', () => {
  let a: Redis;
  let b: Redis;
  beforeAll(() => {
    // Two connections stand for two processes.
    a = new Redis(redisUrl());
    b = new Redis(redisUrl());
    onTeardown('connections', async () => {
      await Promise.all([a.quit(), b.quit()]);
    });
  });

  it('lets no more than the rate start in any second, across two meters on one key, and reaches the rate', async () => {
    const key = `${uniquePrefix()}:allowance:ovh`;
    const rate = 10;
    const meters = [a, b].map((redis) => createAllowanceMeter({ redis, key, ratePerSecond: rate }));
    const signal = new AbortController().signal;
    const started = performance.now();
    const times: number[] = [];
    // 3 callers per meter, 5 calls each: 30 calls.
    await Promise.all(
      meters.flatMap((meter) =>
        Array.from({ length: 3 }, async () => {
          for (let i = 0; i < 5; i++) {
            await meter(signal);
            times.push(performance.now());
          }
        }),
      ),
    );
    const elapsed = performance.now() - started;

    expect(times).toHaveLength(30);
    // Windows are timed by Redis; ours see each grant a little later, by a few ms of jitter.
    expect(busiestWindow(times, 950)).toBeLessThanOrEqual(rate);
    // 30 calls at 10/s: 10 at once, 10 after 1 s, 10 after 2 s; near the rate, not far below it.
    expect(elapsed).toBeGreaterThan(1_900);
    expect(elapsed).toBeLessThan(3_500);
    expect(await a.zcard(key)).toBeLessThanOrEqual(rate);
    expect(await a.pttl(key)).toBeGreaterThan(0);
  });

  it('stops waiting when the signal fires', async () => {
    const key = `${uniquePrefix()}:allowance:ovh`;
    const meter = createAllowanceMeter({ redis: a, key, ratePerSecond: 1 });
    await meter(new AbortController().signal);
    const controller = new AbortController();
    const waiting = meter(controller.signal);
    setTimeout(() => controller.abort(new Error('shutting down')), 50);
    const started = performance.now();
    await expect(waiting).rejects.toThrow('shutting down');
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('rejects at once with an already aborted signal', async () => {
    const meter = createAllowanceMeter({ redis: a, key: `${uniquePrefix()}:allowance:x`, ratePerSecond: 5 });
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(meter(controller.signal)).rejects.toThrow('gone');
  });
});
