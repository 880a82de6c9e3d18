import { createHash } from 'node:crypto';
import type { SimulatorConfig } from './env.js';
import {
  validityHorizonMs,
  type DeliveryReportSource,
  type ProviderDeliveryReport,
} from '../delivery-types.js';

/** The simulator's code for an undelivered recipient (it has no operator to quote). */
export const SIMULATED_UNDELIVERED_CODE = 'sim';

/** A fraction in [0, 1) fixed by the batch and the recipient, so a re-poll reports the same. */
function draw(batchId: string, index: number): number {
  return createHash('sha1').update(`${batchId}:${index}`).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * Simulated delivery reports: `SIMULATOR_DLR_DELAY_MS` after the send, every pending recipient is
 * reported, `SIMULATOR_DELIVERED_RATE` of them delivered and the others undelivered. The first poll
 * is at that delay, so `npm start` shows a request's whole life cycle within seconds.
 */
export function createSimulatorDeliveryReports(
  cfg: Pick<SimulatorConfig, 'deliveredRate' | 'dlrDelayMs'>,
  opts: { unitMs: number },
): DeliveryReportSource {
  return {
    provider: 'simulator',
    horizonMs: validityHorizonMs(2_880, opts.unitMs),
    horizonStatus: 'expired',
    firstPollMs: cfg.dlrDelayMs,
    poll(ctx) {
      const at = ctx.sentAt + cfg.dlrDelayMs;
      if (Date.now() < at) return Promise.resolve([]);
      const reports: ProviderDeliveryReport[] = [...ctx.pending].map((index) =>
        draw(ctx.batch.id, index) < cfg.deliveredRate
          ? { index, status: 'delivered', at }
          : { index, status: 'undelivered', at, code: SIMULATED_UNDELIVERED_CODE },
      );
      return Promise.resolve(reports);
    },
    close: () => Promise.resolve(),
  };
}
