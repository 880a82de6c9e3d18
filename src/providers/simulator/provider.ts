import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { abortableSleep } from '../../abort.js';
import { batchRecipients, type Batch, type BatchReceipt } from '../../message/types.js';
import { decide, errorFor } from '../decisions.js';
import { withDeadline } from '../transport.js';
import type { SmsProvider } from '../types.js';
import { SIMULATOR_DECISIONS } from './decisions.js';
import type { SimulatorConfig } from './env.js';

/** A fault the next simulated send plays (a row of the simulator's decision table). */
export type SimulatedFault =
  | { fault: 'unavailable' | 'no credit' | 'rejected' | 'answer lost' | 'no answer' }
  | { fault: 'rate-limited'; retryAfter?: string };

/**
 * Scripting of a simulator, for tests and demos: faults for the next sends, an account credit,
 * and the batches it accepted. Without it the simulator has unlimited credit and only the random
 * failures of SIMULATOR_FAILURE_RATE.
 */
export interface SimulatorControls {
  /** Faults for the next sends, consumed in order. */
  faults: SimulatedFault[];
  /**
   * The account's credit, when limited: a send needing more fails (`no credit`) and a probe is
   * true only with at least the waiting batch's estimate. Accepted sends consume it.
   */
  credits?: number;
  /** Every batch the simulator treated as sent (accepted, or sent and its answer lost). */
  sent: Batch[];
}

function reject(when: string, retryAfter?: string): never {
  const decision = decide(SIMULATOR_DECISIONS, [when]);
  throw errorFor(decision, `Simulator: ${decision.why}`, { ...(retryAfter ? { retryAfter } : {}) });
}

/** Resolves when `signal` aborts: a provider that never answers. */
function never(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * An in-process provider that sends nothing: configurable latency, credits of one per SMS part,
 * provider IDs, and a transient failure rate. `npm start` runs the whole pipeline on it.
 */
export function createSimulatorProvider(
  cfg: SimulatorConfig,
  deps: { logger: Logger; random?: () => number; timeoutMs?: number; controls?: SimulatorControls },
): SmsProvider {
  const random = deps.random ?? Math.random;
  const controls = deps.controls;
  deps.logger
    .child({ module: 'simulator' })
    .warn('SIMULATOR provider active: no SMS is sent to any phone; results and credits are simulated');

  function accept(batch: Batch): BatchReceipt {
    controls?.sent.push(batch);
    if (controls?.credits !== undefined) controls.credits -= batch.estimatedCredits;
    // One ID per provider request, as Descom gives one shipment ID.
    return {
      providerIds: [`sim-${randomUUID()}`],
      accepted: batchRecipients(batch),
      invalid: [],
      creditsCharged: batch.estimatedCredits,
    };
  }

  async function sendWithin(batch: Batch, bounded: AbortSignal): Promise<BatchReceipt> {
    try {
      if (cfg.latencyMs > 0) await abortableSleep(cfg.latencyMs, bounded);
    } catch {
      reject('never-left');
    }
    if (cfg.failureRate > 0 && random() < cfg.failureRate) reject('failure rate');
    const scripted = controls?.faults.shift();
    if (scripted?.fault === 'rate-limited') reject('rate-limited', scripted.retryAfter);
    if (scripted?.fault === 'no answer') {
      await never(bounded);
      reject('no answer');
    }
    if (scripted?.fault === 'answer lost') {
      accept(batch);
      reject('answer lost');
    }
    if (scripted) reject(scripted.fault);
    if (controls?.credits !== undefined && controls.credits < batch.estimatedCredits) reject('no credit');
    return accept(batch);
  }

  const provider: SmsProvider = {
    id: 'simulator',
    limits: { maxMessagesPerRequest: 50, maxRecipientsPerMessage: 100 },
    async send(batch: Batch, { signal, onWritten }): Promise<BatchReceipt> {
      // The simulated provider has the request as soon as it is made.
      onWritten?.();
      const deadline = deps.timeoutMs === undefined ? undefined : withDeadline(signal, deps.timeoutMs);
      try {
        return await sendWithin(batch, deadline?.signal ?? signal);
      } finally {
        deadline?.clear();
      }
    },
    probe: ({ neededCredits }) =>
      Promise.resolve(controls?.credits === undefined || controls.credits >= (neededCredits ?? 1)),
    close: () => Promise.resolve(),
  };
  return provider;
}
