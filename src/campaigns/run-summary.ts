import { NotFoundError } from '../errors.js';
import type { RecordStore } from '../queue/records.js';
import { getRequestSummary } from '../queue/status.js';
import { emptyCounts, type RequestCounts } from '../queue/summary.js';
import type { CampaignStore, ChunkEntry, RunRecord } from './store.js';

/**
 * A run's counts: a request's outcomes summed over the run's requests (rows without a valid
 * number are counted `invalid`), plus the rows that never became a request. Once the run is
 * completed, `rows = total + templateErrors + duplicates + skippedForCredits`.
 */
export interface RunCounts extends RequestCounts {
  templateErrors: number;
  duplicates: number;
  skippedForCredits: number;
}

/** The shape of `GET /v1/campaigns/:id/runs/:runId`. */
export interface RunSummary extends Pick<
  RunRecord,
  | 'runId'
  | 'campaignId'
  | 'kind'
  | 'state'
  | 'createdAt'
  | 'occurrence'
  | 'startedAt'
  | 'importedAt'
  | 'finishedAt'
  | 'deferredUntil'
  | 'error'
  | 'rowErrors'
> {
  rows: number;
  counts: RunCounts;
  credits: { estimated: number; charged: number };
  /** Send requests (chunks of ≤ 1,000 recipients) enqueued. */
  requests: number;
  /** Chunks read and staged in Redis, waiting for sending capacity to become send requests. */
  staged: number;
  requestIds?: string[];
}

function add(into: RequestCounts, from: RequestCounts): void {
  for (const key of Object.keys(into) as (keyof RequestCounts)[]) into[key] += from[key];
}

/** Sums the chunks' outcomes: stored for completed chunks, read live for the others. */
export async function sumChunks(
  store: RecordStore,
  chunks: ReadonlyMap<number, ChunkEntry>,
  invalidRows: number,
): Promise<NonNullable<RunRecord['final']>> {
  const counts = emptyCounts();
  const credits = { estimated: 0, charged: 0 };
  for (const entry of chunks.values()) {
    let chunk: Pick<ChunkEntry, 'counts' | 'credits'> = entry;
    if (!entry.counts) {
      try {
        chunk = await getRequestSummary(store, entry.requestId);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        continue;
      }
    }
    if (chunk.counts) add(counts, chunk.counts);
    if (chunk.credits) {
      credits.estimated += chunk.credits.estimated;
      credits.charged += chunk.credits.charged;
    }
  }
  counts.total += invalidRows;
  counts.invalid += invalidRows;
  return { counts, credits };
}

export async function summarizeRun(
  deps: { store: RecordStore; runs: CampaignStore },
  record: RunRecord,
  opts: { requestIds?: boolean } = {},
): Promise<RunSummary> {
  const needChunks = !record.final || opts.requestIds;
  const chunks = needChunks ? await deps.runs.getChunks(record.runId) : new Map<number, ChunkEntry>();
  const totals = record.final ?? (await sumChunks(deps.store, chunks, record.progress.invalid));
  const { progress } = record;
  // Until the run completes, the chunks hash holds exactly the chunks enqueued so far.
  const requests = record.final ? progress.chunks : chunks.size;
  return {
    runId: record.runId,
    ...(record.campaignId ? { campaignId: record.campaignId } : {}),
    kind: record.kind,
    state: record.state,
    createdAt: record.createdAt,
    occurrence: record.occurrence,
    ...(record.startedAt ? { startedAt: record.startedAt } : {}),
    ...(record.importedAt ? { importedAt: record.importedAt } : {}),
    ...(record.finishedAt ? { finishedAt: record.finishedAt } : {}),
    ...(record.deferredUntil ? { deferredUntil: record.deferredUntil } : {}),
    ...(record.error ? { error: record.error } : {}),
    rows: progress.rows,
    counts: {
      ...totals.counts,
      templateErrors: progress.templateErrors,
      duplicates: progress.duplicates,
      skippedForCredits: progress.skippedForCredits,
    },
    credits: totals.credits,
    requests,
    // A failed run dropped what it had staged.
    staged: record.state === 'failed' ? 0 : Math.max(0, progress.chunks - requests),
    ...(opts.requestIds
      ? { requestIds: [...chunks.entries()].sort(([a], [b]) => a - b).map(([, c]) => c.requestId) }
      : {}),
    rowErrors: record.rowErrors,
  };
}
