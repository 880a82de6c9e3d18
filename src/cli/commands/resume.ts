import { Argument, type Command } from 'commander';
import type { ProviderId } from '../../message/types.js';
import { PROVIDER_IDS } from '../../providers/index.js';
import { ProviderControl } from '../../queue/provider-control.js';
import { action, withQueueContext, writeLine } from '../shared.js';

/** `smsq resume <provider>`: an operator lifts a provider's pause (credit topped up, credentials fixed). */
export function registerResumeCommand(program: Command): void {
  program
    .command('resume')
    .description(
      'Resume a provider paused for its account: deletes the pause flag and resumes its queues; kept jobs go on',
    )
    .addArgument(new Argument('<provider>', 'provider to resume').choices(PROVIDER_IDS))
    .action(
      action(async (provider: ProviderId) => {
        await withQueueContext(async ({ context, config, logger }) => {
          // The same two operations the workers' probe does: flag deleted, queues (both lanes) resumed.
          const control = new ProviderControl({
            redis: context.redis,
            keys: context.keys,
            queues: new Map([[provider, context.batchQueues(provider)]]),
            providers: new Map(),
            probeIntervalMs: config.probeIntervalMs,
            logger,
          });
          const reason = await control.pausedReason(provider);
          await control.resume(provider, 'operator');
          await writeLine(
            reason
              ? `Provider ${provider} resumed (paused since ${reason.at}: ${reason.code})`
              : `Provider ${provider} was not paused; its queues are running`,
          );
        });
      }),
    );
}
