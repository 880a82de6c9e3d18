import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { ProviderId } from '../message/types.js';
import type { ProbeOptions } from '../providers/types.js';
import type { SmsqKeys } from './names.js';
import { withScripts } from '../redis.js';

/**
 * `closed`: routes send to the provider. `open`: they fail over from it. `half-open`: a probe
 * succeeded (or the provider was resumed); routes still keep away until SMSQ_FAILBACK_MS pass
 * without a failure, so one good probe does not bring the traffic back to a flapping provider.
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** Why routed batches keep away from a provider now (the failover `reason`). */
export type UnavailableReason = 'paused' | 'circuit-open';

/** The last this many calls are judged together, over at most WINDOW_MS. */
export const CIRCUIT_WINDOW_CALLS = 20;
export const CIRCUIT_WINDOW_MS = 60_000;
/** The rate rule (≥ 50 % failed) needs at least this many calls in the window. */
export const CIRCUIT_MIN_CALLS = 10;

/**
 * Records one call's outcome (ARGV[1] '1' failed, '0' ok) and opens the circuit when the last
 * ARGV[3] calls in a row failed, or when at least half of the last ARGV[4] calls made within ARGV[5]
 * ms failed (with at least ARGV[6] of them). A failure while half-open opens it again.
 * Returns {switch ('opened' or ''), previous state}.
 */
const RECORD_SCRIPT = `
local now = tonumber(ARGV[2])
redis.call('LPUSH', KEYS[2], now .. ':' .. ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[1] ~= '1' then
  redis.call('HSET', KEYS[1], 'consecutive', 0)
  return {'', state}
end
local consecutive = redis.call('HINCRBY', KEYS[1], 'consecutive', 1)
redis.call('HSET', KEYS[1], 'lastFailureAt', now)
if state == 'half-open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'cause', 'failures', 'openedAt', now)
  redis.call('HDEL', KEYS[1], 'halfOpenAt', 'nextProbeAt')
  return {'opened', state}
end
if state ~= 'closed' then return {'', state} end
local open = consecutive >= tonumber(ARGV[3])
if not open then
  local n, failed = 0, 0
  for _, c in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local ts, f = string.match(c, '^(%d+):(%d)$')
    if ts and now - tonumber(ts) <= tonumber(ARGV[5]) then
      n = n + 1
      if f == '1' then failed = failed + 1 end
    end
  end
  open = n >= tonumber(ARGV[6]) and failed * 2 >= n
end
if not open then return {'', state} end
redis.call('HSET', KEYS[1], 'state', 'open', 'cause', 'failures', 'openedAt', now)
redis.call('HDEL', KEYS[1], 'nextProbeAt')
return {'opened', state}
`;

/** Opens the circuit because the provider was paused (its account). Returns 1 when it switched. */
const OPEN_PAUSED_SCRIPT = `
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'open', 'cause', 'paused', 'openedAt', ARGV[1])
redis.call('HDEL', KEYS[1], 'halfOpenAt', 'nextProbeAt')
return 1
`;

/** open → half-open (a probe succeeded or the provider was resumed). Returns 1 when it switched. */
const HALF_OPEN_SCRIPT = `
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'half-open', 'halfOpenAt', ARGV[1])
return 1
`;

/**
 * half-open → closed once ARGV[2] ms passed since it half-opened. A failure while half-open opens
 * it again (RECORD_SCRIPT), so a circuit still half-open has had none since. (It used to compare
 * the last failure's time with the half-open time too: a failure recorded in the same millisecond
 * as a later half-open then kept the circuit half-open for ever.) The outcome list starts afresh.
 * Returns 1 when it switched.
 */
const CLOSE_IF_QUIET_SCRIPT = `
local h = redis.call('HMGET', KEYS[1], 'state', 'halfOpenAt')
if h[1] ~= 'half-open' then return 0 end
local now = tonumber(ARGV[1])
local since = tonumber(h[2]) or 0
if now - since < tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`;

/**
 * Claims the due probe of an open circuit whose provider is not paused (one process per interval):
 * opened by failures, or by a pause that ended without a resume (e.g. given up after repeats).
 * A paused provider is probed by ProviderControl, and its resume half-opens the circuit.
 * Returns 1 when claimed.
 */
const CLAIM_PROBE_SCRIPT = `
local h = redis.call('HMGET', KEYS[1], 'state', 'openedAt', 'nextProbeAt')
if h[1] ~= 'open' or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local now = tonumber(ARGV[1])
local due = tonumber(h[3]) or (tonumber(h[2]) or 0) + tonumber(ARGV[2])
if now < due then return 0 end
redis.call('HSET', KEYS[1], 'nextProbeAt', now + tonumber(ARGV[2]))
return 1
`;

interface CircuitCommands {
  smsqCircuitRecord(
    circuitKey: string,
    callsKey: string,
    failed: string,
    now: number,
    failures: number,
    windowCalls: number,
    windowMs: number,
    minCalls: number,
  ): Promise<[string, string]>;
  smsqCircuitOpenPaused(circuitKey: string, now: number): Promise<number>;
  smsqCircuitHalfOpen(circuitKey: string, now: number): Promise<number>;
  smsqCircuitCloseIfQuiet(
    circuitKey: string,
    callsKey: string,
    now: number,
    failbackMs: number,
  ): Promise<number>;
  smsqCircuitClaimProbe(
    circuitKey: string,
    pausedKey: string,
    now: number,
    intervalMs: number,
  ): Promise<number>;
}

const SCRIPTS = {
  smsqCircuitRecord: { keys: 2, lua: RECORD_SCRIPT },
  smsqCircuitOpenPaused: { keys: 1, lua: OPEN_PAUSED_SCRIPT },
  smsqCircuitHalfOpen: { keys: 1, lua: HALF_OPEN_SCRIPT },
  smsqCircuitCloseIfQuiet: { keys: 2, lua: CLOSE_IF_QUIET_SCRIPT },
  smsqCircuitClaimProbe: { keys: 2, lua: CLAIM_PROBE_SCRIPT },
};

function commands(redis: Redis): CircuitCommands {
  return withScripts<CircuitCommands>(redis, SCRIPTS);
}

export interface CircuitBreakerDeps {
  redis: Redis;
  keys: SmsqKeys;
  /** SMSQ_CIRCUIT_FAILURES: consecutive transient/ambiguous failures that open the circuit. */
  failures: number;
  /** SMSQ_FAILBACK_MS: quiet time after half-opening before routes send to the provider again. */
  failbackMs: number;
  logger: Logger;
  /** Called in the process that opened a circuit (it then fails over at once, not at its next scan). */
  onOpen?: (provider: ProviderId) => void;
}

/** A provider's circuit and pause as routes see them. */
export interface ProviderAvailability {
  state: CircuitState;
  /** Set when routed batches must keep away from the provider now. */
  unavailable?: UnavailableReason;
}

/**
 * One circuit breaker per provider, in Redis, so every worker process counts the same calls and
 * sees the same state. It decides nothing about a batch by itself: the failover (failover.ts)
 * moves planned batches off a provider whose circuit is not closed or whose queue is paused.
 */
export class CircuitBreaker {
  constructor(private readonly deps: CircuitBreakerDeps) {}

  private get log() {
    return this.deps.logger.child({ module: 'circuit' });
  }

  private callsKey(provider: ProviderId): string {
    return `${this.deps.keys.circuit(provider)}:calls`;
  }

  /** Counts one provider call: `failed` for a transient or ambiguous failure, else it answered. */
  async record(provider: ProviderId, failed: boolean): Promise<void> {
    const [switched, previous] = await commands(this.deps.redis).smsqCircuitRecord(
      this.deps.keys.circuit(provider),
      this.callsKey(provider),
      failed ? '1' : '0',
      Date.now(),
      this.deps.failures,
      CIRCUIT_WINDOW_CALLS,
      CIRCUIT_WINDOW_MS,
      CIRCUIT_MIN_CALLS,
    );
    if (switched !== 'opened') return;
    this.log.warn(
      { provider, from: previous, to: 'open' },
      `Circuit of ${provider} opened: too many transient or ambiguous failures; routed batches fail over`,
    );
    this.deps.onOpen?.(provider);
  }

  /** The provider was paused for its account: routed batches keep away until it is back and quiet. */
  async paused(provider: ProviderId): Promise<void> {
    if (
      !(await commands(this.deps.redis).smsqCircuitOpenPaused(this.deps.keys.circuit(provider), Date.now()))
    )
      return;
    this.log.warn(
      { provider, to: 'open', cause: 'paused' },
      `Circuit of ${provider} opened: provider paused; routed batches fail over`,
    );
    this.deps.onOpen?.(provider);
  }

  /** A probe succeeded, or the provider was resumed: half-open, closed after SMSQ_FAILBACK_MS without failure. */
  async halfOpen(provider: ProviderId, by: string): Promise<void> {
    if (!(await commands(this.deps.redis).smsqCircuitHalfOpen(this.deps.keys.circuit(provider), Date.now())))
      return;
    this.log.info(
      { provider, from: 'open', to: 'half-open', by, failbackMs: this.deps.failbackMs },
      `Circuit of ${provider} half-open (${by}); routes return to it after ${this.deps.failbackMs} ms without failure`,
    );
  }

  /** The circuit's state, closing it first when its half-open period passed quietly. */
  async availability(provider: ProviderId): Promise<ProviderAvailability> {
    const closed = await commands(this.deps.redis).smsqCircuitCloseIfQuiet(
      this.deps.keys.circuit(provider),
      this.callsKey(provider),
      Date.now(),
      this.deps.failbackMs,
    );
    if (closed) {
      this.log.info(
        { provider, from: 'half-open', to: 'closed' },
        `Circuit of ${provider} closed: ${this.deps.failbackMs} ms without failure; routes send to it again`,
      );
    }
    const [[, h], [, paused]] = (await this.deps.redis
      .multi()
      .hmget(this.deps.keys.circuit(provider), 'state', 'cause')
      .exists(this.deps.keys.paused(provider))
      .exec()) as [[null, (string | null)[]], [null, number]];
    const state = (h[0] ?? 'closed') as CircuitState;
    if (paused) return { state, unavailable: 'paused' };
    if (state === 'closed') return { state };
    return { state, unavailable: h[1] === 'paused' ? 'paused' : 'circuit-open' };
  }

  /** Probes, once per interval across processes, each provider whose circuit is open while it is not paused. */
  async probeOpen(
    providers: ReadonlyMap<ProviderId, { probe(opts: ProbeOptions): Promise<boolean> }>,
    opts: { intervalMs: number; timeoutMs: number },
  ): Promise<void> {
    for (const [id, provider] of providers) {
      const claimed = await commands(this.deps.redis).smsqCircuitClaimProbe(
        this.deps.keys.circuit(id),
        this.deps.keys.paused(id),
        Date.now(),
        opts.intervalMs,
      );
      if (!claimed) continue;
      const ok = await provider.probe({ signal: AbortSignal.timeout(opts.timeoutMs) }).catch(() => false);
      if (ok) await this.halfOpen(id, 'probe');
      else this.log.warn({ provider: id }, `Circuit of ${id} stays open: its probe failed`);
    }
  }
}
