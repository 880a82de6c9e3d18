import { beforeAll, describe, expect, it } from 'vitest';
import { startFakeDescom, type FakeDescom } from '../helpers/fake-descom.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startRedisSentinelSet, type RedisSentinelSet } from '../helpers/redis-topology.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

/**
 * smsq on a master + replica watched by a sentinel (REDIS_SENTINELS), with every `sending` write
 * acknowledged by the replica before the provider call (SMSQ_REDIS_MIN_REPLICAS=1, Redis WAIT).
 * The master is SIGKILLed in the middle of a send: the sentinel promotes the replica, the
 * workers follow it, and every recipient reaches Descom exactly once.
 */
describe('Redis Sentinel', () => {
  let set: RedisSentinelSet;
  let fake: FakeDescom;
  beforeAll(async () => {
    set = await startRedisSentinelSet();
    onTeardown('Redis Sentinel set', () => set.destroy());
    fake = await startFakeDescom({ latencyMs: 100 });
    onTeardown('fake Descom', () => fake.close());
  }, 60_000);

  it('a failover in the middle of a send loses nothing and sends nothing twice', async () => {
    const pipeline = await startTestSmsq({
      api: false,
      redis: { REDIS_SENTINELS: set.sentinels, REDIS_SENTINEL_MASTER: set.masterName },
      env: {
        SMSQ_REDIS_MIN_REPLICAS: '1',
        SMSQ_REQUIRE_DURABLE_REDIS: 'true',
        SMSQ_PROVIDER: 'descom',
        ...fake.env,
        DESCOM_RATE_PER_S: '4',
        SMSQ_BATCH_CONCURRENCY: '2',
      },
    });
    // 20 requests of 300 numbers: 20 Descom batches at 4 per second, about 5 s of sending.
    const all = spanishMobiles(6_000);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push((await pipeline.client.send({ to: all.slice(i * 300, (i + 1) * 300), text: 'Failover' })).id);
    }
    await eventually(() => Promise.resolve(fake.recipientsDelivered().length >= 900), 20_000);
    const before = await set.currentMaster();
    await set.master.kill('SIGKILL');
    await eventually(async () => (await set.currentMaster()) !== before, 20_000);
    // The old master comes back and the sentinel turns it into the new master's replica, so the
    // `sending` writes again have a replica to acknowledge them (until then no call is made).
    await set.master.start();

    let accepted = 0;
    for (const id of ids) {
      const result = await pipeline.client.wait(id, { timeoutMs: 30_000 });
      expect(result.counts).toMatchObject({ total: 300, failed: 0, unknown: 0 });
      accepted += result.counts.accepted;
    }
    const delivered = fake.recipientsDelivered();
    expect(new Set(delivered).size).toBe(delivered.length);
    expect(accepted).toBe(6_000);
    expect([...delivered].sort()).toEqual([...all].sort());
  }, 120_000);
});
