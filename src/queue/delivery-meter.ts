import { abortableSleep } from '../abort.js';
import type { CallMeter } from '../providers/types.js';

/** How often a report call waiting behind sends looks again, in ms. */
const BEHIND_SENDS_RECHECK_MS = 200;

/**
 * The meter of delivery-report calls: the provider's own allowance (sends and reports share it,
 * so together they never exceed it), taken only while no send of that provider is waiting, so
 * reports use the allowance sends leave and never delay a send.
 */
export function behindSends(meter: CallMeter, sendsWaiting: () => Promise<boolean>): CallMeter {
  return async (signal) => {
    while (await sendsWaiting()) await abortableSleep(BEHIND_SENDS_RECHECK_MS, signal);
    // And at the meter itself, any send waiting there goes first.
    return meter(signal, 'background');
  };
}
