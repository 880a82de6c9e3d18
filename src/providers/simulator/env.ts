import { z } from 'zod';
import { emptyAsUndefined, int } from '../../env-fields.js';
import type { ProviderEnvResult } from '../module.js';

/** The simulator's env keys; merged into the one schema of src/config.ts. */
export const simulatorEnvShape = {
  /** Simulated latency per provider request, in ms. @defaultValue 50 */
  SIMULATOR_LATENCY_MS: z.preprocess(emptyAsUndefined, int(0).default(50)),
  /** Fraction (0..1) of simulated requests that fail with a transient error. @defaultValue 0 */
  SIMULATOR_FAILURE_RATE: z.preprocess(emptyAsUndefined, z.coerce.number().min(0).max(1).default(0)),
  /** Simulated requests per second. @defaultValue 1000 */
  SIMULATOR_RATE_PER_S: z.preprocess(emptyAsUndefined, int(1).default(1_000)),
};

export type SimulatorEnv = z.output<z.ZodObject<typeof simulatorEnvShape>>;

export interface SimulatorConfig {
  latencyMs: number;
  failureRate: number;
  ratePerSecond: number;
}

/** The simulator needs no account: it is always configured. */
export function simulatorConfigFromEnv(e: SimulatorEnv): ProviderEnvResult<SimulatorConfig> {
  return {
    config: {
      latencyMs: e.SIMULATOR_LATENCY_MS,
      failureRate: e.SIMULATOR_FAILURE_RATE,
      ratePerSecond: e.SIMULATOR_RATE_PER_S,
    },
    problems: [],
  };
}
