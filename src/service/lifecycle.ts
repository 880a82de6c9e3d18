import type { Logger } from '../logger.js';

/** One thing to close on shutdown. */
export interface ShutdownStep {
  name: string;
  /**
   * Stops taking work and lets work in flight finish. `abortAt` (epoch ms) is when the grace
   * period of the first signal ends: a step that waits for work in flight aborts it then, so
   * steps closed later in the sequence are not left less time than the grace period promised.
   */
  close(abortAt?: number): Promise<void>;
  /** Aborts work in flight now (second signal). */
  abort?(): void;
}

export interface ShutdownOptions {
  logger: Logger;
  /**
   * Grace period of the first signal, in ms (SMSQ_SHUTDOWN_TIMEOUT_MS): how long steps may let work
   * in flight finish before they abort it.
   */
  graceMs: number;
  /**
   * What the first signal's shutdown may take beyond `graceMs`, in ms, before the process is ended
   * anyway: time for aborted provider calls to record their outcome and for connections to close.
   * @defaultValue 2000
   */
  marginMs?: number;
  /**
   * How long a second signal lets the aborted work record its outcome before it ends the process, in ms.
   * @defaultValue 500
   */
  abortSettleMs?: number;
  /**
   * Whether SIGTERM/SIGINT start the shutdown. An embedding program or a test that owns the
   * process passes `false` and calls `shutdown()` itself; no listener is left on `process`.
   * @defaultValue true
   */
  signals?: boolean;
}

/** Exit code of a process whose shutdown was forced or failed. */
const FORCED_EXIT_CODE = 1;

/**
 * Ends the process now. Everywhere else smsq sets `process.exitCode` and lets the event loop
 * drain; this is the one place it cannot: a signal's shutdown has run out of time, and what keeps
 * the event loop alive is exactly what would not close — ioredis reconnect timers retrying a Redis
 * that is gone, BullMQ's `worker.close()` awaiting a QUIT queued on a connection that never comes
 * back (workers wait through Redis restarts, `maxRetriesPerRequest: null`), or a frozen Redis that
 * keeps its sockets open and never answers. An operator's second signal, or a supervisor's
 * SIGTERM with a deadline, means "stop now": waiting on Redis would turn a stop into a hang only
 * SIGKILL ends. Forcing loses nothing that SIGKILL would not: work not yet recorded is found by the
 * stalled-job check and reconciled (a batch left `sending` is looked up, or recorded `unknown`).
 * Synchronous 'exit' listeners still run (the private redis-server of `smsq start` is killed in one).
 */
function forceExit(code: number): void {
  process.exitCode = code;
  // eslint-disable-next-line no-restricted-properties -- the one forced exit; see above.
  process.exit(code);
}

/**
 * Two-stage signals. The first SIGTERM/SIGINT closes every step, in reverse order of creation and
 * each in its own try/catch, letting active work finish for `graceMs`; when everything closed, the
 * event loop drains and the process ends by itself. Whatever Redis does, the process ends within
 * `graceMs + marginMs` of the first signal (exit code 1 when forced), and within `abortSettleMs`
 * of a second signal, which aborts work in flight (exit code 1).
 *
 * `shutdown()` called directly (an embedding program, a test) closes the same way but never ends
 * the process: its caller owns it.
 */
export function installShutdown(
  steps: readonly ShutdownStep[],
  opts: ShutdownOptions,
): {
  shutdown(reason: string): Promise<void>;
} {
  const log = opts.logger.child({ module: 'lifecycle' });
  const marginMs = opts.marginMs ?? 2_000;
  const abortSettleMs = opts.abortSettleMs ?? 500;
  let running: Promise<void> | undefined;
  /** The step being closed, for the log of a shutdown that ran out of time. */
  let current: string | undefined;
  let complete = false;

  const shutdown = (reason: string): Promise<void> => {
    if (running) {
      log.warn({ reason }, 'Second signal: aborting work in flight');
      for (const step of steps) step.abort?.();
      return running;
    }
    log.info({ reason }, 'Shutting down: no new jobs; active batches may finish');
    const abortAt = Date.now() + opts.graceMs;
    running = (async () => {
      for (const step of [...steps].reverse()) {
        current = step.name;
        try {
          await step.close(abortAt);
        } catch (err) {
          process.exitCode = FORCED_EXIT_CODE;
          log.error({ err, step: step.name }, 'Close step failed');
        }
      }
      current = undefined;
      complete = true;
      log.info('Shutdown complete');
    })();
    return running;
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      const deadline = setTimeout(() => {
        if (complete) {
          // Every step closed, yet a handle keeps the process alive: end it with the code it has.
          log.warn({ marginMs }, 'Shutdown complete but the process did not end; exiting now');
          forceExit(typeof process.exitCode === 'number' ? process.exitCode : 0);
          return;
        }
        log.error(
          { step: current, graceMs: opts.graceMs, marginMs },
          'Shutdown did not finish in time (is Redis reachable?); exiting now',
        );
        forceExit(FORCED_EXIT_CODE);
      }, opts.graceMs + marginMs);
      // Only a shutdown that is stuck should wait for this timer.
      deadline.unref();
      void shutdown(signal);
      return;
    }
    // A second signal forces: abort, give the aborted calls a moment to record their outcome
    // (Redis permitting), then end the process whether or not every step closed.
    void shutdown(signal);
    const settled = setTimeout(() => {
      log.error({ step: current }, 'Second signal: exiting before shutdown finished');
      forceExit(FORCED_EXIT_CODE);
    }, abortSettleMs);
    void running?.finally(() => {
      clearTimeout(settled);
      forceExit(FORCED_EXIT_CODE);
    });
  };

  if (opts.signals !== false) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, onSignal);
  }
  return { shutdown };
}
