/**
 * When a sent batch's delivery reports are polled. In units of `SMSQ_DLR_POLL_MS` (30 s by
 * default): 1, 2, 4, 10, 20 and 60 units after the send (30 s, 1, 2, 5, 10 and 30 min), then every
 * 120 units (hourly), until the horizon.
 */
export const POLL_STEPS_UNITS = [1, 2, 4, 10, 20, 60] as const;
const LATER_EVERY_UNITS = 120;

export { REAL_POLL_UNIT_MS, validityHorizonMs } from '../providers/delivery-types.js';

/** The time after the send (ms) of poll number `step` (0-based). */
export function pollOffsetMs(step: number, unitMs: number): number {
  const steps: readonly number[] = POLL_STEPS_UNITS;
  const last = steps[steps.length - 1] ?? 0;
  const units =
    step < steps.length ? (steps[step] ?? last) : last + (step - steps.length + 1) * LATER_EVERY_UNITS;
  return units * unitMs;
}

/**
 * The next poll after `step` for a batch sent at `sentAt`, never past its horizon: the poll at
 * the horizon is the last one (it gives the remaining pending recipients their horizon status).
 */
export function nextPollAt(step: number, sentAt: number, horizonAt: number, unitMs: number): number {
  return Math.min(sentAt + pollOffsetMs(step, unitMs), horizonAt);
}
