import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CallMeter } from '../../src/providers/types.js';
import { createAllowanceMeter } from '../../src/queue/allowance.js';
import { redisUrl, uniquePrefix } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { busiestWindow } from '../helpers/windows.js';

/** `count` callers taking normal calls in turn from `meters` until `stop`; when each was granted. */
function normalCallers(
  meters: readonly CallMeter[],
  count: number,
  stop: AbortSignal,
): { normalGrants: number[]; normal: Promise<void>[] } {
  const normalGrants: number[] = [];
  const normal = Array.from({ length: count }, async (_, i) => {
    const meter = meters[i % meters.length]!;
    while (!stop.aborted) {
      await meter(stop, 'normal').catch(() => undefined);
      if (!stop.aborted) normalGrants.push(performance.now());
    }
  });
  return { normalGrants, normal };
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
    // 30 calls at 10/s, spread one per 104 ms: about 3 s; near the rate, not far below it (a
    // loaded machine wastes a grant now and then: see STALE_GRANT_MS; a second each is far above).
    expect(elapsed).toBeGreaterThan(1_900);
    expect(elapsed).toBeLessThan(4_500);
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

  it('takes a fresh grant when the round trip that got one was slow (the grant may be stale)', async () => {
    const key = `${uniquePrefix()}:allowance:descom`;
    const meter = createAllowanceMeter({ redis: a, key, ratePerSecond: 100 });
    await Promise.all([a.ping(), b.ping()]); // both connections up before Redis is made busy
    // Redis busy for 60 ms (a script spinning on TIME, from the other connection): the meter's take
    // queues behind it, so its round trip lasts far longer than a grant may be old when used.
    const busy = b.eval(
      `local t = redis.call('TIME')
       local start = tonumber(t[1]) * 1000000 + tonumber(t[2])
       repeat
         local n = redis.call('TIME')
       until tonumber(n[1]) * 1000000 + tonumber(n[2]) - start > tonumber(ARGV[1])
       return 1`,
      0,
      60_000,
    );
    await new Promise((r) => setTimeout(r, 10));
    await meter(new AbortController().signal);
    await busy;
    // The slow grant is left unused (it still counts against the rate), and a second one is taken
    // (a third or fourth if the retakes are slow too, on a loaded machine: 3 retakes at most).
    const grants = await a.zcard(key);
    expect(grants).toBeGreaterThanOrEqual(2);
    expect(grants).toBeLessThanOrEqual(4);
  });

  it('rejects at once with an already aborted signal', async () => {
    const meter = createAllowanceMeter({ redis: a, key: `${uniquePrefix()}:allowance:x`, ratePerSecond: 5 });
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(meter(controller.signal)).rejects.toThrow('gone');
  });

  it('keeps a call of each second free for urgent calls while they are recent, and lets them ahead of the pace', async () => {
    const key = `${uniquePrefix()}:allowance:descom`;
    const rate = 10;
    const meterA = createAllowanceMeter({ redis: a, key, ratePerSecond: rate });
    const meterB = createAllowanceMeter({ redis: b, key, ratePerSecond: rate });
    const signal = new AbortController().signal;
    const stop = new AbortController();
    // 8 normal callers on two "processes" fill the allowance, as a campaign does.
    const { normalGrants, normal } = normalCallers([meterA, meterB], 8, stop.signal);
    await new Promise((r) => setTimeout(r, 1_200));
    // Three one-time codes, each after the one before left the window: the first finds the
    // allowance full; from then on a call is kept free for them, and they take it at once.
    const urgentWaits: number[] = [];
    for (let i = 0; i < 3; i++) {
      const asked = performance.now();
      await meterA(signal, 'urgent');
      urgentWaits.push(performance.now() - asked);
      await new Promise((r) => setTimeout(r, 1_100));
    }
    const from = performance.now();
    await new Promise((r) => setTimeout(r, 2_000));
    stop.abort(new Error('done'));
    await Promise.all(normal);

    // Without urgent calls in these 2 s, the normal ones still leave one call of every second free.
    const after = normalGrants.filter((t) => t >= from);
    expect(busiestWindow(after, 1_000)).toBe(rate - 1);
    // Not one paced slot (104 ms) to wait for, nor the next free one: a Redis round trip or two.
    expect(Math.max(...urgentWaits.slice(1))).toBeLessThan(30);
  });

  it('lets an urgent call go at the next free slot while normal calls queue, and background calls wait behind both', async () => {
    const key = `${uniquePrefix()}:allowance:descom`;
    const rate = 5;
    const meterA = createAllowanceMeter({ redis: a, key, ratePerSecond: rate });
    const meterB = createAllowanceMeter({ redis: b, key, ratePerSecond: rate });
    const signal = new AbortController().signal;
    const stop = new AbortController();
    // 12 normal callers on two "processes" keep the window full.
    const { normalGrants, normal } = normalCallers([meterA, meterB], 12, stop.signal);
    await new Promise((r) => setTimeout(r, 1_200)); // the window is full and callers are queued
    const background = (async () => {
      const asked = performance.now();
      await meterB(signal, 'background');
      return performance.now() - asked;
    })();
    const asked = performance.now();
    await meterA(signal, 'urgent');
    const urgentWait = performance.now() - asked;
    const backgroundDone = await Promise.race([
      background.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 1_500)),
    ]);
    stop.abort(new Error('done'));
    await Promise.all(normal);

    // One call frees every 1/rate s: the urgent one takes the next, not a place behind 12 others.
    expect(urgentWait).toBeLessThan(2 * (1_000 / rate) + 100);
    // The background call does not get a slot while normal callers keep asking.
    expect(backgroundDone).toBe(false);
    expect(busiestWindow(normalGrants, 950)).toBeLessThanOrEqual(rate);
  });

  it('leaves no listener on the caller’s signal however many times it waited', async () => {
    const key = `${uniquePrefix()}:allowance:descom`;
    const meter = createAllowanceMeter({ redis: a, key, ratePerSecond: 50 });
    const controller = new AbortController();
    let listeners = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    const remove = controller.signal.removeEventListener.bind(controller.signal);
    controller.signal.addEventListener = (...args: Parameters<typeof add>) => {
      listeners++;
      add(...args);
    };
    controller.signal.removeEventListener = (...args: Parameters<typeof remove>) => {
      listeners--;
      remove(...args);
    };
    // 30 calls at 50/s on one signal: most of them wait, some several times.
    for (let i = 0; i < 30; i++) await meter(controller.signal);
    expect(listeners).toBe(0);
  });
});
