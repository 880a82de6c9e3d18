import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { ProviderId } from '../message/types.js';
import type { PushedDeliveryReport } from './delivery-types.js';

/** What a provider's own HTTP routes get from the app. */
export interface ProviderRouteDeps {
  config: Config;
  /** Queues a pushed delivery report durably (resolves once Redis holds it). */
  pushReport(provider: ProviderId, report: PushedDeliveryReport): Promise<void>;
  /** Counts a pushed report that was not queued (no final status, or not ours). */
  countIgnored(provider: ProviderId): Promise<void>;
}

/**
 * Registers every provider's own routes (outside the API-key check: each authenticates its
 * caller itself), e.g. OVH's delivery-report push. A provider folder adds its entry here.
 */
export async function registerProviderRoutes(app: FastifyInstance, deps: ProviderRouteDeps): Promise<void> {
  const { ovhDeliveryRoutes } = await import('./ovh/delivery-route.js');
  await ovhDeliveryRoutes(app, deps);
}
