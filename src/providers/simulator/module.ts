import { defineProviderModule } from '../module.js';
import { SIMULATOR_DECISIONS } from './decisions.js';
import { simulatorConfigFromEnv, simulatorEnvShape } from './env.js';

/** The in-process simulator, as the registry lists it: the provider when no other has credentials. */
export const simulatorModule = defineProviderModule({
  id: 'simulator',
  description: 'in-process simulator: sends nothing, simulates latency, credits and failures',
  envShape: simulatorEnvShape,
  fallback: true,
  decisions: SIMULATOR_DECISIONS,
  redactPaths: [],
  fromEnv: simulatorConfigFromEnv,
  async create(config, { logger, timeoutMs }) {
    const { createSimulatorProvider } = await import('./provider.js');
    return createSimulatorProvider(config, { logger, timeoutMs });
  },
  async deliveryReports(config, { unitMs }) {
    const { createSimulatorDeliveryReports } = await import('./delivery-reports.js');
    return createSimulatorDeliveryReports(config, { unitMs });
  },
});
