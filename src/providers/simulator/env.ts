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
  /** Fraction (0..1) of simulated recipients reported delivered; the others are reported undelivered. @defaultValue 0.97 */
  SIMULATOR_DELIVERED_RATE: z.preprocess(emptyAsUndefined, z.coerce.number().min(0).max(1).default(0.97)),
  /** Time from a simulated send to its delivery reports, in ms. @defaultValue 2000 */
  SIMULATOR_DLR_DELAY_MS: z.preprocess(emptyAsUndefined, int(0).default(2_000)),
};

export type SimulatorEnv = z.output<z.ZodObject<typeof simulatorEnvShape>>;

export interface SimulatorConfig {
  latencyMs: number;
  failureRate: number;
  ratePerSecond: number;
  /** Fraction of recipients reported delivered (`SIMULATOR_DELIVERED_RATE`). */
  deliveredRate: number;
  /** Send → report delay, in ms (`SIMULATOR_DLR_DELAY_MS`). */
  dlrDelayMs: number;
}

/** The simulator needs no account: it is always configured. */
export function simulatorConfigFromEnv(e: SimulatorEnv): ProviderEnvResult<SimulatorConfig> {
  return {
    config: {
      latencyMs: e.SIMULATOR_LATENCY_MS,
      failureRate: e.SIMULATOR_FAILURE_RATE,
      ratePerSecond: e.SIMULATOR_RATE_PER_S,
      deliveredRate: e.SIMULATOR_DELIVERED_RATE,
      dlrDelayMs: e.SIMULATOR_DLR_DELAY_MS,
    },
    problems: [],
  };
}
