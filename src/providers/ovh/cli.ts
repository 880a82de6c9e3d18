import { ConfigError } from '../../errors.js';
import type { ProviderCliCommand } from '../module.js';
import { setOvhCallback } from './delivery-reports.js';
import type { OvhConfig } from './env.js';

/** `smsq ovh callback set <base URL>`: OVH then pushes delivery reports to smsq. */
export const ovhCallbackSet: ProviderCliCommand<OvhConfig> = {
  name: ['callback', 'set'],
  description:
    "Point the account's callBack at <base URL>/v1/providers/ovh/dlr/<OVH_DLR_TOKEN> (PUT /sms/{serviceName})",
  args: [{ name: '<baseUrl>', description: 'public base URL of the smsq API, e.g. https://sms.example.com' }],
  async run([baseUrl = ''], ctx) {
    const { config, logger, timeoutMs } = ctx;
    if (!config)
      throw new ConfigError('OVH is not configured (OVH_APP_KEY, OVH_APP_SECRET, OVH_CONSUMER_KEY)');
    const url = await setOvhCallback(config, { timeoutMs, logger, baseUrl });
    // The token is a secret: print where it points without it.
    ctx.print(`OVH callBack set to ${url.replace(/[^/]+$/, '<OVH_DLR_TOKEN>')}`);
  },
};
