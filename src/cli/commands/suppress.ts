import type { Command } from 'commander';
import { normalizeNumber } from '../../message/recipients.js';
import { action, withQueueContext, writeLine } from '../shared.js';

/** `smsq suppress add|remove|check`: the opt-out list. Output: JSON, one document per line. */
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
      action(async (numbers: string[]) => {
        await withQueueContext(async ({ context, config }) => {
          for (const number of numbers) {
            const parsed = normalizeNumber(number, config.defaultCountry);
            if (!parsed.ok)
              await writeLine(JSON.stringify({ number, removed: false, invalid: parsed.reason }));
            else
              await writeLine(
                JSON.stringify({
                  number: parsed.e164,
                  removed: await context.suppressions.remove(parsed.e164),
                }),
              );
          }
        });
      }),
    );

  suppress
    .command('check')
    .description('Say whether each number is on the opt-out list')
    .argument('<number...>', 'numbers, E.164 or national')
    .action(
      action(async (numbers: string[]) => {
        await withQueueContext(async ({ context, config }) => {
          for (const number of numbers) {
            const parsed = normalizeNumber(number, config.defaultCountry);
            if (!parsed.ok)
              await writeLine(JSON.stringify({ number, listed: false, invalid: parsed.reason }));
            else
              await writeLine(
                JSON.stringify({ number: parsed.e164, listed: await context.suppressions.has(parsed.e164) }),
              );
          }
        });
      }),
    );
}
