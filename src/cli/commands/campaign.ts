import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Command } from 'commander';
import { CampaignService } from '../../campaigns/service.js';
import type { Config } from '../../config.js';
import { configuredProviderIds } from '../../providers/index.js';
import type { QueueContext } from '../../queue/context.js';
import { action, parseInteger, withQueueContext, writeLine } from '../shared.js';

/** Runs a campaign command with a CampaignService over a producer context, closed afterwards. */
export async function withCampaigns<T>(
  run: (campaigns: CampaignService, ctx: { config: Config; context: QueueContext }) => Promise<T>,
): Promise<T> {
  return withQueueContext(async ({ config, context }) => {
    const campaigns = new CampaignService({ context, config, providers: configuredProviderIds(config) });
    try {
      return await run(campaigns, { config, context });
    } finally {
      await campaigns.close();
    }
  });
}

/** Reads a campaign JSON file; a relative `recipients.csv` is taken relative to the file. */
async function readCampaignFile(file: string): Promise<unknown> {
  let input: unknown;
  try {
    input = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`Cannot read campaign file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const recipients = (input as { recipients?: { csv?: unknown } } | null)?.recipients;
  if (recipients && typeof recipients.csv === 'string' && !isAbsolute(recipients.csv)) {
    recipients.csv = resolve(dirname(resolve(file)), recipients.csv);
  }
  return input;
}

/** `smsq campaign add|list|get|remove|run|runs`. Output: JSON, one document per line. */
export function registerCampaignCommand(program: Command): void {
  const campaign = program
    .command('campaign')
    .description('Cron-scheduled campaigns: add, list, remove, run now, see their runs');

  campaign
    .command('add')
    .description('Add a campaign, or replace the one with the same id, from a JSON file')
    .requiredOption('-f, --file <path>', 'campaign JSON: { id, cron, timezone, text, recipients, … }')
    .action(
      action(async (opts: { file: string }) => {
        const input = await readCampaignFile(opts.file);
        await withCampaigns(async (campaigns) => writeLine(JSON.stringify(await campaigns.save(input))));
      }),
    );

  campaign
    .command('list')
    .description('List campaigns with their next run, one per line')
    .action(
      action(async () => {
        await withCampaigns(async (campaigns) => {
          for (const c of await campaigns.list()) await writeLine(JSON.stringify(c));
        });
      }),
    );

  campaign
    .command('get')
    .description('Show one campaign')
    .argument('<id>', 'campaign id')
    .action(
      action(async (id: string) => {
        await withCampaigns(async (campaigns) => writeLine(JSON.stringify(await campaigns.get(id))));
      }),
    );

  campaign
    .command('remove')
    .description('Remove a campaign and its schedule (runs in flight finish)')
    .argument('<id>', 'campaign id')
    .action(
      action(async (id: string) => {
        await withCampaigns(async (campaigns) => {
          await campaigns.remove(id);
          await writeLine(JSON.stringify({ removed: id }));
        });
      }),
    );

  campaign
    .command('run')
    .description(
      'Run a campaign now and print its run id (the campaign workers of smsq start / smsq worker run it)',
    )
    .argument('<id>', 'campaign id')
    .option('--wait', 'wait for the run to finish and print its result')
    .option('--timeout <seconds>', 'with --wait: give up after this long', parseInteger(1), 3600)
    .action(
      action(async (id: string, opts: { wait?: boolean; timeout: number }) => {
        await withCampaigns(async (campaigns) => {
          const { runId } = await campaigns.runNow(id);
          if (!opts.wait) return writeLine(JSON.stringify({ runId }));
          process.stderr.write(`run ${runId} queued; waiting for it to finish\n`);
          const run = await campaigns.waitForRun(runId, { timeoutMs: opts.timeout * 1000 });
          await writeLine(JSON.stringify(run));
          if (run.state === 'failed') throw new Error(`run ${runId} failed: ${run.error ?? 'unknown error'}`);
        });
      }),
    );

  campaign
    .command('runs')
    .description("A campaign's runs, newest first, one per line; or one run with its request ids")
    .argument('<id>', 'campaign id')
    .argument('[runId]', 'one run')
    .option('--limit <n>', 'runs to list', parseInteger(1, 1_000), 20)
    .action(
      action(async (id: string, runId: string | undefined, opts: { limit: number }) => {
        await withCampaigns(async (campaigns) => {
          if (runId)
            return writeLine(
              JSON.stringify(await campaigns.getRun(runId, { campaignId: id, requestIds: true })),
            );
          for (const run of await campaigns.listRuns(id, { limit: opts.limit }))
            await writeLine(JSON.stringify(run));
        });
      }),
    );
}
