import 'vitest';
import type { TestProject } from 'vitest/node';
import { hasRedisServerBinary, startPrivateRedis, waitForRedis } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
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
 * Finds a Redis for the whole run: REDIS_URL if set, else a private redis-server on a free port,
 * else a testcontainers Redis where Docker exists, else fails saying how to get one.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.REDIS_URL) {
    await waitForRedis(process.env.REDIS_URL);
    project.provide('redisUrl', process.env.REDIS_URL);
    return async () => {};
  }
  if (hasRedisServerBinary()) {
    const redis = await startPrivateRedis();
    project.provide('redisUrl', redis.url);
    return () => redis.destroy();
  }
  try {
    const container = await startContainer();
    project.provide('redisUrl', container.url);
    return container.stop;
  } catch (err) {
    throw new Error(HOW_TO_GET_REDIS, { cause: err });
  }
}
