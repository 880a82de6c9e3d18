import type { Command } from 'commander';
import type { ProviderId } from '../../message/types.js';
import { PROVIDER_IDS } from '../../providers/index.js';
import type { Lane } from '../../queue/names.js';
import { action, collectLane, collectProvider, parseInteger } from '../shared.js';

/**
 * `smsq start`, `smsq api`, `smsq worker`: the long-running processes. Their modules (HTTP server,
 * dashboard) load only when one of them runs, so one-shot commands start faster.
 */
export function registerServiceCommands(program: Command): void {
  program
    .command('start')
    .description(
      'Run everything in one process: HTTP API, dashboard and all workers (what `npm start` runs). ' +
        'Without REDIS_URL it uses 127.0.0.1:6379, or starts a private redis-server when one is installed.',
    )
    .action(
      action(async () => {
        const { startService } = await import('../../service/start.js');
        await startService();
      }),
    );

  program
    .command('api')
    .description('Run the HTTP API and dashboard only (production: beside `smsq worker` processes)')
    .action(
      action(async () => {
        const { startApi } = await import('../../service/start.js');
        await startApi();
      }),
    );

  program
    .command('worker')
    .description('Run the splitter and the batch workers (scale out by running more of these)')
    .option(
      '--provider <provider>',
      `run batch workers for this provider only (${PROVIDER_IDS.join(', ')}; repeatable)`,
      collectProvider,
    )
    .option(
      '--lane <lane>',
      'work this lane only (priority: `high` requests, with none of the background duties; bulk: ' +
        'everything else; repeatable; default both)',
      collectLane,
    )
    .option(
      '--http-port <port>',
      'serve /healthz, /readyz and /metrics on this port',
      parseInteger(0, 65_535),
    )
    .action(
      action(async (opts: { provider?: ProviderId[]; lane?: Lane[]; httpPort?: number }) => {
        const { startWorkerService } = await import('../../service/start.js');
        await startWorkerService({ only: opts.provider, lanes: opts.lane, httpPort: opts.httpPort });
      }),
    );
}
