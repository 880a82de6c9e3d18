import { Option, type Command } from 'commander';
import { LEDGER_FIELDS, readLedger, type LedgerEntry } from '../../queue/ledger.js';
import { action, withQueueContext, writeLine } from '../shared.js';

const CSV_COLUMNS = ['entryId', ...LEDGER_FIELDS] as const;

/** One CSV field: quoted when it holds a comma, quote or line break; a leading formula character is neutralised. */
function csvField(value: string | number | boolean | readonly string[] | undefined): string {
  let text = Array.isArray(value) ? value.join(' ') : value === undefined ? '' : String(value);
  if (/^[=+\-@]/.test(text) && Number.isNaN(Number(text))) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function ledgerCsvLine(entry: LedgerEntry): string {
  return CSV_COLUMNS.map((column) => csvField(entry[column])).join(',');
}

function parseDate(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new Error(`${name}: not an ISO 8601 date or time: "${value}"`);
  return date;
}

/** `smsq ledger`: streams the ledger (one line per provider request) to stdout. */
export function registerLedgerCommand(program: Command): void {
  program
    .command('ledger')
    .description('Export the ledger: one line per provider request (credits, provider IDs), oldest first')
    .option('--since <iso>', 'from this time (ISO 8601, e.g. 2025-01-01 or 2025-01-01T09:00:00Z)')
    .option('--until <iso>', 'up to this time (ISO 8601)')
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'jsonl']).default('csv'))
    .action(
      action(async (opts: { since?: string; until?: string; format: 'csv' | 'jsonl' }) => {
        const since = parseDate('--since', opts.since);
        const until = parseDate('--until', opts.until);
        await withQueueContext(async ({ context }) => {
          if (opts.format === 'csv') await writeLine(CSV_COLUMNS.join(','));
          for await (const entry of readLedger(context.redis, context.keys.ledger, { since, until })) {
            await writeLine(opts.format === 'csv' ? ledgerCsvLine(entry) : JSON.stringify(entry));
          }
        });
      }),
    );
}
