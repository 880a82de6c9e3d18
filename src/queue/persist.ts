import type { Logger } from '../logger.js';

/** Retries of a write that must land start at this delay (ms), doubling up to PERSIST_MAX_DELAY_MS. */
const PERSIST_FIRST_DELAY_MS = 100;
const PERSIST_MAX_DELAY_MS = 2_000;
/** After the first failure, one log line every this many failed tries. */
const LOG_EVERY = 10;

/**
 * Runs `write` until it succeeds. For what we learnt from a provider (a receipt, an outcome):
 * Redis refusing a write (OOM under `noeviction`, READONLY after a failover, a lost connection)
 * must delay the record, never drop it or turn it into a provider error. Only the process ending
 * stops it; the batch then stays `sending` and is reconciled by the next run.
 */
export async function persistUntilWritten<T>(
  write: () => Promise<T>,
  opts: {
    log: Logger;
    /** What is being written, for the log (never a number or a text). */
    what: string;
    detail?: Record<string, unknown>;
    /** Called once, after the first failure (e.g. keep the receipt somewhere else as well). */
    onFirstFailure?: () => Promise<unknown>;
  },
): Promise<T> {
  let delay = PERSIST_FIRST_DELAY_MS;
  for (let failures = 0; ; failures += 1) {
    try {
      const result = await write();
      if (failures > 0)
        opts.log.warn({ ...opts.detail, failures }, `Wrote the ${opts.what} after Redis refused it`);
      return result;
    } catch (err) {
      if (failures % LOG_EVERY === 0) {
        opts.log.error(
          { err, ...opts.detail, failures: failures + 1 },
          `Redis refused the ${opts.what}; keeping it and retrying until it is written`,
        );
      }
      if (failures === 0 && opts.onFirstFailure) await opts.onFirstFailure().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, PERSIST_MAX_DELAY_MS);
    }
  }
}
