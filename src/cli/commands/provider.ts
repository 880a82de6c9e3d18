import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { providerCliCommands, providerModule } from '../../providers/index.js';
import { action, commandLogger } from '../shared.js';

/**
 * Every provider's own commands, as `smsq <provider> <words…>` (e.g. `smsq ovh callback set`):
 * the provider folders declare them (their module's `cliCommands`), this only wires them in.
 */
export function registerProviderCommands(program: Command): void {
  const groups = new Map<string, Command>();
  const subgroups = new Map<string, Command>();
  for (const { provider, command } of providerCliCommands()) {
    let group = groups.get(provider);
    if (!group) {
      group = program
        .command(provider)
        .description(`${providerModule(provider).description}: account settings`);
      groups.set(provider, group);
    }
    let parent = group;
    const words = [...command.name];
    const leaf = words.pop()!;
    for (const [i, word] of words.entries()) {
      const key = `${provider} ${words.slice(0, i + 1).join(' ')}`;
      let sub = subgroups.get(key);
      if (!sub) {
        sub = parent.command(word);
        subgroups.set(key, sub);
      }
      parent = sub;
    }
    const cmd = parent.command(leaf).description(command.description);
    for (const arg of command.args) cmd.argument(arg.name, arg.description);
    cmd.action(
      action(async (...args: unknown[]) => {
        const config = loadConfig();
        const given = args.slice(0, command.args.length).map(String);
        await command.run(given, {
          config: config.providers[provider],
          logger: commandLogger(config),
          timeoutMs: config.providerTimeoutMs,
          print: (line) => console.log(line),
        });
      }),
    );
  }
}
