import type { Logger } from '../logger.js';

/** One thing to close on shutdown. */
export interface ShutdownStep {
  name: string;
  /** Stops taking work and lets work in flight finish (a step applies its own grace deadline). */
  close(): Promise<void>;
  /** Aborts work in flight now (second signal). */
  abort?(): void;
}

/**
 * Two-stage signals: the first SIGTERM/SIGINT closes every step, in reverse order of creation and
 * each in its own try/catch, letting active work finish; a second signal aborts work in flight.
 * Never calls process.exit: once everything is closed the event loop drains and the process ends.
 */
export function installShutdown(
  steps: readonly ShutdownStep[],
  opts: { logger: Logger },
): {
  shutdown(reason: string): Promise<void>;
} {
  const log = opts.logger.child({ module: 'lifecycle' });
  let running: Promise<void> | undefined;

  const shutdown = (reason: string): Promise<void> => {
    if (running) {
      log.warn({ reason }, 'Second signal: aborting work in flight');
      for (const step of steps) step.abort?.();
      return running;
    }
    log.info({ reason }, 'Shutting down: no new jobs; active batches may finish');
    running = (async () => {
      for (const step of [...steps].reverse()) {
        try {
          await step.close();
        } catch (err) {
          process.exitCode = 1;
          log.error({ err, step: step.name }, 'Close step failed');
        }
      }
      log.info('Shutdown complete');
    })();
    return running;
  };

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      void shutdown(signal);
    });
  }
  return { shutdown };
}
