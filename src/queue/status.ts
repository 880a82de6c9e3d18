import { NotFoundError } from '../errors.js';
import { DeliveryStore, type DeliveryCounts } from './delivery-store.js';
import type { RecordStore } from './records.js';
import { summarizeRequest, type RequestSummary } from './summary.js';

/** The current result of a request (the shape of GET /v1/messages/:id). */
export async function getRequestSummary(
  store: RecordStore,
  id: string,
): Promise<RequestSummary & { delivery: DeliveryCounts }> {
  const request = await store.getRequest(id);
  if (!request) throw new NotFoundError(`No request with id ${id}`);
  const batches = await store.getBatches(request.batchIds);
  const summary = summarizeRequest(request, batches);
  const finals = await new DeliveryStore(store.redis, store.keys).getRequestFinals(id);
  const final = finals.delivered + finals.undelivered + finals.expired + finals.unreported;
  // Pending is what the accepted count leaves: a batch just recorded sent counts before its state exists.
  return { ...summary, delivery: { pending: Math.max(0, summary.counts.accepted - final), ...finals } };
}

/**
 * Cancels what is not sent yet, in one atomic step: batches no provider call has begun for end
 * `failed`, and no batch of the request can start a call afterwards (not a retry, not a resend
 * after reconciliation, not a batch planned later). A batch whose call already began is left to
 * finish (it may be at the provider). Returns how many batches were cancelled.
 */
export async function cancelRequest(store: RecordStore, id: string): Promise<{ cancelledBatches: number }> {
  const cancelledBatches = await store.cancelRequest(id);
  if (cancelledBatches === undefined) throw new NotFoundError(`No request with id ${id}`);
  return { cancelledBatches };
}
