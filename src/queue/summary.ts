import { batchRecipients, type ProviderId } from '../message/types.js';
import { isFinalBatchState, OUTCOME_OF_STATE, type BatchState } from './batch-state.js';
import type { DeliveryCounts } from './delivery-store.js';
import { countInvalid } from './ledger.js';
import type { BatchMove, BatchRecord, RequestRecord } from './records.js';

export interface RequestCounts {
  total: number;
  accepted: number;
  invalid: number;
  suppressed: number;
  rejected: number;
  failed: number;
  expired: number;
  unknown: number;
}

export interface BatchSummary {
  id: string;
  provider: ProviderId;
  state: BatchState;
  recipients: number;
  credits: { estimated: number; charged: number; chargedIsEstimate?: boolean };
  providerIds: string[];
  attempts: number;
  /** Duplicate receipts recorded for this batch (absent when none). */
  duplicates?: number;
  error?: string;
  /** Providers this batch failed over from, oldest first (absent when none). */
  history?: BatchMove[];
}

/** The shape of `GET /v1/messages/:id` and of `SmsClient.get`. */
export interface RequestSummary {
  id: string;
  state: RequestRecord['state'];
  createdAt: string;
  finishedAt?: string;
  counts: RequestCounts;
  credits: { estimated: number; charged: number };
  /** Recipients a provider accepted a second time (duplicate sends); each is also a ledger line. */
  duplicatesSent: number;
  /** The request's `tag`, as given. */
  tag?: string;
  /** Delivery status of the accepted recipients (adds up to `counts.accepted`); set by `getRequestSummary`. */
  delivery?: DeliveryCounts;
  batches: BatchSummary[];
}

export function emptyCounts(total = 0): RequestCounts {
  return { total, accepted: 0, invalid: 0, suppressed: 0, rejected: 0, failed: 0, expired: 0, unknown: 0 };
}

/**
 * Computes a request's counts from its records: every recipient is counted once, in the outcome
 * of its batch's final state; recipients of batches still in flight are not counted yet, so the
 * counts add up to `total` exactly when the request is completed.
 */
export function summarizeRequest(request: RequestRecord, batches: readonly BatchRecord[]): RequestSummary {
  const counts = emptyCounts(request.total);
  counts.invalid = request.invalid.length;
  counts.suppressed = request.suppressed;
  counts.failed = request.unsentFailed;
  let charged = 0;
  let estimated = request.planned ? 0 : request.estimatedCredits;
  const summaries: BatchSummary[] = [];

  for (const record of batches) {
    const recipients = batchRecipients(record.batch).length;
    if (request.planned) estimated += record.batch.estimatedCredits;
    if (record.state === 'sent' && record.receipt) {
      const invalid = countInvalid(record.batch, record.receipt);
      counts.invalid += invalid;
      counts.accepted += recipients - invalid;
      charged += record.receipt.creditsCharged;
    } else if (record.state !== 'sent' && isFinalBatchState(record.state)) {
      counts[OUTCOME_OF_STATE[record.state as Exclude<BatchState, 'planned' | 'sending' | 'moved'>]] +=
        recipients;
    }
    summaries.push({
      id: record.batch.id,
      provider: record.batch.provider,
      state: record.state,
      recipients,
      credits: {
        estimated: record.batch.estimatedCredits,
        charged: record.receipt?.creditsCharged ?? 0,
        ...(record.receipt?.creditsEstimated ? { chargedIsEstimate: true } : {}),
      },
      providerIds: record.receipt?.providerIds ?? [],
      attempts: record.attempts,
      ...(record.duplicates ? { duplicates: record.duplicates } : {}),
      ...(record.error ? { error: record.error } : {}),
      ...(record.history?.length ? { history: record.history } : {}),
    });
  }

  return {
    id: request.id,
    state: request.state,
    createdAt: request.createdAt,
    ...(request.finishedAt ? { finishedAt: request.finishedAt } : {}),
    counts,
    credits: { estimated, charged },
    duplicatesSent: request.duplicatesSent,
    ...(request.tag !== undefined ? { tag: request.tag } : {}),
    batches: summaries,
  };
}
