import type { JobType, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { ProviderId } from '../message/types.js';
import type { SmsProvider } from '../providers/types.js';
import type { CircuitBreaker } from './circuit.js';
import type { BatchJobData } from './jobs.js';
import { LANES, type PerLane, type SmsqKeys } from './names.js';
import { RecordStore } from './records.js';
import { withScripts } from '../redis.js';

/** Why a provider was paused: the AccountError the batch processor got. */
export interface PauseReason {
  code: string;
  message: string;
  /** Credits of the batch that failed (its `estimatedCredits`): what a probe asks for when no waiting batch is found. */
  neededCredits?: number;
  /**
   * The probe cannot tell this cause from a lasting refusal (OVH NOT_GRANTED_CALL): after this many
   * pauses in a row with this code, the provider's waiting batches end `failed` with this reason.
   */
  failAfterRepeats?: number;
}

/** The pause record stored at `<prefix>:paused:<provider>` (read by `smsq resume`). */
export interface PausedRecord extends PauseReason {
  /** ISO time of the pause. */
  at: string;
}

/** Per-provider probe and repeat bookkeeping, shared by every worker process through Redis. */
export interface PauseState {
  /** Current probe interval, in ms: SMSQ_PROBE_INTERVAL_MS, doubled on each flap. */
  intervalMs: number;
  /** When the next probe is due (ms since the epoch). */
  nextProbeAt?: number;
  /** Code of the last pause and how many pauses in a row had it (each after a resume within the flap window). */
  repeatCode?: string;
  repeats: number;
  /** When the provider was last resumed (ms since the epoch), until its next pause. */
  resumedAt?: number;
}

export interface ProviderControlDeps {
  redis: Redis;
  keys: SmsqKeys;
  /** Each provider's batch queues, one per lane: a pause or a resume is of all of them. */
  queues: ReadonlyMap<ProviderId, PerLane<Queue>>;
  providers: ReadonlyMap<ProviderId, SmsProvider>;
  /** SMSQ_PROBE_INTERVAL_MS: the base probe interval, in ms, and the tick of the probe timer. */
  probeIntervalMs: number;
  logger: Logger;
  /**
   * A pause this soon after a resume (ms) is a flap: it doubles the probe interval and counts as a
   * repeat of its code; a later pause resets both. @defaultValue 60000
   */
  flapWindowMs?: number;
  /** Ceiling of the doubled probe interval, in ms. @defaultValue 1800000 (30 min) */
  maxProbeIntervalMs?: number;
  /** Upper bound on one probe call, in ms. @defaultValue 10000 */
  probeTimeoutMs?: number;
  /** The providers' circuits: a pause opens one, a resume half-opens it, and open ones are probed too. */
  circuit?: CircuitBreaker;
}

/** Jobs whose batch still waits to be sent (active included: the batch that just failed may still be active). */
const WAITING_JOB_TYPES: readonly JobType[] = ['active', 'paused', 'waiting', 'prioritized', 'delayed'];
/** Jobs read per type to find the smallest waiting estimate: enough to find a cheap batch, bounded for huge backlogs. */
const ESTIMATE_SCAN_LIMIT = 100;
/** Page size when failing every waiting batch. */
const FAIL_PAGE_SIZE = 500;

/**
 * Starts a pause atomically across worker processes. Only the first pause of an episode counts
 * (concurrent batches failing for the same cause are one pause): it doubles the interval when the
 * provider was resumed less than the flap window ago (else resets it), counts a repeat of the same
 * code after such a resume (else restarts at 1), and schedules the next probe.
 * Returns [started (0/1), intervalMs, repeats, flapped (0/1), resumedForMs].
 */
const PAUSE_SCRIPT = `
local base = tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, tonumber(redis.call('HGET', KEYS[2], 'intervalMs') or base), 0, 0, -1}
end
local now = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[1])
local resumedAt = tonumber(redis.call('HGET', KEYS[2], 'resumedAt') or '')
local interval = tonumber(redis.call('HGET', KEYS[2], 'intervalMs') or '') or base
local flapped = resumedAt ~= nil and now - resumedAt < tonumber(ARGV[6])
if flapped then interval = math.min(math.max(interval, base) * 2, tonumber(ARGV[5])) else interval = base end
local repeats = 1
if flapped and redis.call('HGET', KEYS[2], 'repeatCode') == ARGV[2] then
  repeats = (tonumber(redis.call('HGET', KEYS[2], 'repeats') or '') or 0) + 1
end
redis.call('HSET', KEYS[2], 'intervalMs', interval, 'nextProbeAt', now + interval, 'repeatCode', ARGV[2], 'repeats', repeats)
redis.call('HDEL', KEYS[2], 'resumedAt')
return {1, interval, repeats, flapped and 1 or 0, resumedAt and (now - resumedAt) or -1}
`;

/** Claims the due probe of a paused provider, so one process probes per interval. Returns 1 when claimed. */
const CLAIM_PROBE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now = tonumber(ARGV[1])
local due = tonumber(redis.call('HGET', KEYS[2], 'nextProbeAt') or '') or 0
if now < due then return 0 end
local interval = tonumber(redis.call('HGET', KEYS[2], 'intervalMs') or '') or tonumber(ARGV[2])
redis.call('HSET', KEYS[2], 'nextProbeAt', now + interval)
return 1
`;

interface ControlCommands {
  smsqPauseProvider(
    pausedKey: string,
    stateKey: string,
    record: string,
    code: string,
    now: number,
    baseMs: number,
    maxMs: number,
    flapWindowMs: number,
  ): Promise<[number, number, number, number, number]>;
  smsqClaimProbe(pausedKey: string, stateKey: string, now: number, baseMs: number): Promise<number>;
}

const SCRIPTS = {
  smsqPauseProvider: { keys: 2, lua: PAUSE_SCRIPT },
  smsqClaimProbe: { keys: 2, lua: CLAIM_PROBE_SCRIPT },
};

function commands(redis: Redis): ControlCommands {
  return withScripts<ControlCommands>(redis, SCRIPTS);
}

function optionalNumber(value: string | undefined): number | undefined {
  return value === undefined || value === '' ? undefined : Number(value);
}

/**
 * Pauses a provider's queue when its account cannot send (no credit, bad credentials), keeps its
 * jobs, and resumes it when a probe says the waiting work can go, or an operator says so. The
 * pause flag and the probe schedule live in Redis, so every worker process shares them and a
 * restart keeps them.
 *
 * Three rules keep a pause from looping:
 * - A probe is asked for the credits of the cheapest waiting batch (`neededCredits`), not "any
 *   credit": a balance below that would only earn the same refusal again.
 * - A pause within `flapWindowMs` of a resume doubles that provider's probe interval (up to
 *   `maxProbeIntervalMs`); a pause after a calm window starts again at SMSQ_PROBE_INTERVAL_MS.
 * - A cause the probe cannot see (`failAfterRepeats`): after that many pauses in a row with the
 *   same code, each following a resume within the flap window, the waiting batches end `failed`
 *   and the queue resumes so their jobs drain. A pause with another code, or a resume that stays
 *   unpaused for the flap window, restarts the count.
 *
 * An operator's resume (`smsq resume`) counts as a resume like a probe's. A probe is due one
 * interval after the pause, whichever process claims it first; a worker that starts while a
 * provider is paused probes it at once only when that probe is due.
 */
export class ProviderControl {
  private timer?: NodeJS.Timeout;
  private probing = false;
  private readonly store: RecordStore;
  private readonly flapWindowMs: number;
  private readonly maxProbeIntervalMs: number;
  private readonly probeTimeoutMs: number;

  constructor(private readonly deps: ProviderControlDeps) {
    this.store = new RecordStore(deps.redis, deps.keys);
    this.flapWindowMs = deps.flapWindowMs ?? 60_000;
    this.maxProbeIntervalMs = Math.max(deps.maxProbeIntervalMs ?? 30 * 60_000, deps.probeIntervalMs);
    this.probeTimeoutMs = deps.probeTimeoutMs ?? 10_000;
  }

  private get log() {
    return this.deps.logger.child({ module: 'provider-control' });
  }

  /** Every batch queue of `provider` (both lanes), none when it has no queues here. */
  private queuesOf(provider: ProviderId): Queue[] {
    const lanes = this.deps.queues.get(provider);
    return lanes ? LANES.map((lane) => lanes[lane]) : [];
  }

  private stateKey(provider: ProviderId): string {
    return `${this.deps.keys.paused(provider)}:state`;
  }

  /** Pauses `provider` for `reason` (called by the batch processor on an AccountError); jobs are kept. */
  async pause(provider: ProviderId, reason: PauseReason): Promise<void> {
    const record: PausedRecord = { ...reason, at: new Date().toISOString() };
    const [started, intervalMs, repeats, flapped, resumedForMs] = await commands(
      this.deps.redis,
    ).smsqPauseProvider(
      this.deps.keys.paused(provider),
      this.stateKey(provider),
      JSON.stringify(record),
      reason.code,
      Date.now(),
      this.deps.probeIntervalMs,
      this.maxProbeIntervalMs,
      this.flapWindowMs,
    );
    await Promise.all(this.queuesOf(provider).map((queue) => queue.pause()));
    await this.deps.circuit?.paused(provider);
    if (!started) {
      this.log.warn(
        { provider, code: reason.code },
        `Provider ${provider} is already paused; the batch is kept`,
      );
      return;
    }
    this.log.fatal(
      { provider, code: reason.code, repeats },
      `Provider ${provider} paused: ${reason.message}; jobs are kept`,
    );
    if (flapped) {
      this.log.warn(
        { provider, code: reason.code, resumedForMs, probeIntervalMs: intervalMs },
        `Provider ${provider} paused again ${resumedForMs} ms after resuming; probing it every ${intervalMs} ms`,
      );
    }
    if (reason.failAfterRepeats !== undefined && repeats >= reason.failAfterRepeats) {
      await this.failWaiting(provider, reason, repeats);
    }
  }

  async resume(provider: ProviderId, by: 'probe' | 'operator'): Promise<void> {
    // Flag first, queue second: a pause racing in between leaves the flag set and the next probe
    // resumes again; the other order could leave a paused queue with no flag to probe it.
    await this.deps.redis
      .multi()
      .del(this.deps.keys.paused(provider))
      .hset(this.stateKey(provider), 'resumedAt', Date.now())
      .exec();
    await Promise.all(this.queuesOf(provider).map((queue) => queue.resume()));
    this.log.info({ provider, by }, `Provider ${provider} resumed`);
    await this.deps.circuit?.halfOpen(provider, `resumed by ${by}`);
  }

  /**
   * A provider's 429: none of its batch queues (both lanes) hands out a job for `ms` (BullMQ's
   * limiter, which every worker of those queues reads). The account is what the provider limits,
   * so a priority batch would only earn the same 429.
   */
  async rateLimit(provider: ProviderId, ms: number): Promise<void> {
    await Promise.all(this.queuesOf(provider).map((queue) => queue.rateLimit(ms)));
  }

  async pausedReason(provider: ProviderId): Promise<PausedRecord | undefined> {
    const raw = await this.deps.redis.get(this.deps.keys.paused(provider));
    return raw ? (JSON.parse(raw) as PausedRecord) : undefined;
  }

  /** The probe schedule and repeat count of `provider` (operators, tests). */
  async pauseState(provider: ProviderId): Promise<PauseState> {
    const h = await this.deps.redis.hgetall(this.stateKey(provider));
    const state: PauseState = {
      intervalMs: optionalNumber(h.intervalMs) ?? this.deps.probeIntervalMs,
      repeats: optionalNumber(h.repeats) ?? 0,
    };
    const nextProbeAt = optionalNumber(h.nextProbeAt);
    const resumedAt = optionalNumber(h.resumedAt);
    if (nextProbeAt !== undefined) state.nextProbeAt = nextProbeAt;
    if (resumedAt !== undefined) state.resumedAt = resumedAt;
    if (h.repeatCode) state.repeatCode = h.repeatCode;
    return state;
  }

  /**
   * Credits the cheapest batch waiting for `provider` needs, from the first ESTIMATE_SCAN_LIMIT jobs
   * of each waiting kind in each lane; undefined when none is found.
   */
  async smallestWaitingEstimate(provider: ProviderId): Promise<number | undefined> {
    const queues = this.queuesOf(provider);
    const jobs = (
      await Promise.all(queues.map((q) => q.getJobs([...WAITING_JOB_TYPES], 0, ESTIMATE_SCAN_LIMIT - 1)))
    ).flat();
    const ids = [...new Set(jobs.map((j) => (j.data as Partial<BatchJobData> | undefined)?.batchId))];
    const records = await this.store.getBatches(ids.filter((id): id is string => typeof id === 'string'));
    const estimates = records.filter((r) => r.state === 'planned').map((r) => r.batch.estimatedCredits);
    return estimates.length > 0 ? Math.min(...estimates) : undefined;
  }

  /** Probes every paused provider whose probe is due; resumes those that can send the waiting work. */
  async probePaused(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      for (const [id, provider] of this.deps.providers) {
        const claimed = await commands(this.deps.redis).smsqClaimProbe(
          this.deps.keys.paused(id),
          this.stateKey(id),
          Date.now(),
          this.deps.probeIntervalMs,
        );
        if (!claimed) continue;
        const reason = await this.pausedReason(id);
        const neededCredits = (await this.smallestWaitingEstimate(id)) ?? reason?.neededCredits;
        const ok = await provider
          .probe({
            signal: AbortSignal.timeout(this.probeTimeoutMs),
            ...(neededCredits !== undefined && { neededCredits }),
          })
          .catch(() => false);
        if (ok) await this.resume(id, 'probe');
        else
          this.log.warn({ provider: id, neededCredits }, `Provider ${id} still cannot send; staying paused`);
      }
      await this.deps.circuit?.probeOpen(this.deps.providers, {
        intervalMs: this.deps.probeIntervalMs,
        timeoutMs: this.probeTimeoutMs,
      });
    } finally {
      this.probing = false;
    }
  }

  /**
   * Ends every batch still `planned` in `provider`'s waiting jobs as `failed` with `reason`, clears
   * the pause and resumes the queue: each job then finds its batch final and returns at once.
   */
  private async failWaiting(provider: ProviderId, reason: PauseReason, repeats: number): Promise<void> {
    const error = `${reason.code}: ${reason.message} (paused ${repeats} times in a row; given up)`;
    let failed = 0;
    for (const queue of this.queuesOf(provider)) {
      for (const type of WAITING_JOB_TYPES) {
        for (let start = 0; ; start += FAIL_PAGE_SIZE) {
          const jobs = await queue.getJobs([type], start, start + FAIL_PAGE_SIZE - 1);
          const ids = jobs.map((j) => (j.data as Partial<BatchJobData> | undefined)?.batchId);
          const records = await this.store.getBatches(
            ids.filter((id): id is string => typeof id === 'string'),
          );
          for (const record of records) {
            if (record.state !== 'planned') continue;
            // planned → failed is atomic: a batch another worker just moved to `sending` is left alone.
            const moved = await this.store.transition(record.batch, ['planned'], 'failed', { error });
            if (moved.ok) failed++;
          }
          if (jobs.length < FAIL_PAGE_SIZE) break;
        }
      }
    }
    await this.deps.redis
      .multi()
      .del(this.deps.keys.paused(provider))
      .hset(this.stateKey(provider), 'repeats', 0)
      .hdel(this.stateKey(provider), 'repeatCode', 'resumedAt')
      .exec();
    await Promise.all(this.queuesOf(provider).map((queue) => queue.resume()));
    this.log.error(
      { provider, code: reason.code, repeats, failedBatches: failed },
      `Provider ${provider} refused ${repeats} times in a row (${reason.code}) and a probe cannot tell when ` +
        `that ends; ${failed} waiting batches failed and its queue resumed`,
    );
  }

  startProbing(): void {
    this.timer = setInterval(() => {
      this.probePaused().catch((err: unknown) => this.log.error({ err }, 'Probe of paused providers failed'));
    }, this.deps.probeIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
