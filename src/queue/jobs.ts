import type { RequestPriority } from '../message/request.js';
import type { SendWindow } from '../message/send-window.js';
import type { OutboundMessage, ProviderId } from '../message/types.js';

/** Data of a send job (queue `send`): one producer request, already validated and normalised. */
export interface SendJobData {
  requestId: string;
  provider?: ProviderId;
  /** False: the request opted out of failover; its batches wait for their provider. */
  failover?: boolean;
  messages: OutboundMessage[];
  sender?: string;
  sendAt?: string;
  expiresAt?: string;
  /** Send window and its time zone, copied onto each batch (checked at dispatch). */
  window?: SendWindow;
  timezone?: string;
  /** The request's priority (absent in jobs queued before priorities existed: `normal`). */
  priority?: RequestPriority;
  /** Where the splitter is: planning, or waiting for its batches. */
  step?: 'plan' | 'wait';
}

/** Data of a batch job (queue `batch-<provider>`): the batch itself lives in its record. */
export interface BatchJobData {
  batchId: string;
  requestId: string;
  /** The request's priority: it orders the queue and the provider allowance (see jobPriority). */
  priority?: RequestPriority;
}

/**
 * BullMQ's job priority for a request priority. BullMQ takes jobs without a priority before
 * prioritized ones and, among those, the lowest number first: `high` is unprioritized (FIFO,
 * first), `normal` 1, `low` 2.
 */
export function jobPriority(priority: RequestPriority | undefined): { priority?: number } {
  if (priority === 'high') return {};
  return { priority: priority === 'low' ? 2 : 1 };
}

/** What a batch job returns: its final state (the record holds the details). */
export interface BatchJobResult {
  batchId: string;
  state: string;
}
