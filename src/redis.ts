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

/** A Lua script to define as a command: how many of its arguments are keys, and its source. */
export interface ScriptDefinition {
  keys: number;
  lua: string;
}

/**
 * Defines `scripts` as commands on `redis` (once per connection; ioredis runs them with EVALSHA
 * and falls back to EVAL), and returns the connection typed with them.
 */
export function withScripts<T>(redis: Redis, scripts: Readonly<Record<string, ScriptDefinition>>): T {
  const defined = redis as unknown as Record<string, unknown>;
  for (const [name, { keys, lua }] of Object.entries(scripts)) {
    if (typeof defined[name] !== 'function') redis.defineCommand(name, { numberOfKeys: keys, lua });
  }
  return redis as unknown as T;
}
