import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { ProviderId } from '../message/types.js';
import type { DeliveryReportSource } from './delivery-types.js';
import { configuredProviderIds } from './index.js';
import type { CallMeter } from './types.js';

export type { DeliveryReportSource } from './delivery-types.js';

/** Dependencies of the report sources: each provider's allowance, taken behind its sends. */
export interface DeliveryReportDeps {
  logger: Logger;
  meterFor: (id: ProviderId) => CallMeter;
}

/** The registry of report sources: one per provider, in its own folder, loaded on first use. */
const factories: Record<
  ProviderId,
  (config: Config, deps: DeliveryReportDeps) => Promise<DeliveryReportSource | undefined>
> = {
  async descom(config, deps) {
    if (!config.providers.descom) return undefined;
    const { createDescomDeliveryReports } = await import('./descom/delivery-reports.js');
    return createDescomDeliveryReports(config.providers.descom, {
      timeoutMs: config.providerTimeoutMs,
      logger: deps.logger,
      meter: deps.meterFor('descom'),
      unitMs: config.dlrPollMs,
    });
  },
  async ovh(config, deps) {
    if (!config.providers.ovh) return undefined;
    const { createOvhDeliveryReports } = await import('./ovh/delivery-reports.js');
    return createOvhDeliveryReports(config.providers.ovh, {
      timeoutMs: config.providerTimeoutMs,
      logger: deps.logger,
      meter: deps.meterFor('ovh'),
      unitMs: config.dlrPollMs,
    });
  },
  async simulator(config) {
    const { createSimulatorDeliveryReports } = await import('./simulator/delivery-reports.js');
    return createSimulatorDeliveryReports(config.providers.simulator, { unitMs: config.dlrPollMs });
  },
};

/** The report source of every configured provider, by id. */
export async function createDeliveryReportSources(
  config: Config,
  deps: DeliveryReportDeps,
): Promise<Map<ProviderId, DeliveryReportSource>> {
  const sources = new Map<ProviderId, DeliveryReportSource>();
  for (const id of configuredProviderIds(config)) {
    const source = await factories[id](config, deps);
    if (source) sources.set(id, source);
  }
  return sources;
}
