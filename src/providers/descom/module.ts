import { defineProviderModule } from '../module.js';
import { DESCOM_DECISIONS } from './decisions.js';
import { descomConfigFromEnv, descomEnvShape } from './env.js';

/** Descom SMS, as the registry lists it. */
export const descomModule = defineProviderModule({
  id: 'descom',
  description: 'Descom SMS (api.descomsms.com), over undici',
  envShape: descomEnvShape,
  needs: 'DESCOM_USER and DESCOM_PASS',
  // Its sends are held to DESCOM_RATE_PER_S by the batch queue's limiter; its probe is rare.
  decisions: DESCOM_DECISIONS,
  metered: false,
  redactPaths: ['req.headers["dsms-pass"]', 'headers["DSMS-Pass"]', '*.headers["DSMS-Pass"]'],
  fromEnv: descomConfigFromEnv,
  async create(config, { logger, timeoutMs }) {
    const { createDescomProvider } = await import('./provider.js');
    return createDescomProvider(config, { timeoutMs, logger });
  },
  async deliveryReports(config, deps) {
    const { createDescomDeliveryReports } = await import('./delivery-reports.js');
    return createDescomDeliveryReports(config, deps);
  },
});
