import { resolve } from 'node:path';
import type { Command } from 'commander';
import { importSuppressions } from '../../campaigns/suppression-import.js';
import { normalizeNumber } from '../../message/recipients.js';
import type { QueueContext } from '../../queue/context.js';
import { action, withQueueContext, writeLine } from '../shared.js';

/**
 * Runs `fn` on each number given on the command line that reads as a phone number, and prints one
 * JSON line per number: `fn`'s fields, or why the number could not be read.
 */
function eachNumber(
  numbers: string[],
  fn: (e164: string, context: QueueContext) => Promise<Record<string, unknown>>,
): Promise<void> {
  return withQueueContext(async ({ context, config }) => {
    for (const number of numbers) {
      const parsed = normalizeNumber(number, config.defaultCountry);
      const line = parsed.ok
        ? { number: parsed.e164, ...(await fn(parsed.e164, context)) }
        : { number, invalid: parsed.reason };
      await writeLine(JSON.stringify(line));
    }
  });
}

/** `smsq suppress add|remove|check|import`: the opt-out list. Output: JSON, one document per line. */
export function registerSuppressCommands(program: Command): void {
  const suppress = program.command('suppress').description('Manage the opt-out list (numbers never sent to)');

  suppress
    .command('add')
    .description('Add numbers to the opt-out list; prints how many were added and the unreadable ones')
    .argument('<number...>', 'numbers, E.164 or national')
    .action(
      action(async (numbers: string[]) => {
        await withQueueContext(async ({ context }) => {
          const result = await context.suppressions.add(numbers);
          await writeLine(JSON.stringify(result));
          if (result.invalid.length === numbers.length) throw new Error('no valid number given');
        });
      }),
    );

  suppress
    .command('remove')
    .description('Remove numbers from the opt-out list')
    .argument('<number...>', 'numbers, E.164 or national')
    .action(
      action((numbers: string[]) =>
        eachNumber(numbers, async (e164, context) => ({ removed: await context.suppressions.remove(e164) })),
      ),
    );

  suppress
    .command('check')
    .description('Say whether each number is on the opt-out list')
    .argument('<number...>', 'numbers, E.164 or national')
    .action(
      action((numbers: string[]) =>
        eachNumber(numbers, async (e164, context) => ({ listed: await context.suppressions.has(e164) })),
      ),
    );

  suppress
    .command('import')
    .description('Add every number of a CSV file (streamed) to the opt-out list')
    .argument('<file>', 'CSV file; its number column is --column, else phone/number/to/msisdn/mobile')
    .option('--column <name>', 'header of the number column')
    .option('--delimiter <char>', "',' or ';' (default: detected)")
    .action(
      action(async (file: string, opts: { column?: string; delimiter?: ',' | ';' }) => {
        await withQueueContext(async ({ context, config }) => {
          const result = await importSuppressions(context.suppressions, resolve(file), {
            ...opts,
            defaultCountry: config.defaultCountry,
          });
          await writeLine(JSON.stringify(result));
        });
      }),
    );
}
