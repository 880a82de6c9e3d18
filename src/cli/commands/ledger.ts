import { Option, type Command } from 'commander';
import {
  followLedger,
  LEDGER_FIELDS,
  lastLedgerId,
  readLedger,
  type LedgerEntry,
} from '../../queue/ledger.js';
import { action, withQueueContext, writeLine } from '../shared.js';

const CSV_COLUMNS = ['entryId', ...LEDGER_FIELDS] as const;

/** One CSV field: quoted when it holds a comma, quote or line break; a leading formula character is neutralised. */
export function csvField(value: string | number | boolean | readonly string[] | undefined): string {
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

/** The greatest stream id before `time`'s millisecond (`0-0` for the epoch). */
function entryIdBefore(time: Date): string {
  const ms = time.getTime();
  return ms <= 0 ? '0-0' : `${ms - 1}-18446744073709551615`;
}

/** Aborts on the first SIGINT or SIGTERM (a follower then ends cleanly, exit code 0). */
function abortOnSignal(): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    release() {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

/** `smsq ledger`: streams the ledger (one line per provider request) to stdout. */
export function registerLedgerCommand(program: Command): void {
  program
    .command('ledger')
    .description('Export the ledger: one line per provider request (credits, provider IDs), oldest first')
    .option('--since <iso>', 'from this time (ISO 8601, e.g. 2025-01-01 or 2025-01-01T09:00:00Z)')
    .option('--until <iso>', 'up to this time (ISO 8601)')
    .option(
      '--follow',
      'keep running and print each new entry as it is written, until SIGINT/SIGTERM (with --since: the entries since then first)',
    )
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'jsonl']).default('csv'))
    .action(
      action(async (opts: { since?: string; until?: string; follow?: boolean; format: 'csv' | 'jsonl' }) => {
        const since = parseDate('--since', opts.since);
        const until = parseDate('--until', opts.until);
        if (opts.follow && until) throw new Error('--follow and --until exclude each other');
        const print = (entry: LedgerEntry) =>
          writeLine(opts.format === 'csv' ? ledgerCsvLine(entry) : JSON.stringify(entry));
        await withQueueContext(async ({ context }) => {
          const { redis, keys } = context;
          if (opts.format === 'csv') await writeLine(CSV_COLUMNS.join(','));
          if (!opts.follow) {
            for await (const entry of readLedger(redis, keys.ledger, { since, until })) await print(entry);
            return;
          }
          const stop = abortOnSignal();
          try {
            // XREAD returns the entries after this id: with --since, every entry from that
            // millisecond on (the backlog first, then new ones); without, only new ones.
            const after = since ? entryIdBefore(since) : await lastLedgerId(redis, keys.ledger);
            console.error(`smsq: following the ledger after entry ${after} (Ctrl-C to stop)`);
            for await (const entry of followLedger(redis, keys.ledger, { after, signal: stop.signal }))
              await print(entry);
          } finally {
            stop.release();
          }
        });
      }),
    );
}
