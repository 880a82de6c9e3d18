import { Redis, type RedisOptions } from 'ioredis';
import { SmsqError } from './errors.js';

export class RedisUnavailableError extends SmsqError {
  constructor(cause?: unknown) {
    super('SMSQ_REDIS_UNAVAILABLE', 'Redis is not reachable', { cause });
  }
}

/**
 * A connection for workers: commands wait through a Redis restart instead of failing
 * (`maxRetriesPerRequest: null`, as BullMQ requires for workers).
 */
export function createWorkerConnection(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, ...opts });
}

/**
 * A connection for producers (client, HTTP API): fails fast while Redis is down so a caller can
 * answer 503 at once instead of hanging.
 */
export function createProducerConnection(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1_000,
    lazyConnect: true,
    ...opts,
  });
}

/** Resolves when the connection is ready, or throws RedisUnavailableError within `timeoutMs`. */
export async function ensureReady(redis: Redis, timeoutMs = 1_000): Promise<void> {
  if (redis.status === 'ready') return;
  if (redis.status === 'wait') {
    redis.connect().catch(() => {
      // Reported through the ready wait below; ioredis keeps reconnecting.
    });
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new RedisUnavailableError());
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}
