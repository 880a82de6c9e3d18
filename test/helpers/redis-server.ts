import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, redisServerArgs } from '../../src/service/redis-discovery.js';

export { freePort };

export function hasRedisServerBinary(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function waitForRedis(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    client.on('error', () => undefined); // reported through connect() below
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch (err) {
      lastError = err;
    } finally {
      client.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Redis at ${url} did not answer within ${timeoutMs} ms`, { cause: lastError });
}

export interface PrivateRedis {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGTERM, so an AOF is flushed); `start()` brings it back on the same port and dir. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /**
   * Sends `signal` to the running server, e.g. SIGSTOP (it stops answering while its sockets stay
   * open, as in a network partition), SIGCONT, or SIGKILL (it dies without a word).
   */
  signal(signal: NodeJS.Signals): void;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

/**
 * Starts a private redis-server on a free port in a temporary directory. With `persistent`, it
 * writes an append-only file fsynced on every write, so a restart keeps every acknowledged write.
 */
export async function startPrivateRedis(opts: { persistent?: boolean } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'smsq-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const args = redisServerArgs({ port, dir, persistent: opts.persistent });
  const start = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitForRedis(url);
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  };
  await start();
  return {
    url,
    port,
    dir,
    start,
    stop,
    signal: (signal) => {
      child?.kill(signal);
    },
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
