import { SmsqError } from '../errors.js';
import type { QueueContext } from '../queue/context.js';
import { RedisUnavailableError } from '../redis.js';

/**
 * Longest a route waits on Redis once it answered `ready`: a Redis that accepts connections but
 * does not answer (stopped, swapping) must still give the caller a 503 rather than a hang.
 */
export const REDIS_OPERATION_TIMEOUT_MS = 5_000;

/** Rejects with RedisUnavailableError when `promise` has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisUnavailableError(new Error(`no answer within ${ms} ms`))), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Runs a route's Redis work on the producer connection: RedisUnavailableError (503) within a second
 * when Redis is down (`context.ready()`), within REDIS_OPERATION_TIMEOUT_MS when it hangs, and when
 * a command fails because the connection dropped mid-request. Our own errors pass through.
 */
export async function withRedis<T>(context: QueueContext, work: () => Promise<T>): Promise<T> {
  await context.ready();
  try {
    return await withDeadline(work(), REDIS_OPERATION_TIMEOUT_MS);
  } catch (err) {
    // Classified by the connection's state, not the error text: ioredis's offline errors carry no code.
    if (!(err instanceof SmsqError) && context.redis.status !== 'ready') throw new RedisUnavailableError(err);
    throw err;
  }
}
