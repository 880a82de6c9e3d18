import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onTeardown } from './teardown.js';
import { waitFor } from './wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
  /** Resolves once the output contains `text`; rejects when the process exits first or after `timeoutMs`. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
}

/**
 * Runs `workers/worker.ts` as a real process (node with the tsx loader: one process, so a signal
 * reaches the worker itself, not a wrapper). `env` is added to this process's environment. The
 * teardown registry kills it (SIGKILL) if it still runs when the test ends.
 */
export function spawnWorker(env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/worker.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  onTeardown('worker process', async () => {
    await kill('SIGKILL');
  });
  return {
    child,
    output: () => out,
    exited,
    kill,
    async waitForOutput(text, timeoutMs = 20_000) {
      const exitedEarly = new Error(`worker exited before printing ${JSON.stringify(text)}`);
      await waitFor(
        () => {
          if (out.includes(text)) return true;
          if (child.exitCode !== null || child.signalCode !== null) throw exitedEarly;
          return false;
        },
        { timeoutMs, what: `worker printing ${JSON.stringify(text)}` },
      ).catch((err: Error) => {
        throw new Error(`${err.message}: ${out}`, { cause: err });
      });
    },
  };
}
