import { closeSharedQueue, smsqQueueOptions } from './context.js';
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { batchRecipients, type ProviderId } from '../message/types.js';
import type {
  DeliveryPollContext,
  DeliveryReportSource,
  ProviderDeliveryReport,
  PushedDeliveryReport,
} from '../providers/delivery-types.js';
import { DeliveryStore, type BatchDelivery, type DeliveryUpdate } from './delivery-store.js';
import { nextPollAt, pollOffsetMs } from './delivery-schedule.js';
import { DLR_QUEUE, LANES, type PerLane, type SmsqKeys } from './names.js';
import type { BatchRecord, RecordStore } from './records.js';

/** A poll of one sent batch; `step` is the schedule step this run is (0 = first poll). */
export interface DeliveryPollJobData {
  kind: 'poll';
  batchId: string;
  step: number;
}

/** A report a provider pushed (OVH callback), already parsed. */
export interface DeliveryPushJobData {
  kind: 'push';
  provider: ProviderId;
  report: PushedDeliveryReport;
}

export type DeliveryJobData = DeliveryPollJobData | DeliveryPushJobData;

const NEVER_ABORTED = new AbortController().signal;
/** Finished report jobs kept for the dashboard. */
const KEEP_JOBS = { removeOnComplete: { count: 1_000 }, removeOnFail: { count: 1_000 } };

/** Queues a pushed report durably (resolves once Redis holds the job). */
export async function queuePushedReport(
  queue: Queue<DeliveryJobData>,
  provider: ProviderId,
  report: PushedDeliveryReport,
): Promise<void> {
  await queue.add('push', { kind: 'push', provider, report }, KEEP_JOBS);
}

/** True while `queue` (one of a provider's batch queues) has sends waiting to go (not when it is paused). */
async function queueHasSendsWaiting(queue: Queue): Promise<boolean> {
  if (await queue.isPaused()) return false;
  return (await queue.getJobCountByTypes('wait', 'prioritized')) > 0;
}

/** True while a provider's batch queues (`lanes`, both lanes) have sends waiting to go. */
export async function sendsWaiting(lanes: PerLane<Queue> | undefined): Promise<boolean> {
  if (!lanes) return false;
  const waiting = await Promise.all(LANES.map((lane) => queueHasSendsWaiting(lanes[lane])));
  return waiting.some(Boolean);
}

/** The job id of a batch's poll: one per batch, so scheduling it twice (a re-run) adds nothing. */
export function pollJobId(batchId: string): string {
  return `poll-${batchId}`;
}

export interface DeliveryReportsOptions {
  redis: Redis;
  keys: SmsqKeys;
  prefix: string;
  store: RecordStore;
  sources: ReadonlyMap<ProviderId, DeliveryReportSource>;
  /** The schedule's unit (`SMSQ_DLR_POLL_MS`). */
  unitMs: number;
  /** How long delivery state is kept past the horizon, in ms (the records' retention). */
  keepMs: number;
  logger: Logger;
}

/** The recipients' indices (batch order) the provider accepted, from a sent batch's record. */
export function acceptedIndices(record: BatchRecord): number[] {
  const invalid = new Set(record.receipt?.invalid ?? []);
  const out: number[] = [];
  batchRecipients(record.batch).forEach((to, i) => {
    if (!invalid.has(to)) out.push(i);
  });
  return out;
}

/**
 * Delivery reports, apart from sending: a sent batch gets its state (every accepted recipient
 * `pending`) and a poll job on the `dlr` queue that runs on the schedule until nothing is pending
 * or the horizon; pushed reports are jobs on the same queue. Every status goes through
 * {@link DeliveryStore.apply}, where the first final status wins.
 */
export class DeliveryReports {
  readonly queue: Queue<DeliveryJobData>;
  readonly store: DeliveryStore;
  private readonly log: Logger;

  constructor(private readonly opts: DeliveryReportsOptions) {
    this.queue = new Queue<DeliveryJobData>(DLR_QUEUE, smsqQueueOptions(opts.redis, opts.prefix));
    this.store = new DeliveryStore(opts.redis, opts.keys);
    this.log = opts.logger.child({ module: 'delivery-reports' });
  }

  /**
   * A batch is `sent`: creates its delivery state and schedules its polls. Idempotent (its state
   * is created once, its poll job has a fixed id), so a re-run after a crash completes it.
   */
  async batchSent(batchId: string): Promise<void> {
    const record = await this.opts.store.getBatch(batchId);
    if (!record || record.state !== 'sent' || !record.receipt) return;
    const source = this.opts.sources.get(record.batch.provider);
    if (!source) return;
    const accepted = new Set(acceptedIndices(record));
    const recipients = batchRecipients(record.batch);
    const sentAt = Date.parse(record.updatedAt ?? '') || Date.now();
    const numericIds = record.receipt.providerIds.map(Number).filter((n) => Number.isSafeInteger(n));
    await this.store.initBatch({
      batchId,
      requestId: record.batch.requestId,
      provider: record.batch.provider,
      accepted: recipients.map((_, i) => accepted.has(i)),
      sentAt,
      horizonAt: sentAt + source.horizonMs,
      numericIds: numericIds.length === record.receipt.providerIds.length ? numericIds : [],
      ttlMs: source.horizonMs + this.opts.keepMs,
    });
    if (accepted.size === 0) return;
    const firstAt = sentAt + (source.firstPollMs ?? pollOffsetMs(0, this.opts.unitMs));
    await this.queue.add(
      'poll',
      { kind: 'poll', batchId, step: 0 },
      { jobId: pollJobId(batchId), delay: Math.max(0, firstAt - Date.now()), ...KEEP_JOBS },
    );
  }

  /** A request completed: its `delivered` webhook entry, when nothing of it is pending any more. */
  async requestCompleted(requestId: string): Promise<void> {
    await this.store.requestCompleted(requestId, this.opts.keepMs);
  }

  /** Queues a pushed report durably (resolves once Redis has the job). */
  push(provider: ProviderId, report: PushedDeliveryReport): Promise<void> {
    return queuePushedReport(this.queue, provider, report);
  }

  private context(record: BatchRecord, delivery: BatchDelivery, signal: AbortSignal): DeliveryPollContext {
    const pending = new Set<number>();
    delivery.recipients.forEach((r, i) => {
      if (r?.status === 'pending') pending.add(i);
    });
    const notes = { ...delivery.notes };
    return {
      batch: record.batch,
      providerIds: record.receipt?.providerIds ?? [],
      recipients: batchRecipients(record.batch),
      accepted: acceptedIndices(record),
      pending,
      sentAt: delivery.sentAt,
      notes,
      setNotes: async (added) => {
        Object.assign(notes, added);
        await this.store.setNotes(record.batch.id, added);
      },
      signal,
    };
  }

  private updatesOf(ctx: DeliveryPollContext, reports: readonly ProviderDeliveryReport[]): DeliveryUpdate[] {
    // One provider id for the whole batch (a Descom shipment, the simulator): it is each recipient's.
    const shared = ctx.providerIds.length === 1 ? ctx.providerIds[0] : undefined;
    return reports
      .filter((r) => ctx.pending.has(r.index))
      .map((r) => ({
        index: r.index,
        status: r.status,
        at: r.at,
        to: ctx.recipients[r.index] ?? '',
        ...(r.code !== undefined ? { code: r.code } : {}),
        ...((r.providerId ?? shared) !== undefined ? { providerId: r.providerId ?? shared } : {}),
      }));
  }

  /** Runs one poll of a batch; returns the time of the next one, or undefined when its reports are over. */
  private async poll(data: DeliveryPollJobData, signal: AbortSignal): Promise<number | undefined> {
    const delivery = await this.store.getBatch(data.batchId);
    const record = delivery && (await this.opts.store.getBatch(data.batchId));
    const source = delivery && this.opts.sources.get(delivery.provider);
    if (!delivery || !record || !source) return undefined;
    const ctx = this.context(record, delivery, signal);
    const log = this.log.child({ batchId: data.batchId, provider: delivery.provider, step: data.step });
    const finish = async () => {
      await this.store.retire(delivery.provider, data.batchId);
      await this.requestCompleted(delivery.requestId);
      return undefined;
    };
    if (ctx.pending.size === 0) return finish();
    const atHorizon = Date.now() >= delivery.horizonAt;
    let reports: ProviderDeliveryReport[] = [];
    try {
      reports = await source.poll(ctx);
    } catch (err) {
      if (signal.aborted) throw err;
      if (!atHorizon) {
        // A failed poll costs nothing but time: look again one unit later (never past the horizon).
        log.warn({ err }, 'Delivery-report poll failed; will poll again');
        return Math.min(Date.now() + this.opts.unitMs, delivery.horizonAt);
      }
      log.warn({ err }, 'Last delivery-report poll failed; the horizon settles what is pending');
    }
    const updates = this.updatesOf(ctx, reports);
    const applied = await this.store.apply(data.batchId, delivery, updates);
    log.debug({ reports: reports.length, applied }, 'Delivery reports polled');
    if (atHorizon) {
      // The last poll is in: whatever is still pending gets the provider's horizon status.
      const reported = new Set(updates.map((u) => u.index));
      const status = source.horizonStatus;
      const now = Date.now();
      const rest = [...ctx.pending]
        .filter((index) => !reported.has(index))
        .map((index) => ({ index, status, at: now, to: ctx.recipients[index] ?? '' }));
      const n = await this.store.apply(data.batchId, delivery, rest);
      log.info({ recipients: n, status }, 'Delivery-report horizon reached; pending recipients settled');
      return finish();
    }
    if (new Set(updates.map((u) => u.index)).size >= ctx.pending.size) return finish();
    return nextPollAt(data.step + 1, delivery.sentAt, delivery.horizonAt, this.opts.unitMs);
  }

  /** Applies a pushed report to the batch holding its provider id; false when none does (ignored, counted). */
  private async applyPushed(data: DeliveryPushJobData, signal: AbortSignal): Promise<boolean> {
    const source = this.opts.sources.get(data.provider);
    const id = Number(data.report.providerId);
    if (source?.resolvePushed && Number.isSafeInteger(id)) {
      for (const batchId of await this.store.batchesForId(data.provider, id)) {
        const [delivery, record] = await Promise.all([
          this.store.getBatch(batchId),
          this.opts.store.getBatch(batchId),
        ]);
        if (!delivery || !record) continue;
        const ctx = this.context(record, delivery, signal);
        const index = await source.resolvePushed(ctx, data.report);
        if (index === undefined) continue;
        await this.store.apply(batchId, delivery, this.updatesOf(ctx, [{ ...data.report, index }]));
        return true;
      }
    }
    await this.opts.redis.hincrby(this.opts.keys.deliveryStats, `${data.provider}|push-ignored`, 1);
    return false;
  }

  /** The `dlr` queue's processor. */
  processor() {
    return async (job: Job<DeliveryJobData>, token: string | undefined, jobSignal?: AbortSignal) => {
      const signal = jobSignal ?? NEVER_ABORTED;
      const data = job.data;
      if (data.kind === 'push') return { applied: await this.applyPushed(data, signal) };
      const next = await this.poll(data, signal);
      if (next === undefined) return { done: true };
      await job.updateData({ ...data, step: data.step + 1 });
      await job.moveToDelayed(Math.max(next, Date.now() + 1), token);
      throw new DelayedError();
    };
  }

  /**
   * Starts the `dlr` worker on its own connection (it never shares the send workers' concurrency),
   * with the send workers' lock options: a dead worker's report jobs are taken over as quickly.
   */
  startWorker(
    connection: Redis,
    opts: { lockDuration: number; stalledInterval: number; maxStalledCount: number; concurrency?: number },
  ): Worker<DeliveryJobData> {
    const processor = this.processor();
    return new Worker<DeliveryJobData>(DLR_QUEUE, (job, token, signal) => processor(job, token, signal), {
      connection,
      prefix: this.opts.prefix,
      lockDuration: opts.lockDuration,
      stalledInterval: opts.stalledInterval,
      maxStalledCount: opts.maxStalledCount,
      concurrency: opts.concurrency ?? 8,
    });
  }

  async close(): Promise<void> {
    await closeSharedQueue(this.queue);
    for (const source of this.opts.sources.values()) await source.close().catch(() => undefined);
  }
}
