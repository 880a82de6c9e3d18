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
  /** Where the splitter is: planning, or waiting for its batches. */
  step?: 'plan' | 'wait';
}

/** Data of a batch job (queue `batch-<provider>`): the batch itself lives in its record. */
export interface BatchJobData {
  batchId: string;
  requestId: string;
}

/** What a batch job returns: its final state (the record holds the details). */
export interface BatchJobResult {
  batchId: string;
  state: string;
}
