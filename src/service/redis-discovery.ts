import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { connectRedis } from '../redis.js';

/** How to get a Redis, for the message of a start that found none. */
export const HOW_TO_GET_REDIS =
  'Set REDIS_URL=redis://host:port, or install Redis (Debian/Ubuntu: apt-get install redis-server; ' +
  'macOS: brew install redis), or run one with Docker: docker run -d -p 6379:6379 redis:7';

/** A Redis URL fit for logs and messages: the password replaced by `***`. */
export function displayRedisUrl(url: string): string {
  if (/^redis-(sentinel|cluster):/.test(url)) return url.replace(/^([^:]+:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable URL)';
  }
}

/** True when a Redis at `url` answers PING within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1_000): Promise<boolean> {
  const client = connectRedis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined); // the answer is the boolean below
  const timer = setTimeout(() => client.disconnect(), timeoutMs);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

export function hasRedisServer(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore', timeout: 5_000 });
  return probe.error === undefined && probe.status === 0;
}

/** A free TCP port on loopback, chosen by the kernel. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface PrivateRedisServer {
  url: string;
  dir: string;
  /** Stops the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Arguments of a private redis-server on loopback: never evicting (BullMQ needs noeviction); with
 * `persistent`, an append-only file fsynced on every write, so a restart keeps every acknowledged write.
 */
export function redisServerArgs(opts: { port: number; dir: string; persistent?: boolean }): string[] {
  return [
    ...['--port', String(opts.port), '--bind', '127.0.0.1', '--dir', opts.dir, '--save', ''],
    ...['--maxmemory-policy', 'noeviction'],
    ...(opts.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
  ];
}

/**
 * Starts a throw-away redis-server for development: loopback only, a free port, a temporary
 * directory, no persistence. It is stopped on `stop()` and, as a last resort, when this process exits.
 */
export async function startPrivateRedisServer(logger: Logger): Promise<PrivateRedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'smsq-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  const child = spawn('redis-server', redisServerArgs({ port, dir }), { stdio: 'ignore' });
  let stopping = false;
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    process.off('exit', killOnExit);
    if (!stopping) logger.error({ code, signal }, 'The private redis-server stopped unexpectedly');
  });

  const stop = async () => {
    if (stopping) return exited;
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers(url, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, dir, stop };
}

/**
 * Finds the Redis for `smsq start`. REDIS_URL set: that one, or an error naming it. Unset: the
 * local default (127.0.0.1:6379) if it answers, else a private redis-server when one is installed,
 * else an error saying how to get Redis.
 */
export async function discoverRedis(
  config: Config,
  logger: Logger,
): Promise<{ url: string; server?: PrivateRedisServer }> {
  const log = logger.child({ module: 'redis-discovery' });
  if (config.redisUrlExplicit) {
    if (await redisAnswers(config.redisUrl, 2_000)) return { url: config.redisUrl };
    throw new Error(
      `Redis is not reachable at REDIS_URL=${displayRedisUrl(config.redisUrl)}. Start it or correct REDIS_URL.`,
    );
  }
  if (await redisAnswers(config.redisUrl)) {
    log.info(
      { redis: displayRedisUrl(config.redisUrl) },
      'REDIS_URL not set: using the Redis answering on the default address',
    );
    return { url: config.redisUrl };
  }
  if (!hasRedisServer()) {
    throw new Error(
      `No Redis: REDIS_URL is not set, nothing answers on ${displayRedisUrl(config.redisUrl)} and redis-server ` +
        `is not on the PATH. ${HOW_TO_GET_REDIS}`,
    );
  }
  const server = await startPrivateRedisServer(logger);
  log.warn(
    { redis: server.url, dir: server.dir },
    'REDIS_URL not set and nothing answers on 127.0.0.1:6379: started a PRIVATE redis-server for this process ' +
      '(temporary, not persisted, stopped on exit). Set REDIS_URL to keep your queues.',
  );
  return { url: server.url, server };
}
