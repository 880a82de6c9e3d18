import { defineProviderModule } from '../module.js';
import { ovhCallbackSet } from './cli.js';
import { ovhDeliveryRoute } from './delivery-route.js';
import { OVH_DECISIONS } from './decisions.js';
import { ovhConfigFromEnv, ovhEnvShape } from './env.js';

/** OVHcloud SMS, as the registry lists it. */
export const ovhModule = defineProviderModule({
  id: 'ovh',
  description: 'OVHcloud SMS, through the official ovh client',
  envShape: ovhEnvShape,
  needs: 'OVH_APP_KEY, OVH_APP_SECRET and OVH_CONSUMER_KEY',
  // Lookups, credit checks and probes count against OVH's allowance as much as sends do.
  decisions: OVH_DECISIONS,
  redactPaths: ['appSecret', 'consumerKey', '*.appSecret', '*.consumerKey'],
  fromEnv: ovhConfigFromEnv,
  async create(config, { logger, timeoutMs, meter }) {
    const { createOvhProvider } = await import('./provider.js');
    return createOvhProvider(config, { timeoutMs, logger, meter });
  },
  // Polled by tag and final code, and pushed to the route below once `smsq ovh callback set` ran.
  async deliveryReports(config, deps) {
    const { createOvhDeliveryReports } = await import('./delivery-reports.js');
    return createOvhDeliveryReports(config, deps);
  },
  httpRoutes: (config) => [ovhDeliveryRoute(config)],
  cliCommands: [ovhCallbackSet],
});
