import 'vitest';
import type { TestProject } from 'vitest/node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditLogs } from './log-audit.js';
import { loadConfig } from '../../src/config.js';
import { hasRedisServerBinary, startPrivateRedis, waitForRedis } from './redis-server.js';
import { startRedisCluster, startRedisSentinelSet } from './redis-topology.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The smsq Redis address of the run (a URL, or a Cluster / Sentinel address, see src/redis.ts). */
    redisUrl: string;
    /** The environment that points smsq at it (REDIS_URL, or REDIS_CLUSTER_NODES / REDIS_SENTINELS). */
    redisEnv: Record<string, string>;
    /** `cluster` when keys must share a hash slot (test prefixes are then `{…}`). */
    redisTopology: 'single' | 'cluster' | 'sentinel';
    /** Where every captured test log is also written, audited when the run ends. */
    logDir: string;
  }
}

const HOW_TO_GET_REDIS =
  'Integration tests need Redis. Set REDIS_URL=redis://host:port, or install redis-server ' +
  '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), or run a Docker engine ' +
  'so testcontainers can start redis:7.';

async function startContainer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer('redis:7-alpine')
    .withExposedPorts(6379)
    .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
    .start();
  return {
    url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
    stop: async () => {
      await container.stop();
    },
  };
}

/**
 * Finds a Redis for the whole run: with SMSQ_TEST_REDIS=cluster a private 3-master Redis Cluster,
 * with SMSQ_TEST_REDIS=sentinel a private master + replica + sentinel; else REDIS_URL if set, else a private redis-server on a free port,
 * else a testcontainers Redis where Docker exists, else fails saying how to get one.
 */
async function findRedis(project: TestProject): Promise<() => Promise<void>> {
  const single = (url: string) => {
    project.provide('redisUrl', url);
    project.provide('redisEnv', { REDIS_URL: url });
    project.provide('redisTopology', 'single');
  };
  const topology = process.env.SMSQ_TEST_REDIS;
  if (topology === 'cluster') {
    const cluster = await startRedisCluster(3);
    const env = { REDIS_CLUSTER_NODES: cluster.nodes };
    project.provide('redisUrl', loadConfig(env).redisUrl);
    project.provide('redisEnv', env);
    project.provide('redisTopology', 'cluster');
    return () => cluster.destroy();
  }
  if (topology === 'sentinel') {
    const set = await startRedisSentinelSet();
    const env = { REDIS_SENTINELS: set.sentinels, REDIS_SENTINEL_MASTER: set.masterName };
    project.provide('redisUrl', loadConfig(env).redisUrl);
    project.provide('redisEnv', env);
    project.provide('redisTopology', 'sentinel');
    return () => set.destroy();
  }
  if (topology && topology !== 'single')
    throw new Error(`SMSQ_TEST_REDIS: expected cluster or sentinel, got ${topology}`);
  if (process.env.REDIS_URL) {
    await waitForRedis(process.env.REDIS_URL);
    single(process.env.REDIS_URL);
    return async () => {};
  }
  if (hasRedisServerBinary()) {
    const redis = await startPrivateRedis();
    single(redis.url);
    return () => redis.destroy();
  }
  try {
    const container = await startContainer();
    single(container.url);
    return container.stop;
  } catch (err) {
    throw new Error(HOW_TO_GET_REDIS, { cause: err });
  }
}

/**
 * Also audits every log the suite captured (see captureLogger): a phone number or a secret in
 * any of them fails the run, whichever test wrote it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logDir = mkdtempSync(join(tmpdir(), 'smsq-test-logs-'));
  project.provide('logDir', logDir);
  const stopRedis = await findRedis(project);
  return async () => {
    await stopRedis();
    const problems = auditLogs(logDir);
    rmSync(logDir, { recursive: true, force: true });
    if (problems.length > 0) {
      // Vitest reports a teardown error without failing the run: set the exit code as well.
      process.exitCode = 1;
      throw new Error(
        `Logs captured during the tests hold what must never be logged:\n${problems.slice(0, 20).join('\n')}`,
      );
    }
  };
}
