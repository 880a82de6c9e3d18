import { descomAdapter } from './descom.js';
import { ovhAdapter } from './ovh.js';
import { simulatorAdapter } from './simulator.js';
import type { ConformanceAdapter } from './types.js';

/**
 * The conformance adapter of each provider of the registry, by id. A new provider adds its own
 * here (its loopback fake, or in-process); the suite fails for a registry id without one.
 */
export const CONFORMANCE_ADAPTERS: Readonly<Record<string, ConformanceAdapter>> = {
  descom: descomAdapter,
  ovh: ovhAdapter,
  simulator: simulatorAdapter,
};
