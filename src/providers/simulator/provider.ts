import { randomUUID } from 'node:crypto';
import type { SimulatorConfig } from './env.js';
import { TransientError } from '../../errors.js';
import type { Logger } from 'pino';
import { batchRecipients, type Batch, type BatchReceipt } from '../../message/types.js';
import type { SmsProvider } from '../types.js';

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new TransientError('Simulated send aborted before it went out', { cause: signal.reason }));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * An in-process provider that sends nothing: configurable latency, credits of one per SMS part,
 * provider IDs, and a transient failure rate. `npm start` runs the whole pipeline on it.
 */
export function createSimulatorProvider(
  cfg: SimulatorConfig,
  deps: { logger: Logger; random?: () => number },
): SmsProvider {
  const random = deps.random ?? Math.random;
  deps.logger
    .child({ module: 'simulator' })
    .warn('SIMULATOR provider active: no SMS is sent to any phone; results and credits are simulated');
  return {
    id: 'simulator',
    limits: { maxMessagesPerRequest: 50, maxRecipientsPerMessage: 100 },
    async send(batch: Batch, { signal }): Promise<BatchReceipt> {
      await sleep(cfg.latencyMs, signal);
      if (cfg.failureRate > 0 && random() < cfg.failureRate) {
        throw new TransientError('Simulated provider failure (SIMULATOR_FAILURE_RATE)', {
          code: 'SMSQ_SIMULATED_FAILURE',
        });
      }
      // One ID per provider request, as Descom gives one shipment ID.
      return {
        providerIds: [`sim-${randomUUID()}`],
        accepted: batchRecipients(batch),
        invalid: [],
        creditsCharged: batch.estimatedCredits,
      };
    },
    probe: () => Promise.resolve(true),
    close: () => Promise.resolve(),
  };
}
