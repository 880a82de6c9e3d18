import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, redisServerArgs } from '../../src/service/redis-discovery.js';
import { waitFor } from './wait.js';

export { freePort };

/** A free port whose cluster bus port (port + 10000) is free too and below 65536. */
async function freeClusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10_000 <= 65_535 && (await canListen(port + 10_000))) return port;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export function hasRedisServerBinary(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function waitForRedis(url: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    async () => {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
      });
      client.on('error', () => undefined); // reported through connect() below
      try {
        await client.connect();
        return (await client.ping()) === 'PONG';
      } finally {
        client.disconnect();
      }
    },
    { timeoutMs, intervalMs: 50, retryErrors: true, what: `Redis at ${url} answering` },
  );
}

/** How a private Redis persists: AOF fsynced on every write, once a second, or no AOF (nor RDB). */
export type AppendFsyncMode = 'always' | 'everysec' | 'off';

export interface PrivateRedisOptions {
  /** Same as `appendfsync: 'always'` (kept for existing callers). */
  persistent?: boolean;
  /** Persistence mode (default: `always` when `persistent`, else `off`). */
  appendfsync?: AppendFsyncMode;
  /** More redis-server arguments, e.g. `['--replicaof', '127.0.0.1', '6379']`. */
  extraArgs?: string[];
  /** A cluster node: its bus port (port + 10000) must be free too (redis-server exits otherwise). */
  clusterBus?: boolean;
}

export interface PrivateRedis {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGTERM, so an AOF is flushed); `start()` brings it back on the same port and dir. */
  stop(): Promise<void>;
  /**
   * Kills the server with `signal` (default SIGKILL: no flush, no shutdown save) and resolves once
   * it exited; `start()` brings it back on the same port and dir, loading what reached the disk.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Pauses (SIGSTOP) or resumes (SIGCONT) the server process, e.g. a replica that stops acknowledging. */
  pause(): void;
  resume(): void;
  start(): Promise<void>;
  /**
   * Sends `signal` to the running server, e.g. SIGSTOP (it stops answering while its sockets stay
   * open, as in a network partition), SIGCONT, or SIGKILL (it dies without a word).
   */
  signal(signal: NodeJS.Signals): void;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

function persistenceArgs(opts: PrivateRedisOptions, port: number, dir: string): string[] {
  const mode = opts.appendfsync ?? (opts.persistent ? 'always' : 'off');
  const args = redisServerArgs({ port, dir, persistent: mode !== 'off' });
  // redis-server applies its arguments in order: a later --appendfsync overrides the one above.
  if (mode === 'everysec') args.push('--appendfsync', 'everysec');
  return [...args, ...(opts.extraArgs ?? [])];
}

/**
 * Starts a private redis-server on a free port in a temporary directory. With `persistent` (or
 * `appendfsync: 'always'`), it writes an append-only file fsynced on every write, so a restart keeps
 * every acknowledged write; `everysec` fsyncs once a second; `off` keeps nothing across a restart.
 */
export async function startPrivateRedis(opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'smsq-redis-'));
  let port = 0;
  let args: string[] = [];
  let child: ChildProcess | undefined;
  const start = async () => {
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    child = proc;
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code, signal) =>
        reject(new Error(`redis-server on port ${port} exited (${signal ?? code}) before answering`)),
      ),
    );
    exited.catch(() => undefined); // only raced below, while it starts
    await Promise.race([waitForRedis(`redis://127.0.0.1:${port}`), exited]);
  };
  // A free port can be taken between the probe and redis-server's bind (the suite starts many
  // servers and clients at once); the first start moves to another port when that happens.
  for (let attempt = 1; ; attempt++) {
    port = opts.clusterBus ? await freeClusterPort() : await freePort();
    args = persistenceArgs(opts, port, dir);
    try {
      await start();
      break;
    } catch (err) {
      child?.kill('SIGKILL');
      if (attempt >= 5) throw err;
    }
  }
  const url = `redis://127.0.0.1:${port}`;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGCONT'); // a paused server must run to act on SIGTERM
      proc.kill(signal);
    });
  };
  return {
    url,
    port,
    dir,
    start,
    stop: () => kill('SIGTERM'),
    kill,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    signal: (signal) => {
      child?.kill(signal);
    },
    destroy: async () => {
      await kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
