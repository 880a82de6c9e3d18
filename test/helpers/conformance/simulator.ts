import { z } from 'zod';
import { createLogger } from '../../../src/logger.js';
import { simulatorModule } from '../../../src/providers/simulator/module.js';
import {
  createSimulatorProvider,
  type SimulatedFault,
  type SimulatorControls,
} from '../../../src/providers/simulator/provider.js';
import type { ConformanceAdapter, Fault } from './types.js';
import { recipientsOf } from './types.js';

export const simulatorAdapter: ConformanceAdapter = {
  lookup: false,
  start({ timeoutMs }) {
    const logger = createLogger('silent');
    const controls: SimulatorControls = { faults: [], sent: [] };
    const parsed = z.object(simulatorModule.envShape).parse({ SIMULATOR_LATENCY_MS: '0' });
    const { config } = simulatorModule.fromEnv(parsed);
    if (!config) throw new Error('simulator not configured');
    // In-process, with its controls (the registry's `create` builds it without them).
    const build = (overrides: Partial<typeof config> = {}) =>
      createSimulatorProvider({ ...config, ...overrides }, { logger, timeoutMs, controls });
    const provider = build();
    const next =
      (fault: SimulatedFault): Fault =>
      () =>
        void controls.faults.push(fault);
    const faults: Record<string, Fault> = {
      accepted: () => {},
      'failure rate': () => ({ provider: build({ failureRate: 1 }) }),
      'never-left': () => ({ provider: build({ latencyMs: 60_000 }), signal: AbortSignal.timeout(20) }),
      unavailable: next({ fault: 'unavailable' }),
      'rate-limited': next({ fault: 'rate-limited' }),
      'no credit': () => void (controls.credits = 0),
      rejected: next({ fault: 'rejected' }),
      'answer lost': next({ fault: 'answer lost' }),
      'no answer': next({ fault: 'no answer' }),
    };
    return Promise.resolve({
      provider,
      delivered: () => controls.sent.flatMap(recipientsOf),
      setCredits: (credits) => void (controls.credits = credits),
      rateLimitNext: (retryAfter) => void controls.faults.push({ fault: 'rate-limited', retryAfter }),
      faults,
      unreachable: { otherwise: 'every simulated outcome is a named row' },
      dropAfterSend: 'answer lost',
      hang: 'no answer',
      close: () => provider.close(),
    });
  },
};
