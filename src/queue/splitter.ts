import { createHash } from 'node:crypto';
import { WaitingChildrenError, type Job, type Queue } from 'bullmq';
import type { Logger } from '../logger.js';
import { planBatches } from '../message/batch-plan.js';
import { groupByRoute, routeOf, type RouteRule } from '../message/routes.js';
import type { RequestPriority } from '../message/request.js';
import { analyzeText } from '../message/segments.js';
import type { Batch, OutboundMessage, ProviderId } from '../message/types.js';
import type { SmsProvider } from '../providers/types.js';
import { isFinalBatchState } from './batch-state.js';
import { jobPriority, laneOf, type BatchJobData, type SendJobData } from './jobs.js';
import { ledgerFields } from './ledger.js';
import { BATCH_JOB, type PerLane } from './names.js';
import type { BatchRecord, RecordStore } from './records.js';
import { summarizeRequest, type BatchSummary, type RequestSummary } from './summary.js';
import type { SuppressionList } from './suppressions.js';

export interface SplitterDeps {
  store: RecordStore;
  providers: ReadonlyMap<ProviderId, SmsProvider>;
  /** Each provider's batch queues, one per lane. */
  batchQueues: ReadonlyMap<ProviderId, PerLane<Queue<BatchJobData>>>;
  suppressions: SuppressionList;
  defaultProvider: ProviderId;
  /** Routing rules (SMSQ_ROUTES); empty: every batch goes to the request's provider or the default. */
  routes: readonly RouteRule[];
  attempts: number;
  backoffMs: number;
  recordTtlS: number;
  logger: Logger;
}

/**
 * What a completed send job returns (BullMQ keeps it with the job, for the latest 100 completed requests): the request's
 * summary without the batches' provider ids, which can be one per recipient (OVH) and are in the
 * batch records and the ledger anyway.
 */
export interface SendJobResult extends Omit<RequestSummary, 'batches'> {
  batches: Omit<BatchSummary, 'providerIds'>[];
}

/**
 * Options of a batch job, child of its request's send job. jobId = batch id: re-adding after a
 * crash (or a failover run twice) is a no-op for jobs already there.
 */
export function batchJobOptions(
  batchId: string,
  parent: { id: string; queue: string } | undefined,
  retry: { attempts: number; backoffMs: number },
  priority?: RequestPriority,
) {
  return {
    jobId: batchId,
    ...jobPriority(priority),
    ...(parent ? { parent } : {}),
    attempts: retry.attempts,
    backoff: { type: 'exponential' as const, delay: retry.backoffMs, jitter: 0.5 },
    // The parent aggregates whatever its batches ended in, failures included.
    ignoreDependencyOnFailure: true,
    // The batch record holds what the job did: keep only the latest completed jobs, for the
    // dashboard (kept by age, a million-recipient day would hold ~29 B per recipient for 24 h).
    removeOnComplete: { count: 1_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

/** A batch tag unique per batch and ≤ 20 characters (OVH's limit), so an ambiguous send can be found. */
export function batchTag(batchId: string): string {
  return `sq${createHash('sha256').update(batchId).digest('base64url').replace(/[-_]/g, '').slice(0, 18)}`;
}

/** Segments per recipient summed over the messages: a batch's credit estimate. */
export function estimateCredits(messages: readonly OutboundMessage[]): number {
  return messages.reduce((n, m) => n + analyzeText(m.text).segments * m.to.length, 0);
}

/** Drops suppressed numbers; returns what remains and how many were dropped. */
async function dropSuppressed(
  messages: readonly OutboundMessage[],
  suppressions: SuppressionList,
): Promise<{ messages: OutboundMessage[]; suppressed: number }> {
  const listed = await suppressions.filterListed(messages.flatMap((m) => m.to));
  if (listed.size === 0) return { messages: [...messages], suppressed: 0 };
  let suppressed = 0;
  const kept: OutboundMessage[] = [];
  for (const message of messages) {
    const to = message.to.filter((n) => !listed.has(n));
    suppressed += message.to.length - to.length;
    if (to.length > 0) kept.push({ text: message.text, to });
  }
  return { messages: kept, suppressed };
}

/**
 * Processes a send job: plans its batches once (stored before any is sent), adds one child job
 * per batch to the provider's queue, waits for them, then aggregates the request's result.
 */
export function createSplitter(deps: SplitterDeps) {
  const log = deps.logger.child({ module: 'splitter' });

  async function plan(job: Job<SendJobData>): Promise<BatchRecord[]> {
    const { requestId } = job.data;
    // The record and the opt-out check in one round trip's time (a single send waits on both).
    const [request, unsuppressed] = await Promise.all([
      deps.store.getRequest(requestId),
      dropSuppressed(job.data.messages, deps.suppressions),
    ]);
    if (!request) throw new Error(`Request ${requestId} has no record`);
    // A retried splitter reuses the stored plan: the same batches, never a second set.
    if (request.planned) return deps.store.getBatches(request.batchIds);

    const { messages, suppressed } = unsuppressed;
    const groups =
      deps.routes.length === 0
        ? [{ route: [job.data.provider ?? deps.defaultProvider], messages }]
        : groupByRoute(messages, (to) =>
            routeOf(to, deps.routes, {
              ...(job.data.provider ? { requestProvider: job.data.provider } : {}),
              defaultProvider: deps.defaultProvider,
            }),
          );
    const records: BatchRecord[] = [];
    for (const group of groups) {
      const providerId = group.route[0]!;
      const provider = deps.providers.get(providerId);
      // A route of one provider, or a request that opted out, never fails over.
      const route = job.data.failover !== false && group.route.length > 1 ? group.route : undefined;
      const planned = provider
        ? planBatches(group.messages, provider.limits)
        : [{ messages: group.messages }];
      for (const p of planned) {
        if (p.messages.length === 0) continue;
        const id = `${requestId}-${records.length}`;
        const batch: Batch = {
          id,
          requestId,
          provider: providerId,
          tag: batchTag(id),
          messages: p.messages,
          ...(job.data.sender ? { sender: job.data.sender } : {}),
          estimatedCredits: estimateCredits(p.messages),
        };
        records.push({
          batch,
          // Cancelled before planning, or a provider these workers cannot use: nothing is sent.
          state: request.cancelled || !provider ? 'failed' : 'planned',
          attempts: 0,
          ...(job.data.expiresAt ? { expiresAt: job.data.expiresAt } : {}),
          ...(job.data.window ? { window: job.data.window, timezone: job.data.timezone } : {}),
          ...(!provider ? { error: `provider ${providerId} is not configured in the workers` } : {}),
          ...(route ? { route } : {}),
        } satisfies BatchRecord);
      }
    }
    const providerIds = [...new Set(records.map((r) => r.batch.provider))];
    // One provider for the whole request, or none when its recipients went to several (see batches).
    const providerId = providerIds.length === 1 ? providerIds[0] : job.data.provider;
    const saved = await deps.store.savePlan(requestId, {
      ...(providerId ? { provider: providerId } : {}),
      suppressed,
      batches: records,
    });
    if (!saved) {
      // Another run of this job planned first: its plan is the one, never a second set.
      const stored = await deps.store.getRequest(requestId);
      return deps.store.getBatches(stored?.batchIds ?? []);
    }
    log.info({ requestId, batches: records.length, suppressed, providers: providerIds }, 'Request planned');
    for (const id of providerIds.filter((p) => !deps.providers.has(p)))
      log.error({ requestId, provider: id }, 'Provider not configured; its batches failed');
    return records;
  }

  async function addChildren(job: Job<SendJobData>, records: readonly BatchRecord[]): Promise<void> {
    const pending = records.filter((r) => !isFinalBatchState(r.state));
    const byProvider = new Map<ProviderId, BatchRecord[]>();
    for (const r of pending)
      byProvider.set(r.batch.provider, [...(byProvider.get(r.batch.provider) ?? []), r]);
    for (const [providerId, list] of byProvider) {
      // The request's lane, whichever lane's send queue this job came from (one queued before lanes).
      const queue = deps.batchQueues.get(providerId)?.[laneOf(job.data.priority)];
      if (!queue) throw new Error(`No queue for provider ${providerId}`);
      // jobId = batch id: re-adding after a crash is a no-op for children already there.
      await queue.addBulk(
        list.map((r) => ({
          name: BATCH_JOB,
          data: { batchId: r.batch.id, requestId: r.batch.requestId, priority: job.data.priority },
          opts: batchJobOptions(
            r.batch.id,
            { id: job.id!, queue: job.queueQualifiedName },
            deps,
            job.data.priority,
          ),
        })),
      );
    }
  }

  /**
   * Every batch is done (completed or failed): give each an outcome, compact the final records
   * (see `RecordStore.compactBatches`) and complete the request.
   */
  async function finalize(requestId: string): Promise<RequestSummary> {
    const request = await deps.store.getRequest(requestId);
    if (!request) throw new Error(`Request ${requestId} has no record`);
    let batches = await deps.store.getBatches(request.batchIds);
    let settled = false;
    for (const record of batches) {
      // A batch job that failed outside the processor (e.g. stalled too often) left its batch
      // unfinished: planned was never sent (failed); sending may have reached the provider (unknown).
      if (record.state === 'planned') {
        settled = true;
        await deps.store.transition(record.batch, ['planned'], 'failed', { error: 'batch job ended unsent' });
      } else if (record.state === 'sending') {
        settled = true;
        await deps.store.transition(record.batch, ['sending'], 'unknown', {
          error: 'batch job ended mid-send',
          ledger: ledgerFields(record.batch, 'unknown'),
        });
      }
    }
    // Read again only what this run may have changed (the usual case, every batch final, changes nothing).
    if (settled) batches = await deps.store.getBatches(request.batchIds);
    await deps.store.compactBatches(batches);
    const finishedAt = await deps.store.completeRequest(request, deps.recordTtlS);
    const summary = summarizeRequest({ ...request, state: 'completed', finishedAt }, batches);
    log.info({ requestId, counts: summary.counts, credits: summary.credits }, 'Request completed');
    return summary;
  }

  return async function processSendJob(job: Job<SendJobData>, token?: string): Promise<SendJobResult> {
    if ((job.data.step ?? 'plan') === 'plan') {
      const records = await plan(job);
      await addChildren(job, records);
      // The batch records hold every recipient now: the job keeps none (a retry that is still at
      // `plan` finds the request planned and reads the stored plan; `wait` never reads them).
      await job.updateData({ ...job.data, messages: [], step: 'wait' });
    }
    if (token && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
    const summary = await finalize(job.data.requestId);
    return { ...summary, batches: summary.batches.map(({ providerIds: _ids, ...batch }) => batch) };
  };
}
