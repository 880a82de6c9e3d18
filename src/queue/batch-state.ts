/**
 * The durable state of one provider request, written before the provider call:
 * `planned → sending → sent | rejected | unknown`, plus `failed` (gave up or cancelled) and
 * `expired` (not sent before its expiresAt), and `moved` (failed over while `planned`: its
 * successors, under another provider, replaced it in its request; it never sends).
 */
export const BATCH_STATES = [
  'planned',
  'sending',
  'sent',
  'rejected',
  'unknown',
  'failed',
  'expired',
  'moved',
] as const;
export type BatchState = (typeof BATCH_STATES)[number];

export const FINAL_BATCH_STATES: ReadonlySet<BatchState> = new Set([
  'sent',
  'rejected',
  'unknown',
  'failed',
  'expired',
]);

export function isFinalBatchState(state: BatchState): boolean {
  return FINAL_BATCH_STATES.has(state);
}

/** The request-level outcome each recipient of a batch ends in, by the batch's final state. */
export const OUTCOME_OF_STATE = {
  sent: 'accepted',
  rejected: 'rejected',
  unknown: 'unknown',
  failed: 'failed',
  expired: 'expired',
} as const;
