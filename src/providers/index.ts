import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { ProviderId } from '../message/types.js';
import { UNMETERED, type CallMeter, type SmsProvider } from './types.js';

export type { SmsProvider, ProviderLimits } from './types.js';

interface ProviderDeps {
  logger: Logger;
  /**
   * The call allowance of each provider account (every request to it first awaits its meter).
   * Default: unmetered. Descom and the simulator do not take one yet.
   */
  meterFor?: (id: ProviderId) => CallMeter;
}

/**
 * The registry: one entry per provider. Each is loaded on first use, so a process that does not
 * send through OVH never loads the OVH client. Undefined when the provider has no configuration.
 */
const factories: Record<
  ProviderId,
  (config: Config, deps: ProviderDeps) => Promise<SmsProvider | undefined>
> = {
  async descom(config, { logger }) {
    if (!config.providers.descom) return undefined;
    const { createDescomProvider } = await import('./descom/provider.js');
    return createDescomProvider(config.providers.descom, { timeoutMs: config.providerTimeoutMs, logger });
  },
  async ovh(config, { logger, meterFor }) {
    if (!config.providers.ovh) return undefined;
    const { createOvhProvider } = await import('./ovh/provider.js');
    return createOvhProvider(config.providers.ovh, {
      timeoutMs: config.providerTimeoutMs,
      logger,
      meter: meterFor?.('ovh') ?? UNMETERED,
    });
  },
  async simulator(config, { logger }) {
    const { createSimulatorProvider } = await import('./simulator/provider.js');
    return createSimulatorProvider(config.providers.simulator, { logger });
  },
};

/** Providers this process can send through: the configured ones, and the simulator. */
export function configuredProviderIds(config: Config): ProviderId[] {
  const ids: ProviderId[] = ['simulator'];
  if (config.providers.descom) ids.push('descom');
  if (config.providers.ovh) ids.push('ovh');
  return ids;
}

export async function createProvider(
  id: ProviderId,
  config: Config,
  deps: ProviderDeps,
): Promise<SmsProvider> {
  const provider = await factories[id](config, deps);
  if (!provider) throw new Error(`Provider ${id} is not configured`);
  return provider;
}

/** Every configured provider, by id. */
export async function createProviders(
  config: Config,
  deps: ProviderDeps,
): Promise<Map<ProviderId, SmsProvider>> {
  const ids = configuredProviderIds(config);
  const providers = await Promise.all(ids.map((id) => createProvider(id, config, deps)));
  return new Map(ids.map((id, i) => [id, providers[i]!] as const));
}
