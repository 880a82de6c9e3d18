import { defineProviderModule } from '../module.js';
import { DESCOM_DECISIONS } from './decisions.js';
import { descomConfigFromEnv, descomEnvShape } from './env.js';

/** Descom SMS, as the registry lists it. */
export const descomModule = defineProviderModule({
  id: 'descom',
  description: 'Descom SMS (api.descomsms.com), over undici',
  envShape: descomEnvShape,
  needs: 'DESCOM_USER and DESCOM_PASS',
  decisions: DESCOM_DECISIONS,
  redactPaths: ['req.headers["dsms-pass"]', 'headers["DSMS-Pass"]', '*.headers["DSMS-Pass"]'],
  fromEnv: descomConfigFromEnv,
  async create(config, { logger, timeoutMs, meter }) {
    const { createDescomProvider } = await import('./provider.js');
    return createDescomProvider(config, { timeoutMs, logger, meter });
  },
  async deliveryReports(config, deps) {
    const { createDescomDeliveryReports } = await import('./delivery-reports.js');
    return createDescomDeliveryReports(config, deps);
  },
});
