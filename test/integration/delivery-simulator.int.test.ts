import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { DeliveryStore } from '../../src/queue/delivery-store.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

describe('delivery reports of the simulator (pipeline end to end)', () => {
  it('takes every accepted recipient to delivered or undelivered, counts adding up to accepted', async () => {
    const pipeline = await startTestSmsq({
      api: false,
      env: {
        SIMULATOR_DLR_DELAY_MS: '300',
        SIMULATOR_DELIVERED_RATE: '0.9',
        SMSQ_DLR_POLL_MS: '100',
      },
    });
    const { client } = pipeline;
    const to = spanishMobiles(250);
    const { id } = await client.send({ to, text: 'Hola', tag: 'order-42' });
    const done = await client.wait(id, { timeoutMs: 20_000 });
    expect(done.counts.accepted).toBe(250);
    expect(done.tag).toBe('order-42');
    await eventually(async () => (await client.get(id)).delivery?.pending === 0, 15_000);
    const result = await client.get(id);
    const d = result.delivery;
    expect(d.delivered + d.undelivered).toBe(250);
    expect(d.expired + d.unreported).toBe(0);
    // About 90 % delivered (a fixed draw per recipient; 250 recipients leave room either side).
    expect(d.delivered).toBeGreaterThan(200);
    expect(d.undelivered).toBeGreaterThan(5);

    const all = [];
    let cursor: string | undefined;
    do {
      const page = await client.recipients(id, { limit: 64, ...(cursor ? { cursor } : {}) });
      all.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(all.map((r) => r.to).sort()).toEqual([...to].sort());
    expect(all.filter((r) => r.delivery?.status === 'undelivered')).toHaveLength(d.undelivered);
    expect(all.every((r) => r.delivery?.at !== undefined)).toBe(true);
    expect(all.find((r) => r.delivery?.status === 'undelivered')?.delivery?.code).toBe('sim');

    // The metrics counters (kept in Redis) agree with the request.
    const redis = new Redis(pipeline.config.redisUrl);
    onTeardown('redis connection', () => redis.disconnect());
    const stats = await new DeliveryStore(redis, pipeline.workers.context.keys).getStats();
    expect(Number(stats['simulator|delivered'])).toBe(d.delivered);
    expect(Number(stats['simulator|count'])).toBe(250);
  });
});
