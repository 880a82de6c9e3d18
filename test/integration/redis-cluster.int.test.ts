import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { spanishMobiles } from '../helpers/numbers.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-topology.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';

/** smsq on a real 3-master Redis Cluster (REDIS_CLUSTER_NODES), through ioredis Cluster. */
describe('Redis Cluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    onTeardown('Redis Cluster', () => cluster.destroy());
  }, 60_000);

  it('wraps the prefix in a hash tag and runs a request with every key on one master', async () => {
    const pipeline = await startTestSmsq({
      api: false,
      redis: { REDIS_CLUSTER_NODES: cluster.nodes },
      env: { SMSQ_REQUIRE_DURABLE_REDIS: 'true' },
    });
    expect(pipeline.config.prefix).toMatch(/^\{t[0-9a-f]+\}$/);
    const to = spanishMobiles(1_200);
    const { id } = await pipeline.client.send({ to, text: 'Cluster' });
    const result = await pipeline.client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 1_200, accepted: 1_200 });

    const holders: number[] = [];
    for (const master of cluster.masters) {
      const node = new Redis(master.url);
      const [, keys] = await node.scan('0', 'MATCH', `${pipeline.config.prefix}:*`, 'COUNT', 10_000);
      node.disconnect();
      if (keys.length > 0) holders.push(master.port);
    }
    expect(holders).toHaveLength(1);
  });
});
