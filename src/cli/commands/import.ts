import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { ProviderId } from '../../message/types.js';
import { PROVIDER_IDS } from '../../providers/index.js';
import { action, parseInteger, parseProvider, writeLine } from '../shared.js';
import { withCampaigns } from './campaign.js';

interface ImportOptions {
  text: string;
  phoneColumn: string;
  delimiter?: ',' | ';';
  provider?: ProviderId;
  sender?: string;
  expiresAfter?: string;
  maxCredits?: number;
  wait?: boolean;
  timeout: number;
}

function parseDelimiter(value: string): ',' | ';' {
  if (value !== ',' && value !== ';') throw new InvalidArgumentError('expected , or ;');
  return value;
}

/**
 * `smsq import recipients.csv --text "Hola {{name}}"`: a one-off run of a CSV file through the
 * campaign pipeline (streamed, send requests of ≤ 1,000 recipients, never enqueued twice). The run
 * is processed by the campaign workers of `smsq start` / `smsq worker`; this prints its run id,
 * and with --wait its result.
 */
export function registerImportCommand(program: Command): void {
  program
    .command('import')
    .description('Send a CSV file: one SMS per row, {{column}} placeholders filled from the row')
    .argument(
      '<file>',
      'CSV file with a header line; read by the campaign workers (same machine or shared path)',
    )
    .requiredOption('--text <text>', 'message text, e.g. "Hola {{name}}"')
    .option('--phone-column <name>', 'column holding the numbers', 'phone')
    .option(
      '--delimiter <char>',
      'field delimiter, , or ; (default: detected from the header)',
      parseDelimiter,
    )
    .option('--provider <id>', `provider: ${PROVIDER_IDS.join(', ')}`, parseProvider)
    .option('--sender <sender>', 'sender id')
    .option(
      '--expires-after <duration>',
      'ISO 8601 duration (e.g. PT4H): messages not sent by then are dropped, counted expired',
    )
    .option(
      '--max-credits <n>',
      'credit budget: stop enqueuing once the estimate would exceed it',
      parseInteger(1),
    )
    .option('--wait', 'wait for the run to finish and print its result')
    .option('--timeout <seconds>', 'with --wait: give up after this long', parseInteger(1), 3600)
    .action(
      action(async (file: string, opts: ImportOptions) => {
        await withCampaigns(async (campaigns) => {
          const { runId } = await campaigns.startImport({
            text: opts.text,
            recipients: {
              csv: resolve(file),
              phoneColumn: opts.phoneColumn,
              ...(opts.delimiter ? { delimiter: opts.delimiter } : {}),
            },
            ...(opts.provider ? { provider: opts.provider } : {}),
            ...(opts.sender ? { sender: opts.sender } : {}),
            ...(opts.expiresAfter ? { expiresAfter: opts.expiresAfter } : {}),
            ...(opts.maxCredits ? { maxCredits: opts.maxCredits } : {}),
          });
          if (!opts.wait) return writeLine(JSON.stringify({ runId }));
          process.stderr.write(`run ${runId} queued; waiting for it to finish\n`);
          const run = await campaigns.waitForRun(runId, { timeoutMs: opts.timeout * 1000 });
          await writeLine(JSON.stringify(run));
          if (run.state === 'failed') throw new Error(`run ${runId} failed: ${run.error ?? 'unknown error'}`);
        });
      }),
    );
}
