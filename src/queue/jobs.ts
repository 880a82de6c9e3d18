import type { RequestPriority } from '../message/request.js';
import type { SendWindow } from '../message/send-window.js';
import type { OutboundMessage, ProviderId } from '../message/types.js';
import type { Lane } from './names.js';

/** Data of a send job (queue `send` or `send-priority`, see laneOf): one producer request, already validated and normalised. */
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

/** Data of a batch job (queue `batch-<provider>` or `batch-<provider>-priority`, see laneOf): the batch itself lives in its record. */
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

/**
 * The lane of a request of this priority: `high` has queues and slots of its own (the priority
 * lane), so a campaign's batches waiting for the allowance never hold the slot a single send
 * needs; `normal` and `low` (and jobs from before priorities) share the bulk lane, ordered there by
 * jobPriority. Every queue a request's jobs go to (its send job, its batches, their failover
 * successors) is of this lane.
 */
export function laneOf(priority: RequestPriority | undefined): Lane {
  return priority === 'high' ? 'priority' : 'bulk';
}

/** What a batch job returns: its final state (the record holds the details). */
export interface BatchJobResult {
  batchId: string;
  state: string;
}
