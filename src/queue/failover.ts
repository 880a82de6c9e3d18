import type { Job, JobType, Queue } from 'bullmq';
import type { Logger } from '../logger.js';
import { planBatches } from '../message/batch-plan.js';
import type { ProviderId } from '../message/types.js';
import type { SmsProvider } from '../providers/types.js';
import { withScripts } from '../redis.js';
import type { CircuitBreaker, ProviderAvailability, UnavailableReason } from './circuit.js';
import { laneOf, type BatchJobData } from './jobs.js';
import { BATCH_JOB, LANES, type Lane, type PerLane } from './names.js';
import type { BatchRecord, RecordStore } from './records.js';
import { batchJobOptions, batchTag, estimateCredits } from './splitter.js';

/** The job of a batch being moved: its parent (the request's send job) and its priority pass to the successors. */
type MovedJob = Pick<Job<BatchJobData>, 'parent'> & { data?: Pick<BatchJobData, 'priority'> };
/**
 * Moves one batch to its successors, atomically against claim and cancel: only a `planned` batch
 * of a request not cancelled moves. It is marked `moved` (with its successors' ids and a TTL),
 * its successors are written (never over an existing record), and they replace it in the
 * request's `batchIds`, so the request's batches still add up to its recipients. A batch already
 * moved answers `moved` with its successors (a second mover, or a crash before their jobs).
 * ARGV: batch key prefix, old id, successors [{id, fields}], successor ids, now, metric field, TTL s.
 */
const MOVE_SCRIPT = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', ''} end
if state == 'moved' then return {'moved', redis.call('HGET', KEYS[1], 'movedTo') or '[]'} end
if state ~= 'planned' then return {'conflict', state} end
if redis.call('HGET', KEYS[2], 'cancelled') == 'true' then return {'cancelled', ''} end
local ids = cjson.decode(redis.call('HGET', KEYS[2], 'batchIds') or '[]')
local successors = cjson.decode(ARGV[4])
local replaced = {}
local found = false
for _, id in ipairs(ids) do
  if id == ARGV[2] then
    found = true
    for _, s in ipairs(successors) do table.insert(replaced, s) end
  else
    table.insert(replaced, id)
  end
end
if not found then return {'conflict', 'unlisted'} end
for _, b in ipairs(cjson.decode(ARGV[3])) do
  local key = ARGV[1] .. b.id
  if redis.call('EXISTS', key) == 0 then redis.call('HSET', key, unpack(b.fields)) end
end
redis.call('HSET', KEYS[1], 'state', 'moved', 'movedTo', ARGV[4], 'updatedAt', ARGV[5])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
redis.call('HSET', KEYS[2], 'batchIds', cjson.encode(replaced))
redis.call('HINCRBY', KEYS[3], ARGV[6], 1)
return {'ok', ARGV[4]}
`;

interface FailoverCommands {
  smsqMoveBatch(
    batchKey: string,
    requestKey: string,
    failoversKey: string,
    batchKeyPrefix: string,
    oldId: string,
    successors: string,
    successorIds: string,
    now: string,
    metricField: string,
    ttlS: number,
  ): Promise<[string, string]>;
}

const SCRIPTS = { smsqMoveBatch: { keys: 3, lua: MOVE_SCRIPT } };

/** Jobs whose batch waits to be sent; `active` ones are their processor's to move (it checks before its claim). */
const WAITING_JOB_TYPES: readonly JobType[] = ['paused', 'waiting', 'prioritized', 'delayed'];
/** Jobs looked at per provider per scan; the next scan takes the rest. */
const SCAN_PAGE = 500;
const SCAN_MAX_JOBS = 5_000;
/** How often every worker process looks for batches to move (a pause or an opening in this process triggers one at once). */
export const FAILOVER_SCAN_MS = 2_000;

export interface FailoverDeps {
  store: RecordStore;
  circuit: CircuitBreaker;
  providers: ReadonlyMap<ProviderId, SmsProvider>;
  /** Each provider's batch queues, one per lane: successors stay in their batch's lane. */
  batchQueues: ReadonlyMap<ProviderId, PerLane<Queue<BatchJobData>>>;
  retry: { attempts: number; backoffMs: number };
  /** How long a moved batch's record is kept, in seconds (SMSQ_RECORD_TTL_S). */
  recordTtlS: number;
  logger: Logger;
  scanIntervalMs?: number;
  /** The lanes whose waiting jobs the scan looks at: those this process works (default: both). */
  scanLanes?: readonly Lane[];
}

export type MoveResult =
  { status: 'moved'; to: ProviderId; successors: string[] } | { status: 'stays'; why: string };

/**
 * Failover: a `planned` batch with a route (SMSQ_ROUTES, request not opted out) leaves a provider
 * that is paused or whose circuit is not closed, for the next available provider of its route
 * (wrapping around), re-planned under that provider's limits. Batches in `sending`, `unknown` or
 * `sent` never move. Two paths find them: the batch processor before its claim (and right after
 * a failure), and a scan of the waiting jobs of every unavailable provider, in every worker
 * process, every FAILOVER_SCAN_MS and at once when this process paused a provider or opened its
 * circuit. Both may run at once: the move is one script, and its jobs have deterministic ids.
 */
export class Failover {
  private timer?: NodeJS.Timeout;
  private scanning?: Promise<void>;
  private again = false;

  constructor(private readonly deps: FailoverDeps) {}

  private get log() {
    return this.deps.logger.child({ module: 'failover' });
  }

  /** The next provider of `record`'s route after its own (wrapping) that routes may use now. */
  private async target(
    record: BatchRecord,
    available: (p: ProviderId) => Promise<ProviderAvailability>,
  ): Promise<ProviderId | undefined> {
    const route = record.route ?? [];
    const at = route.indexOf(record.batch.provider);
    const order = [...route.slice(at + 1), ...route.slice(0, Math.max(at, 0))];
    for (const candidate of order) {
      if (candidate === record.batch.provider || !this.deps.providers.has(candidate)) continue;
      if (!(await available(candidate)).unavailable) return candidate;
    }
    return undefined;
  }

  /**
   * Moves `record` when it must (see the class) and can; `job` is its batch job, whose parent the
   * successors' jobs join. The old job is left to the caller: the processor returns, a scan removes it.
   */
  async moveIfNeeded(
    record: BatchRecord,
    job: MovedJob,
    cache = new Map<ProviderId, Promise<ProviderAvailability>>(),
  ): Promise<MoveResult> {
    if (record.state === 'moved') return this.finishMove(record, job);
    if (!record.route || record.state !== 'planned')
      return { status: 'stays', why: 'no route or not planned' };
    const available = (p: ProviderId) => {
      let a = cache.get(p);
      if (!a) cache.set(p, (a = this.deps.circuit.availability(p)));
      return a;
    };
    const from = record.batch.provider;
    const reason = (await available(from)).unavailable;
    if (!reason) return { status: 'stays', why: 'provider available' };
    const to = await this.target(record, available);
    if (!to) return { status: 'stays', why: 'no available provider in its route' };
    return this.move(record, job, from, to, reason);
  }

  private async move(
    record: BatchRecord,
    job: MovedJob,
    from: ProviderId,
    to: ProviderId,
    reason: UnavailableReason,
  ): Promise<MoveResult> {
    const { store } = this.deps;
    const old = record.batch;
    const at = new Date().toISOString();
    const history = [...(record.history ?? []), { provider: from, reason, at }];
    const successors: BatchRecord[] = planBatches(old.messages, this.deps.providers.get(to)!.limits).map(
      (plan, i) => {
        const id = `${old.id}-${to}-${i}`;
        const { messages } = plan;
        return {
          batch: {
            ...old,
            id,
            provider: to,
            tag: batchTag(id),
            messages,
            estimatedCredits: estimateCredits(messages),
          },
          state: 'planned',
          attempts: 0,
          ...(record.expiresAt ? { expiresAt: record.expiresAt } : {}),
          ...(record.sendAt ? { sendAt: record.sendAt } : {}),
          ...(record.window ? { window: record.window, timezone: record.timezone } : {}),
          ...(record.route ? { route: record.route } : {}),
          history,
        } satisfies BatchRecord;
      },
    );
    const ids = successors.map((s) => s.batch.id);
    const [status, detail] = await withScripts<FailoverCommands>(store.redis, SCRIPTS).smsqMoveBatch(
      store.keys.batch(old.id),
      store.keys.request(old.requestId),
      store.keys.failovers,
      store.keys.batch(''),
      old.id,
      JSON.stringify(successors.map((s) => ({ id: s.batch.id, fields: store.batchFields(s) }))),
      JSON.stringify(ids),
      at,
      `${from}|${to}|${reason}`,
      this.deps.recordTtlS,
    );
    if (status === 'moved') {
      return this.finishMove({ ...record, state: 'moved', movedTo: JSON.parse(detail) as string[] }, job);
    }
    if (status !== 'ok') return { status: 'stays', why: status === 'conflict' ? `state ${detail}` : status };
    this.log.info(
      { batchId: old.id, requestId: old.requestId, from, to, reason, successors: ids.length },
      `Batch failed over from ${from} to ${to} (${reason})`,
    );
    await this.addJobs(to, ids, old.requestId, job);
    return { status: 'moved', to, successors: ids };
  }

  /** A batch already moved: makes sure its successors' jobs exist (a mover may have died before adding them). */
  private async finishMove(record: BatchRecord, job: MovedJob): Promise<MoveResult> {
    const ids = record.movedTo ?? [];
    const successors = await this.deps.store.getBatches(ids);
    const to = successors[0]?.batch.provider;
    if (!to) return { status: 'stays', why: 'moved, successors missing' };
    await this.addJobs(to, ids, record.batch.requestId, job);
    return { status: 'moved', to, successors: ids };
  }

  private async addJobs(
    to: ProviderId,
    ids: readonly string[],
    requestId: string,
    job: MovedJob,
  ): Promise<void> {
    const queue = this.deps.batchQueues.get(to)?.[laneOf(job.data?.priority)];
    if (!queue) throw new Error(`No queue for provider ${to}`);
    const parent = job.parent?.id ? { id: job.parent.id, queue: job.parent.queueKey } : undefined;
    await queue.addBulk(
      ids.map((batchId) => ({
        name: BATCH_JOB,
        data: { batchId, requestId, priority: job.data?.priority },
        opts: batchJobOptions(batchId, parent, this.deps.retry, job.data?.priority),
      })),
    );
  }

  /** Looks at the waiting jobs of every unavailable provider and moves what must move. */
  async scan(): Promise<void> {
    const cache = new Map<ProviderId, Promise<ProviderAvailability>>();
    for (const [provider, lanes] of this.deps.batchQueues) {
      let availability = cache.get(provider);
      if (!availability) cache.set(provider, (availability = this.deps.circuit.availability(provider)));
      if (!(await availability).unavailable) continue;
      // The priority lane first: its batches are the ones waiting on a move most urgently.
      for (const lane of this.deps.scanLanes ?? LANES) await this.scanQueue(lanes[lane], cache);
    }
  }

  /** Moves what must move among one queue's waiting jobs (up to SCAN_MAX_JOBS). */
  private async scanQueue(
    queue: Queue<BatchJobData>,
    cache: Map<ProviderId, Promise<ProviderAvailability>>,
  ): Promise<void> {
    for (let start = 0; start < SCAN_MAX_JOBS; start += SCAN_PAGE) {
      const jobs = await queue.getJobs([...WAITING_JOB_TYPES], start, start + SCAN_PAGE - 1);
      const records = new Map(
        (await this.deps.store.getBatches(jobs.map((j) => j.data.batchId))).map((r) => [r.batch.id, r]),
      );
      for (const job of jobs) {
        const record = records.get(job.data.batchId);
        if (!record || (record.state !== 'planned' && record.state !== 'moved')) continue;
        const result = await this.moveIfNeeded(record, job, cache);
        if (result.status !== 'moved') continue;
        // Its successors' jobs are there: the old job ends without sending. Removing it drops it from
        // its parent's dependencies (BullMQ); a job that became active meanwhile finds its batch moved.
        await job.remove().catch(() => undefined);
      }
      if (jobs.length < SCAN_PAGE) break;
    }
  }

  /** Scans now (coalesced with a scan already running). */
  trigger(): void {
    if (this.scanning) {
      this.again = true;
      return;
    }
    this.scanning = this.scan()
      .catch((err: unknown) => this.log.error({ err }, 'Failover scan failed'))
      .finally(() => {
        this.scanning = undefined;
        if (this.again) {
          this.again = false;
          this.trigger();
        }
      });
  }

  start(): void {
    this.timer = setInterval(() => this.trigger(), this.deps.scanIntervalMs ?? FAILOVER_SCAN_MS);
    this.timer.unref();
  }

  /** Stops the timer. A scan in progress is not awaited: with Redis down it would hold the shutdown. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.again = false;
  }
}
