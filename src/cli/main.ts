/**
 * `smsq`: the command line. Each command group lives in `./commands/<group>.ts` and exports a
 * `register…(program)` function; this file only builds the program and runs it.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { registerLedgerCommand } from './commands/ledger.js';
import { registerResumeCommand } from './commands/resume.js';
import { registerSendCommands } from './commands/send.js';
import { registerServiceCommands } from './commands/service.js';
import { registerSuppressCommands } from './commands/suppress.js';
import { describeProviders } from '../providers/index.js';
import { failureMessage } from './shared.js';
import { registerRecipientsCommand } from './commands/recipients.js';
import { registerProviderCommands } from './commands/provider.js';
// ── Command groups of the campaigns work (src/campaigns): `smsq campaign …`, `smsq import …`. ──
import { registerCampaignCommand } from './commands/campaign.js';
import { registerImportCommand } from './commands/import.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('smsq')
    .description(
      `Bulk SMS from a Redis queue. Providers: ${describeProviders()}. Configuration: environment (see .env.example).`,
    )
    .version(version)
    .showHelpAfterError('(add --help for usage)')
    // Commander errors become exit codes here instead of process.exit (set before the subcommands inherit it).
    .exitOverride();
  registerServiceCommands(program);
  registerSendCommands(program);
  registerResumeCommand(program);
  registerLedgerCommand(program);
  registerSuppressCommands(program);
  registerRecipientsCommand(program);
  registerProviderCommands(program);
  // ── Campaigns (owned by the campaigns work) ──
  registerCampaignCommand(program);
  registerImportCommand(program);
  return program;
}

try {
  const program = buildProgram();
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander already printed its one-line message (or the help).
    process.exitCode = err.exitCode;
  } else {
    console.error(failureMessage(err));
    process.exitCode = 1;
  }
}
