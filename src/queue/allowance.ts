import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { ProviderId } from '../message/types.js';
import type { CallMeter } from '../providers/types.js';
import type { SmsqKeys } from './names.js';

/** The sliding window, in microseconds (Redis `TIME` resolution): "per second" means any second. */
const WINDOW_US = 1_000_000;

/**
 * Takes one call from the window, or says how long until one is free. Atomic, and timed by Redis's
 * own clock (`TIME`), so every process shares one window whatever their clocks say.
 * KEYS[1]: the ZSET of call times (µs). ARGV: rate, window (µs), a unique member.
 * Returns 0 when the call may go now, else the ms to wait before trying again.
 */
const TAKE_SCRIPT = `
local now = redis.call('TIME')
local nowUs = tonumber(now[1]) * 1000000 + tonumber(now[2])
local rate = tonumber(ARGV[1])
local windowUs = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowUs - windowUs)
if redis.call('ZCARD', KEYS[1]) < rate then
  redis.call('ZADD', KEYS[1], nowUs, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(windowUs / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local waitMs = math.ceil((tonumber(oldest[2]) + windowUs - nowUs) / 1000)
if waitMs < 1 then waitMs = 1 end
return waitMs
`;

interface AllowanceRedis extends Redis {
  smsqTakeAllowance(key: string, rate: number, windowUs: number, member: string): Promise<number>;
}

function withAllowanceCommand(redis: Redis): AllowanceRedis {
  if (!('smsqTakeAllowance' in redis)) {
    redis.defineCommand('smsqTakeAllowance', { numberOfKeys: 1, lua: TAKE_SCRIPT });
  }
  return redis as AllowanceRedis;
}

/** Resolves with `promise`, or rejects with the signal's reason as soon as it fires. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return untilAborted(
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    }),
    signal,
  );
}

/** Options of {@link createAllowanceMeter}. */
export interface AllowanceMeterOptions {
  redis: Redis;
  /** The ZSET shared by every process metering the same provider account. */
  key: string;
  /** Calls allowed in any 1-second window (≥ 1). */
  ratePerSecond: number;
}

/**
 * A {@link CallMeter} shared by every process on one Redis: at most `ratePerSecond` calls start in
 * any sliding 1-second window (by Redis's clock). A caller that finds the window full waits until
 * its oldest call leaves it, then tries again. Rejects with the signal's reason when it fires while
 * waiting, and with the Redis error when Redis refuses (nothing was sent, so the caller may retry).
 */
export function createAllowanceMeter(opts: AllowanceMeterOptions): CallMeter {
  const redis = withAllowanceCommand(opts.redis);
  const rate = Math.max(1, Math.floor(opts.ratePerSecond));
  // Unique members: two calls in the same microsecond from two processes must both count.
  const self = randomBytes(6).toString('hex');
  let counter = 0;
  return async (signal) => {
    for (;;) {
      const member = `${self}:${counter++}`;
      const waitMs = await untilAborted(redis.smsqTakeAllowance(opts.key, rate, WINDOW_US, member), signal);
      if (waitMs === 0) return;
      // A little spread, so the waiters of several processes do not all retry in the same ms.
      await sleep(waitMs + Math.floor(Math.random() * 5), signal);
    }
  };
}

/**
 * One meter per provider account, each at its configured `ratePerSecond` (for `createProviders`'
 * `meterFor`). Every metered call of every process on this Redis and prefix shares it.
 */
export function providerAllowanceMeters(deps: {
  redis: Redis;
  keys: SmsqKeys;
  config: Config;
}): (id: ProviderId) => CallMeter {
  return (id) =>
    createAllowanceMeter({
      redis: deps.redis,
      key: deps.keys.allowance(id),
      ratePerSecond: deps.config.providers[id]?.ratePerSecond ?? 1,
    });
}
