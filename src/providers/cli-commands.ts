import type { Command } from 'commander';
import { registerOvhCommands } from './ovh/cli.js';

/** Every provider's own commands (`smsq ovh …`). A provider folder adds its entry here. */
export function registerProviderCommands(program: Command): void {
  registerOvhCommands(program);
}
