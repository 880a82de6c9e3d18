import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PROVIDER_ENV_KEYS } from '../../src/providers/index.js';
import { onTeardown } from './teardown.js';

/** The installed entry point, as `npx smsq` runs it. */
export const SMSQ_BIN = fileURLToPath(new URL('../../bin/smsq.js', import.meta.url));

/** The parent's environment without smsq settings, so a child sees only what a test gives it. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^(REDIS_URL|SMSQ_|PORT$|HOST$|LOG_LEVEL$|NODE_ENV$)/.test(key) || PROVIDER_ENV_KEYS.has(key))
      continue;
    env[key] = value;
  }
  return env;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawned processes still running; the teardown registry kills each when its test ends. */
const running = new Set<ChildProcess>();

/** Spawns `smsq <args>`; the teardown registry kills it (SIGKILL) if it still runs when the test ends. */
export function spawnSmsq(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [SMSQ_BIN, ...args], {
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  onTeardown(`smsq ${args.join(' ')}`, () => killChild(child));
  return child;
}

/** SIGKILLs a child unless it has exited, and resolves once it has. */
export function killChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Resolves when the child exits, with everything it printed. */
export function finished(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs `smsq <args>` to completion (killed after `timeoutMs`). */
export async function runSmsq(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<CliResult> {
  const child = spawnSmsq(args, env);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await finished(child);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for a line of the child's stdout matching `pattern` (e.g. the "listening" log line). */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let errors = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `no line matching ${pattern} within ${timeoutMs} ms; stdout: ${buffered}; stderr: ${errors}`,
        ),
      );
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find((l) => pattern.test(l));
      if (line) {
        cleanup();
        resolve(line);
      }
    };
    const onErr = (chunk: Buffer) => (errors += chunk.toString());
    const onExit = (code: number | null) => {
      cleanup();
      reject(
        new Error(
          `exited (${code}) before a line matching ${pattern}; stdout: ${buffered}; stderr: ${errors}`,
        ),
      );
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/**
 * Kills every spawned process still running (SIGKILL) and waits for them to go.
 * @deprecated the teardown registry kills each spawned process when its test ends
 */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map(killChild));
}
