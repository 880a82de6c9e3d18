import { hash } from 'node:crypto';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { IdempotencyConflictError, InputError, coerceError } from '../errors.js';
import type { Logger } from '../logger.js';
import { normalizeNumber } from '../message/recipients.js';
import { analyzeText } from '../message/segments.js';
import type { OutboundMessage, ProviderId } from '../message/types.js';
import type { QueueContext } from '../queue/context.js';
import { enqueueRequest, type EnqueueDeps } from '../queue/enqueue.js';
import { getRequestSummary } from '../queue/status.js';
import { runSpecOf, type RunSpec } from './definition.js';
import { parseIsoDuration } from './duration.js';
import { CampaignSourceError } from './errors.js';
import { inTurns, readRecipientRows } from './rows.js';
import { sumChunks } from './run-summary.js';
import { decodeStagedChunk, encodeStagedChunk } from './staged-chunk.js';
import {
  emptyProgress,
  type CampaignStore,
  type ChunkEntry,
  type RowError,
  type RunRecord,
} from './store.js';
import { compileTemplate } from './template.js';
import { nextOpening } from '../message/send-window.js';

/** Data of a run job. Manual runs and imports carry their runId; scheduled ones derive it from the occurrence. */
export interface RunJobData {
  runId?: string;
  campaignId?: string;
}

/** What a run job returns (the run record holds the details). */
export interface RunJobResult {
  runId?: string;
  state: string;
  rows?: number;
}

/** Test seams: simulate a crash at the worst moments. */
export interface RunHooks {
  /** After a chunk is staged (with the progress up to it) and before anything else happens. */
  afterStage?(runId: string, chunkIndex: number): void | Promise<void>;
  /** After a chunk's request is enqueued and before the run records it. */
  afterEnqueue?(runId: string, chunkIndex: number): void | Promise<void>;
}

export interface RunProcessorDeps {
  context: QueueContext;
  runs: CampaignStore;
  defaultCountry: string;
  /** Providers the workers can send through; a run naming another fails its chunks' validation. */
  providers?: readonly ProviderId[];
  /** The webhook target of the run's requests (SMSQ_WEBHOOK_URL; see EnqueueDeps.webhookTarget). */
  webhookTarget?: EnqueueDeps['webhookTarget'];
  /** Retention of run records and idempotency keys of chunks, in seconds. */
  recordTtlS: number;
  logger: Logger;
  /** Recipients per send request (≤ 1,000). */
  chunkSize?: number;
  /** Chunks enqueued and not yet completed, at most (backpressure). */
  maxOutstandingChunks?: number;
  /** The wall clock send windows are judged by (tests move it). */
  clock?: () => number;
  hooks?: RunHooks;
}

export const DEFAULT_CHUNK_SIZE = 1_000;
export const DEFAULT_MAX_OUTSTANDING_CHUNKS = 8;
/** A chunk is also cut at this many characters of text, so its send job stays small. */
const MAX_CHUNK_TEXT = 400_000;
const MAX_ROW_ERRORS = 20;
const PROGRESS_EVERY_ROWS = 10_000;
/**
 * Rows read, rendered and normalised between two turns of the event loop (see inTurns): without
 * them a 1,000-row chunk was one synchronous stretch of tens of ms, and a single send sharing the
 * process (its HTTP request, its batch's Redis replies) waited behind it; 100 rows take a few ms.
 */
const ROWS_PER_TURN = 100;
const POLL_MIN_MS = 5;
const POLL_MAX_MS = 250;
/** While rows are read, how often at most the feed asks whether a chunk in flight has completed. */
const FEED_POLL_MS = 20;

const SCHEDULED_JOB_ID = /^repeat:(.+):(\d+)$/;

/** The run id of a cron occurrence: deterministic, so an occurrence is one run whoever processes it. */
export function scheduledRunId(campaignId: string, occurrenceMs: number): string {
  return `${campaignId}.${occurrenceMs}`;
}

/** The idempotency key of a run's chunk: a retried run re-enqueues nothing. */
export function chunkIdempotencyKey(record: Pick<RunRecord, 'campaignId' | 'runId'>, index: number): string {
  return `campaign:${record.campaignId ?? 'import'}:${record.runId}:${index}`;
}

interface PendingRow {
  row: number;
  to: string;
  text: string;
}

function groupByText(rows: readonly PendingRow[]): OutboundMessage[] {
  const byText = new Map<string, string[]>();
  for (const r of rows) {
    const list = byText.get(r.text);
    if (list) list.push(r.to);
    else byText.set(r.text, [r.to]);
  }
  return [...byText].map(([text, to]) => ({ text, to }));
}

/** The credits of rows before de-duplication: what their chunk is estimated at, at most. */
function mostCredits(rows: readonly PendingRow[]): number {
  let credits = 0;
  let lastText: string | undefined;
  let lastSegments = 0;
  for (const r of rows) {
    if (r.text !== lastText) {
      lastText = r.text;
      lastSegments = analyzeText(r.text).segments;
    }
    credits += lastSegments;
  }
  return credits;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Errors a retry would meet again: the run fails at once. */
function isPermanent(err: unknown): boolean {
  return (
    err instanceof UnrecoverableError ||
    err instanceof CampaignSourceError ||
    err instanceof IdempotencyConflictError ||
    err instanceof InputError
  );
}

/**
 * Processes one run in two overlapping steps. Import: streams the recipients, renders each row,
 * cuts the rows into chunks of ≤ 1,000 recipients and stages each chunk in Redis, compressed, with
 * the progress up to it (the run is "imported" once every row is). Send: enqueues the staged
 * chunks in order as send requests with deterministic idempotency keys, at most N in flight,
 * dropping each staged copy as its request is recorded; the run completes when every request has.
 * A retry before the import ended re-reads the rows (every counter is recomputed from them, so it
 * ends the same) and stages only the chunks neither staged nor enqueued; a retry after it only
 * enqueues what is still staged.
 */
export function createRunProcessor(deps: RunProcessorDeps) {
  const { context, runs } = deps;
  const chunkSize = Math.min(deps.chunkSize ?? DEFAULT_CHUNK_SIZE, 1_000);
  const maxOutstanding = Math.max(1, deps.maxOutstandingChunks ?? DEFAULT_MAX_OUTSTANDING_CHUNKS);
  const clock = deps.clock ?? Date.now;
  const baseLog = deps.logger.child({ module: 'campaign-run' });
  const enqueueDeps: EnqueueDeps = {
    store: context.store,
    sendQueue: context.sendQueue,
    defaultCountry: deps.defaultCountry,
    providers: deps.providers,
    webhookTarget: deps.webhookTarget,
  };

  /** The run of this job, created now for a cron occurrence; undefined when its campaign is gone. */
  async function resolveRun(job: Job<RunJobData>, log: Logger): Promise<RunRecord | undefined> {
    let runId = job.data.runId;
    if (!runId) {
      const match = SCHEDULED_JOB_ID.exec(job.id ?? '');
      if (!match) throw new UnrecoverableError(`Run job ${job.id} has no runId`);
      const campaignId = job.data.campaignId ?? match[1]!;
      const occurrence = Number(match[2]);
      runId = scheduledRunId(campaignId, occurrence);
      if (!(await runs.getRun(runId))) {
        const stored = await runs.getCampaign(campaignId);
        if (!stored) {
          log.warn({ campaignId }, 'Campaign no longer exists; occurrence skipped');
          return undefined;
        }
        await runs.createRun({
          runId,
          campaignId,
          kind: 'scheduled',
          state: 'queued',
          createdAt: new Date().toISOString(),
          occurrence: new Date(occurrence).toISOString(),
          spec: runSpecOf(stored.campaign),
        });
      }
    }
    const record = await runs.getRun(runId);
    if (!record) throw new UnrecoverableError(`Run ${runId} has no record`);
    return record;
  }

  /** When the run should wait for its window: the next opening, or its expiry if sooner; undefined to go on. */
  function windowWait(spec: RunSpec, expiresAt: string | undefined): number | undefined {
    if (!spec.window || !spec.timezone) return undefined;
    const wall = clock();
    const opening = nextOpening(spec.window, spec.timezone, wall);
    if (opening === undefined) return undefined;
    const now = Date.now();
    const until = Math.min(
      now + (opening - wall),
      expiresAt ? Date.parse(expiresAt) : Number.POSITIVE_INFINITY,
    );
    return until > now ? until : undefined;
  }

  async function defer(
    job: Job<RunJobData>,
    token: string | undefined,
    record: RunRecord,
    until: number,
    log: Logger,
  ): Promise<never> {
    await runs.updateRun(record.runId, { state: 'queued', deferredUntil: new Date(until).toISOString() });
    log.info(
      { until: new Date(until).toISOString() },
      'Send window closed; run deferred to its next opening',
    );
    await job.moveToDelayed(until, token);
    throw new DelayedError();
  }

  async function execute(
    job: Job<RunJobData>,
    token: string | undefined,
    signal: AbortSignal | undefined,
    record: RunRecord,
    log: Logger,
  ): Promise<RunJobResult> {
    const { spec, runId } = record;
    const expiresAfterMs = spec.expiresAfter ? parseIsoDuration(spec.expiresAfter) : undefined;
    const expiresAt =
      expiresAfterMs !== undefined
        ? new Date(Date.parse(record.occurrence) + expiresAfterMs).toISOString()
        : undefined;

    const waitUntil = windowWait(spec, expiresAt);
    if (waitUntil !== undefined) await defer(job, token, record, waitUntil, log);

    await runs.updateRun(runId, {
      state: 'running',
      startedAt: record.startedAt ?? new Date().toISOString(),
      deferredUntil: null,
    });
    log.info({ attempt: job.attemptsMade + 1 }, 'Run started');

    const template = compileTemplate(spec.text);
    /** Chunks enqueued (by this attempt or an earlier one), by index. */
    const chunks = await runs.getChunks(runId);
    const outstanding = new Map<number, string>();
    for (const [index, chunk] of chunks) if (!chunk.counts) outstanding.set(index, chunk.requestId);
    /** Chunks staged and not yet enqueued, in order: the feed takes them from `fed` on. */
    const toFeed = await runs.getStagedIndexes(runId);
    const stagedBefore = new Set(toFeed);
    let fed = 0;

    const imported = record.importedAt !== undefined;
    const progress = imported ? record.progress : emptyProgress();
    const rowErrors: RowError[] = imported ? record.rowErrors : [];
    let pending: PendingRow[] = [];
    let pendingText = 0;
    let chunkIndex = 0;
    let creditStop = false;
    /** The chunk being cut (Redis de-duplicating and staging it) while the next one's rows are read. */
    let cutting: Promise<void> = Promise.resolve();
    /** The feed running beside the reading of rows (one at a time), and the error that stopped it. */
    let feeding: Promise<void> | undefined;
    let feedFailure: { error: unknown } | undefined;

    const noteError = (row: { index: number; line?: number }, error: string) => {
      if (rowErrors.length < MAX_ROW_ERRORS)
        rowErrors.push({ row: row.index, ...(row.line ? { line: row.line } : {}), error });
    };
    const seenKey = (r: PendingRow) =>
      template.constant ? r.to : `${r.to}|${hash('md5', r.text, 'base64').slice(0, 12)}`;
    const stopIfAborted = async () => {
      if (!signal?.aborted) return;
      // Nothing of this attempt may go on writing once it gave up.
      await cutting.catch(() => undefined);
      await feeding;
      await runs.updateRun(runId, { progress, rowErrors });
      log.info('Run interrupted by shutdown; it resumes where it stopped');
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    };

    /** Records the chunks whose request completed (or whose record is gone); true when one did. */
    async function poll(): Promise<boolean> {
      if (outstanding.size === 0) return false;
      const entries = [...outstanding];
      const pipeline = context.redis.pipeline();
      for (const [, requestId] of entries) pipeline.hget(context.keys.request(requestId), 'state');
      const states = (await pipeline.exec()) ?? [];
      let progressed = false;
      for (let i = 0; i < entries.length; i += 1) {
        const [index, requestId] = entries[i]!;
        const [err, state] = states[i] ?? [];
        if (err) throw err;
        if (state !== 'completed' && state !== null) continue;
        const chunk: ChunkEntry = { ...chunks.get(index)!, requestId };
        if (state === 'completed') {
          const summary = await getRequestSummary(context.store, requestId);
          chunk.counts = summary.counts;
          chunk.credits = summary.credits;
        }
        // A request record gone (expired) has no outcome left to wait for.
        await runs.setChunk(runId, index, chunk);
        chunks.set(index, chunk);
        outstanding.delete(index);
        progressed = true;
      }
      return progressed;
    }

    /** Waits until at most `limit` chunks are in flight, recording those that complete. */
    async function settle(limit: number): Promise<void> {
      let delay = POLL_MIN_MS;
      while (outstanding.size > limit) {
        if (await poll()) {
          delay = POLL_MIN_MS;
          continue;
        }
        await stopIfAborted();
        if (delay === POLL_MAX_MS) {
          // Nothing moves and the window is closed: free this worker until it opens.
          const until = windowWait(spec, expiresAt);
          if (until !== undefined) {
            await runs.updateRun(runId, { progress, rowErrors });
            await defer(job, token, record, until, log);
          }
        }
        await sleep(delay);
        delay = Math.min(delay * 2, POLL_MAX_MS);
      }
    }

    /** Enqueues one staged chunk as a send request; its staged copy goes in the same step as its record. */
    async function enqueueStaged(index: number): Promise<void> {
      const payload = await runs.getStagedChunk(runId, index);
      if (!payload) {
        throw new UnrecoverableError(
          `Chunk ${index} of run ${runId} is no longer staged (its key expired?); its rows cannot be sent`,
        );
      }
      const { accepted } = await enqueueRequest(
        enqueueDeps,
        {
          messages: decodeStagedChunk(payload),
          // Campaign traffic goes after everything else waiting for the same provider.
          priority: 'low',
          ...(spec.sender ? { sender: spec.sender } : {}),
          ...(spec.provider ? { provider: spec.provider } : {}),
          ...(expiresAt ? { expiresAt } : {}),
          ...(spec.window ? { window: spec.window, timezone: spec.timezone } : {}),
        },
        {
          idempotencyKey: chunkIdempotencyKey(record, index),
          scope: 'campaign',
          idempotencyTtlS: deps.recordTtlS,
          // Each number was normalised as its row was read, long before its chunk's turn came.
          normalized: true,
        },
      );
      await deps.hooks?.afterEnqueue?.(runId, index);
      const entry: ChunkEntry = { requestId: accepted.id, recipients: accepted.recipients };
      await runs.recordEnqueued(runId, index, entry, deps.recordTtlS);
      chunks.set(index, entry);
      outstanding.set(index, accepted.id);
    }

    let lastPoll = 0;
    /**
     * Enqueues staged chunks in order while fewer than N are in flight. `wait`: until every staged
     * chunk is enqueued (deferring the run while its window is closed, stopping on shutdown); else
     * only as far as there is room now, looking at most every FEED_POLL_MS (see feedAside).
     */
    async function feed(wait: boolean): Promise<void> {
      while (fed < toFeed.length) {
        if (wait) {
          await settle(maxOutstanding - 1);
          await stopIfAborted();
        } else {
          if (signal?.aborted) return;
          if (outstanding.size >= maxOutstanding) {
            if (performance.now() - lastPoll < FEED_POLL_MS) return;
            lastPoll = performance.now();
            await poll();
            if (outstanding.size >= maxOutstanding) return;
          }
        }
        await enqueueStaged(toFeed[fed]!);
        fed += 1;
      }
    }

    /**
     * Feeds beside the reading of rows: the reader never waits for an enqueue (several round trips
     * to a Redis busy with sending), only for its own chunks. A failure surfaces at the next chunk.
     */
    function feedAside(): void {
      if (feeding || feedFailure) return;
      feeding = feed(false)
        .catch((error: unknown) => {
          feedFailure = { error };
        })
        .finally(() => {
          feeding = undefined;
        });
    }

    /** Waits for the feed running aside; throws what stopped it. */
    async function feedAsideDone(): Promise<void> {
      await feeding;
      if (feedFailure) throw feedFailure.error;
    }

    /** Makes a chunk of rows: de-duplicated, checked against the budget, staged. */
    async function cut(rows: readonly PendingRow[], index: number): Promise<void> {
      if (feedFailure) throw feedFailure.error;
      const duplicate = await runs.markSeen(
        runId,
        rows.map((r) => ({ key: seenKey(r), row: r.row })),
        deps.recordTtlS,
      );
      const kept = rows.filter((_, i) => !duplicate[i]);
      progress.duplicates += rows.length - kept.length;
      if (kept.length === 0) return;

      const messages = groupByText(kept);
      const estimate = messages.reduce((n, m) => n + analyzeText(m.text).segments * m.to.length, 0);
      if (spec.maxCredits !== undefined && progress.plannedCredits + estimate > spec.maxCredits) {
        // Stop at the first chunk that does not fit: later rows are counted, never sent.
        creditStop = true;
        progress.skippedForCredits += kept.length;
        log.warn(
          { chunk: index, plannedCredits: progress.plannedCredits, maxCredits: spec.maxCredits },
          'Credit budget reached; rest of the run not enqueued',
        );
        return;
      }
      progress.plannedCredits += estimate;
      progress.chunks += 1;
      if (chunks.has(index) || stagedBefore.has(index)) return; // staged or enqueued by an earlier attempt

      await runs.stageChunk(
        runId,
        index,
        encodeStagedChunk(messages),
        { progress, rowErrors },
        deps.recordTtlS,
      );
      await deps.hooks?.afterStage?.(runId, index);
      toFeed.push(index);
      feedAside();
    }

    /** Hands the pending rows to `cut` once the chunk before them is cut, so chunks stay in order. */
    async function flush(): Promise<void> {
      if (pending.length === 0) return;
      const rows = pending;
      pending = [];
      pendingText = 0;
      const index = chunkIndex;
      chunkIndex += 1;
      await cutting;
      cutting = cut(rows, index);
      // Awaited by the next flush or after the last row; until then its failure is not unhandled.
      cutting.catch(() => undefined);
      // A chunk that may reach the credit budget is cut before another row is read: the rows after
      // the budget is reached are all counted skippedForCredits, whatever else they would have been.
      if (spec.maxCredits !== undefined && progress.plannedCredits + mostCredits(rows) > spec.maxCredits)
        await cutting;
    }

    if (!imported) {
      try {
        await readRows();
      } catch (err) {
        // Nothing of this attempt may go on writing once it gave up.
        await cutting.catch(() => undefined);
        await feeding;
        throw err;
      }
      await runs.markImported(runId, { progress, rowErrors }, new Date().toISOString());
      log.info(
        { rows: progress.rows, chunks: progress.chunks, staged: toFeed.length - fed },
        'Run imported: every row read, its chunks staged',
      );
    }
    await feed(true);
    await settle(0);

    async function readRows(): Promise<void> {
      for await (const row of inTurns(readRecipientRows(spec.recipients), ROWS_PER_TURN)) {
        progress.rows += 1;
        if (progress.rows % PROGRESS_EVERY_ROWS === 0) {
          await runs.updateRun(runId, { progress, rowErrors });
          await stopIfAborted();
        }
        if (creditStop) {
          progress.skippedForCredits += 1;
          continue;
        }
        const rendered = template.render((column) => row.value(column));
        if (!rendered.ok) {
          progress.templateErrors += 1;
          noteError(row, rendered.error);
          continue;
        }
        const phone = row.phone;
        const number =
          phone === undefined
            ? { ok: false as const, reason: 'no phone number' }
            : normalizeNumber(phone, deps.defaultCountry);
        if (!number.ok) {
          progress.invalid += 1;
          noteError(row, `phone: ${number.reason}`);
          continue;
        }
        pending.push({ row: row.index, to: number.e164, text: rendered.text });
        pendingText += rendered.text.length;
        if (pending.length >= chunkSize || pendingText >= MAX_CHUNK_TEXT) await flush();
      }
      await flush();
      await cutting;
      await feedAsideDone();
    }

    const final = await sumChunks(context.store, chunks, progress.invalid);
    await runs.completeRun(runId, final, new Date().toISOString(), deps.recordTtlS);
    log.info(
      { rows: progress.rows, requests: progress.chunks, counts: final.counts, credits: final.credits },
      'Run completed',
    );
    return { runId, state: 'completed', rows: progress.rows };
  }

  return async function processRun(
    job: Job<RunJobData>,
    token?: string,
    signal?: AbortSignal,
  ): Promise<RunJobResult> {
    const jobLog = baseLog.child({ jobId: job.id });
    const record = await resolveRun(job, jobLog);
    if (!record) return { state: 'skipped' };
    const log = jobLog.child({ runId: record.runId, campaignId: record.campaignId });
    if (record.state === 'completed')
      return { runId: record.runId, state: 'completed', rows: record.progress.rows };
    try {
      return await execute(job, token, signal, record, log);
    } catch (thrown) {
      if (thrown instanceof DelayedError) throw thrown;
      const err = coerceError(thrown);
      const final = isPermanent(err) || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (final) {
        await runs.failRun(record.runId, err.message, new Date().toISOString(), deps.recordTtlS);
        log.error({ err }, 'Run failed');
        throw isPermanent(err) ? new UnrecoverableError(err.message) : err;
      }
      await runs.updateRun(record.runId, { error: err.message });
      log.warn(
        { err, attempt: job.attemptsMade + 1 },
        'Run attempt failed; retrying (chunks already enqueued are skipped)',
      );
      throw err;
    }
  };
}
