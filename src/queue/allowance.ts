import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { abortableSleep } from '../abort.js';
import type { Config } from '../config.js';
import type { ProviderId } from '../message/types.js';
import type { CallMeter, CallPriority } from '../providers/types.js';
import type { SmsqKeys } from './names.js';

/**
 * The sliding window, in microseconds (Redis `TIME` resolution): "per second" means any second,
 * as the provider counts it. A granted call reaches the provider a little later, by a delay that
 * varies from call to call (the `beginCall` write, the request's own start, the network); the 4 %
 * beyond the second keeps two calls granted just over a second apart from arriving just under one
 * second apart, unless the first was delayed 40 ms more than the second. So at most 96 % of the
 * rate is used: the price of never going over it.
 */
const WINDOW_US = 1_040_000;

/**
 * Takes one call from the allowance, or says how long until one may be free. Atomic, and timed by
 * Redis's own clock (`TIME`), so every process shares one allowance whatever their clocks say.
 *
 * Two rules, both must allow the call:
 * - the hard cap: fewer than `rate` calls started in the last second (a sliding window);
 * - the pace: calls are spread one per 1/rate s (a generic cell rate: a call may start once the
 *   theoretical time of the next one is at most one interval away), so a saturated allowance
 *   frees a call every 1/rate s instead of `rate` calls at once each second.
 * Urgent calls (sends of `high` requests) may run `reserve` intervals ahead of the pace, and
 * while one was seen in the last `urgentMemoryMs`, calls of the other classes keep `reserve` calls
 * of the window free for them (and pace themselves to the rest): a one-time code sent while a
 * campaign fills the allowance finds a call free at once instead of waiting for the campaign's
 * next paced slot.
 * KEYS[1]: ZSET of call times (µs); KEYS[2], KEYS[3]: ZSETs of the `urgent` and `normal` callers
 * now waiting (score: until when their claim holds, µs); KEYS[4]: the pace's next time (µs);
 * KEYS[5]: set while urgent calls are recent.
 * ARGV: rate, window (µs), a unique member, the caller's class (1 urgent, 2 normal, 3 background),
 * the caller's waiter id, reserve, urgentMemoryMs. A caller may take a call only while no caller
 * of a class before its own waits. Returns 0 when the call may go now, else the ms to wait before
 * trying again.
 */
const TAKE_SCRIPT = `
local now = redis.call('TIME')
local nowUs = tonumber(now[1]) * 1000000 + tonumber(now[2])
local rate = tonumber(ARGV[1])
local windowUs = tonumber(ARGV[2])
local class = tonumber(ARGV[4])
local reserve = tonumber(ARGV[6])
local cap = rate
if class == 1 then
  redis.call('SET', KEYS[5], '1', 'PX', ARGV[7])
elseif reserve > 0 and redis.call('EXISTS', KEYS[5]) == 1 then
  cap = rate - reserve
end
local intervalUs = windowUs / cap
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowUs - windowUs)
local ahead = false
for c = 1, class - 1 do
  redis.call('ZREMRANGEBYSCORE', KEYS[c + 1], '-inf', nowUs)
  if redis.call('ZCARD', KEYS[c + 1]) > 0 then ahead = true end
end
local waitUs = 0
local count = redis.call('ZCARD', KEYS[1])
if count >= cap then
  -- Under the cap again once the (count - cap + 1) oldest calls left the window.
  local leaving = redis.call('ZRANGE', KEYS[1], count - cap, count - cap, 'WITHSCORES')
  waitUs = tonumber(leaving[2]) + windowUs - nowUs
end
local tat = tonumber(redis.call('GET', KEYS[4]) or '0')
if tat < nowUs then tat = nowUs end
-- Urgent calls may run ahead of the pace by the reserve, so one finds the pace open at once.
local ahead_of_pace = intervalUs
if class == 1 then ahead_of_pace = intervalUs * (reserve + 1) end
if tat - ahead_of_pace > nowUs + waitUs then waitUs = tat - ahead_of_pace - nowUs end
if waitUs <= 0 and not ahead then
  redis.call('ZADD', KEYS[1], nowUs, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(windowUs / 1000) + 1000)
  redis.call('SET', KEYS[4], tostring(tat + intervalUs), 'PX', math.ceil(windowUs / 1000) + 1000)
  if class < 3 then redis.call('ZREM', KEYS[class + 1], ARGV[5]) end
  return 0
end
local waitMs = math.ceil(waitUs / 1000)
if waitMs < 1 then waitMs = 1 end
if ahead and waitMs > 2 then waitMs = 2 end
if class < 3 then
  -- Claim precedence until shortly after our next try; a caller that died stops claiming.
  redis.call('ZADD', KEYS[class + 1], nowUs + (waitMs + 50) * 1000, ARGV[5])
  redis.call('PEXPIRE', KEYS[class + 1], waitMs + 1000)
end
return waitMs
`;

/**
 * Counts a call that left late from when it left: its time in the window (KEYS[1]) becomes Redis's
 * `TIME` now, never earlier than it was; a call the window already dropped is counted again.
 * ARGV: the call's member, the window key's TTL (ms).
 */
const RETIME_SCRIPT = `
local now = redis.call('TIME')
local nowUs = tonumber(now[1]) * 1000000 + tonumber(now[2])
redis.call('ZADD', KEYS[1], 'GT', nowUs, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
`;

/**
 * A call written to the provider's socket more than this after its grant was asked for is counted
 * again from then (see CallGrant). Well under the 40 ms the window keeps beyond the second, so
 * what is left (the request's way to the provider) fits in the rest; under it, no extra command.
 */
const LATE_WRITE_MS = 10;

/**
 * The calls of the window kept for urgent ones while they are recent: 5 % of the rate, at least
 * one (none at a rate of 1, which would leave nothing to the others).
 */
function urgentReserve(rate: number): number {
  return Math.min(rate - 1, Math.ceil(rate * 0.05));
}

/** How long an urgent call keeps the reserve in place, in ms. */
const URGENT_MEMORY_MS = 30_000;

/** A grant whose round trip took longer than this may be stale (see createAllowanceMeter). */
const STALE_GRANT_MS = 20;
const MAX_STALE_GRANTS = 3;

const CLASS_OF: Record<CallPriority, number> = { urgent: 1, normal: 2, background: 3 };

interface AllowanceRedis extends Redis {
  smsqTakeAllowance(
    key: string,
    urgentWaiters: string,
    normalWaiters: string,
    pace: string,
    urgentSeen: string,
    rate: number,
    windowUs: number,
    member: string,
    priorityClass: number,
    waiter: string,
    reserve: number,
    urgentMemoryMs: number,
  ): Promise<number>;
  smsqRetimeAllowance(key: string, member: string, ttlMs: number): Promise<number>;
}

function withAllowanceCommand(redis: Redis): AllowanceRedis {
  if (!('smsqTakeAllowance' in redis)) {
    redis.defineCommand('smsqTakeAllowance', { numberOfKeys: 5, lua: TAKE_SCRIPT });
    redis.defineCommand('smsqRetimeAllowance', { numberOfKeys: 1, lua: RETIME_SCRIPT });
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
 * any sliding 1-second window (by Redis's clock), spread one per 1/rate s. A caller that finds the window full waits until
 * its oldest call leaves it, then tries again; callers of a higher priority waiting go first (see
 * CallPriority). Rejects with the signal's reason when it fires while
 * waiting, and with the Redis error when Redis refuses (nothing was sent, so the caller may retry).
 */
export function createAllowanceMeter(opts: AllowanceMeterOptions): CallMeter {
  const redis = withAllowanceCommand(opts.redis);
  const rate = Math.max(1, Math.floor(opts.ratePerSecond));
  const reserve = urgentReserve(rate);
  // Unique members: two calls in the same microsecond from two processes must both count.
  const self = randomBytes(6).toString('hex');
  let counter = 0;
  const ttlMs = Math.ceil(WINDOW_US / 1000) + 1000;
  /**
   * A call written late is counted from when it was written. Not awaited: the call is already on
   * its way, and this process's next grants queue behind it on the same connection. A failure
   * leaves the grant's own time, as before this existed.
   */
  const retimeIfLate = (member: string, askedAt: number): void => {
    if (performance.now() - askedAt <= LATE_WRITE_MS) return;
    redis.smsqRetimeAllowance(opts.key, member, ttlMs).catch(() => {});
  };
  return async (signal, priority = 'normal') => {
    // One waiter id per call: its precedence claim is renewed on every try and dropped on success.
    const waiter = `${self}:w${counter++}`;
    let staleGrants = 0;
    for (;;) {
      const member = `${self}:${counter++}`;
      const askedAt = performance.now();
      const waitMs = await untilAborted(
        redis.smsqTakeAllowance(
          opts.key,
          `${opts.key}:urgent`,
          `${opts.key}:normal`,
          `${opts.key}:pace`,
          `${opts.key}:urgent-seen`,
          rate,
          WINDOW_US,
          member,
          CLASS_OF[priority],
          waiter,
          reserve,
          URGENT_MEMORY_MS,
        ),
        signal,
      );
      if (waitMs === 0) {
        // Granted at Redis's clock, somewhere within this round trip. A slow one (a process
        // starved of CPU, a stalled event loop) may hold a grant that is already old, and calls
        // granted after it elsewhere would reach the provider in the same second: the grant is
        // left unused (it still counts) and a fresh one taken, a few times at most.
        if (performance.now() - askedAt <= STALE_GRANT_MS || staleGrants >= MAX_STALE_GRANTS) {
          return { written: () => retimeIfLate(member, askedAt) };
        }
        staleGrants += 1;
        continue;
      }
      // A little spread, so the waiters of several processes do not all retry in the same ms.
      await abortableSleep(waitMs + Math.floor(Math.random() * 5), signal);
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
