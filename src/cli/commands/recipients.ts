import { Option, type Command } from 'commander';
import { NotFoundError } from '../../errors.js';
import { listRecipients, RECIPIENT_STATUSES, type RecipientItem } from '../../queue/recipients-list.js';
import { action, withQueueContext, writeLine } from '../shared.js';
import { csvField } from './ledger.js';

const CSV_COLUMNS = ['to', 'outcome', 'status', 'at', 'code', 'provider', 'providerId', 'batchId'] as const;

function csvLine(item: RecipientItem): string {
  const values = [
    item.to,
    item.outcome ?? '',
    item.delivery?.status ?? '',
    item.delivery?.at,
    item.delivery?.code,
    item.provider ?? '',
    item.providerId,
    item.batchId ?? '',
  ];
  return values.map((v) => csvField(v)).join(',');
}

/** `smsq recipients <id>`: every recipient of a request with its outcome and delivery status. */
export function registerRecipientsCommand(program: Command): void {
  program
    .command('recipients')
    .description('List the recipients of a request: outcome, delivery status, provider id (stable order)')
    .argument('<id>', 'request id')
    .addOption(
      new Option('--status <status>', 'only recipients with this outcome or delivery status').choices(
        RECIPIENT_STATUSES,
      ),
    )
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
    .action(
      action(async (id: string, opts: { status?: string; format: 'jsonl' | 'csv' }) => {
        await withQueueContext(async ({ context }) => {
          if (opts.format === 'csv') await writeLine(CSV_COLUMNS.join(','));
          let cursor: string | undefined;
          do {
            const page = await listRecipients(context.store, id, {
              limit: 1_000,
              ...(opts.status ? { status: opts.status } : {}),
              ...(cursor ? { cursor } : {}),
            });
            if (!page) throw new NotFoundError(`No request with id ${id}`);
            for (const item of page.items)
              await writeLine(opts.format === 'csv' ? csvLine(item) : JSON.stringify(item));
            cursor = page.nextCursor ?? undefined;
          } while (cursor);
        });
      }),
    );
}
