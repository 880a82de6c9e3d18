import { ConfigError } from '../errors.js';

/**
 * Runs an entrypoint: a configuration error prints its message (naming each bad variable) and
 * sets exit code 1; any other start-up error prints a one-line reason and sets exit code 1.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(`smsq: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
