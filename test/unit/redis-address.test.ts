import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseRedisAddress, redisAddress } from '../../src/redis.js';
import { displayRedisUrl } from '../../src/service/redis-discovery.js';

describe('Redis addresses', () => {
  it('builds a Cluster address from REDIS_CLUSTER_NODES with the credentials and TLS of REDIS_URL', () => {
    const config = loadConfig({
      REDIS_URL: 'rediss://app:s%40cret@ignored.example:6380',
      REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7001',
    });
    expect(parseRedisAddress(config.redisUrl)).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
      master: undefined,
      username: 'app',
      password: 's@cret',
      tls: true,
      db: 0,
    });
    expect(config.prefix).toBe('{smsq}');
    expect(config.redisUrlExplicit).toBe(true);
    expect(displayRedisUrl(config.redisUrl)).not.toContain('cret');
  });

  it('keeps a prefix that already has a hash tag, and leaves the prefix alone without a Cluster', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'h:1', SMSQ_PREFIX: 'app{q}' }).prefix).toBe('app{q}');
    expect(loadConfig({ SMSQ_PREFIX: 'app' }).prefix).toBe('app');
  });

  it('builds a Sentinel address with master name and db', () => {
    const address = redisAddress('sentinel', 's1:26379,[::1]:26380', 'redis://:pw@x/2', 'prod');
    expect(parseRedisAddress(address)).toMatchObject({
      kind: 'sentinel',
      nodes: [
        { host: 's1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      master: 'prod',
      password: 'pw',
      tls: false,
      db: 2,
    });
  });

  it('names the variable when a node list is bad, or both topologies are set', () => {
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'nohost' })).toThrow(
      /REDIS_CLUSTER_NODES: expected host:port/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:2' })).toThrow(
      /set one of them, not both/,
    );
  });

  it('reads a plain URL as one server', () => {
    expect(parseRedisAddress('redis://127.0.0.1:6379')).toEqual({
      kind: 'single',
      url: 'redis://127.0.0.1:6379',
    });
  });
});
