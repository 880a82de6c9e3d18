import { NotFoundError } from '../errors.js';
import type { RecordStore } from './records.js';
import { summarizeRequest, type RequestSummary } from './summary.js';

/** The current result of a request (the shape of GET /v1/messages/:id). */
export async function getRequestSummary(store: RecordStore, id: string): Promise<RequestSummary> {
  const request = await store.getRequest(id);
  if (!request) throw new NotFoundError(`No request with id ${id}`);
  const batches = await store.getBatches(request.batchIds);
  return summarizeRequest(request, batches);
}

/**
 * Cancels what is not sent yet: batches still `planned` end `failed`; a batch already in flight
 * is left to finish (it may already be at the provider). Returns how many batches were cancelled.
 */
export async function cancelRequest(store: RecordStore, id: string): Promise<{ cancelledBatches: number }> {
  const request = await store.getRequest(id);
  if (!request) throw new NotFoundError(`No request with id ${id}`);
  await store.markCancelled(id);
  let cancelledBatches = 0;
  for (const record of await store.getBatches(request.batchIds)) {
    const moved = await store.transition(record.batch, ['planned'], 'failed', { error: 'cancelled' });
    if (moved.ok) cancelledBatches += 1;
  }
  return { cancelledBatches };
}
