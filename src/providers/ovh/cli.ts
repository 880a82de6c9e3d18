import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { action, commandLogger } from '../../cli/shared.js';
import { loadConfig } from '../../config.js';
import { setOvhCallback } from './delivery-reports.js';

/** `smsq ovh callback set <base URL>`: OVH then pushes delivery reports to smsq. */
export function registerOvhCommands(program: Command): void {
  const ovh = program.command('ovh').description('OVHcloud SMS account settings');
  const callback = ovh.command('callback').description("The account's delivery-report callback (callBack)");
  callback
    .command('set')
    .description(
      "Point the account's callBack at <base URL>/v1/providers/ovh/dlr/<OVH_DLR_TOKEN> (PUT /sms/{serviceName})",
    )
    .argument('<baseUrl>', 'public base URL of the smsq API, e.g. https://sms.example.com')
    .action(
      action(async (baseUrl: string) => {
        const config = loadConfig();
        if (!config.providers.ovh)
          throw new ConfigError('OVH is not configured (OVH_APP_KEY, OVH_APP_SECRET, OVH_CONSUMER_KEY)');
        const url = await setOvhCallback(config.providers.ovh, {
          timeoutMs: config.providerTimeoutMs,
          logger: commandLogger(config),
          baseUrl,
        });
        // The token is a secret: print where it points without it.
        console.log(`OVH callBack set to ${url.replace(/[^/]+$/, '<OVH_DLR_TOKEN>')}`);
      }),
    );
}
