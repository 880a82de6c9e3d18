import type { Socket } from 'node:net';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { SmsqError } from './errors.js';

export class RedisUnavailableError extends SmsqError {
  constructor(cause?: unknown) {
    super('SMSQ_REDIS_UNAVAILABLE', 'Redis is not reachable', { cause });
  }
}

/**
 * Where Redis is, as the one string every part is given (`config.redisUrl`):
 * - `redis://…` or `rediss://…`: one server (`REDIS_URL`);
 * - `redis-sentinel://[user:pass@]host:port,host:port/<master>[?tls=1&db=N]`: a Sentinel set;
 * - `redis-cluster://[user:pass@]host:port,host:port[?tls=1]`: a Redis Cluster.
 * The config builds the last two from `REDIS_SENTINELS` / `REDIS_CLUSTER_NODES`, taking
 * credentials, TLS and db from `REDIS_URL` (see `redisAddress`).
 */
export type RedisAddress =
  | { kind: 'single'; url: string }
  | {
      kind: 'sentinel' | 'cluster';
      nodes: { host: string; port: number }[];
      master?: string;
      username?: string;
      password?: string;
      tls: boolean;
      db: number;
    };

const TOPOLOGY_URL =
  /^redis-(sentinel|cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?]+)(?:\/([^?]*))?(?:\?(.*))?$/;

/** `host:port,host:port` → nodes; throws naming the bad entry. */
export function parseNodeList(list: string): { host: string; port: number }[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(entry);
      if (!m || Number(m[2]) > 65_535) throw new Error(`expected host:port, got "${entry}"`);
      return { host: m[1]!, port: Number(m[2]) };
    });
}

/** Reads an address string (see RedisAddress). */
export function parseRedisAddress(address: string): RedisAddress {
  const m = TOPOLOGY_URL.exec(address);
  if (!m) return { kind: 'single', url: address };
  const params = new URLSearchParams(m[6] ?? '');
  return {
    kind: m[1] as 'sentinel' | 'cluster',
    nodes: parseNodeList(m[4]!),
    master: m[5] ? decodeURIComponent(m[5]) : undefined,
    username: m[2] ? decodeURIComponent(m[2]) : undefined,
    password: m[3] ? decodeURIComponent(m[3]) : undefined,
    tls: params.get('tls') === '1',
    db: Number(params.get('db') ?? 0),
  };
}

/**
 * The address of a Sentinel set or a Cluster, with the credentials, TLS (`rediss://`) and db of
 * `url` (REDIS_URL; its host is not used).
 */
export function redisAddress(
  kind: 'sentinel' | 'cluster',
  nodes: string,
  url: string,
  master?: string,
): string {
  const parsed = new URL(url);
  const auth = parsed.username || parsed.password ? `${parsed.username}:${parsed.password}@` : '';
  const params = new URLSearchParams();
  if (parsed.protocol === 'rediss:') params.set('tls', '1');
  const db = parsed.pathname.replace(/^\//, '');
  if (db && db !== '0') params.set('db', db);
  const query = params.size > 0 ? `?${params.toString()}` : '';
  const path = kind === 'sentinel' ? `/${encodeURIComponent(master ?? '')}` : '';
  return `redis-${kind}://${auth}${parseNodeList(nodes)
    .map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`))
    .join(',')}${path}${query}`;
}

/**
 * Makes the commands `redis` issues in one tick leave in one write to its socket: the socket is
 * corked at the first write of a tick and uncorked at the next one. On loopback under load every
 * write is a system call costing about as much as the command itself, and a tick often issues
 * several (a request's next step once a reply is read, a worker's jobs, the replies of one read).
 * Nothing else changes: commands go in the order given and ioredis reads replies in that order.
 * Applied anew at each (re)connection, whose socket is new.
 */
function coalesceWrites(redis: Redis): Redis {
  redis.on('connect', () => {
    const socket = (redis as unknown as { stream?: Socket }).stream;
    if (!socket) return;
    const write = socket.write.bind(socket);
    let corked = false;
    const uncork = () => {
      corked = false;
      socket.uncork();
    };
    socket.write = function (...args: Parameters<Socket['write']>) {
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(uncork);
      }
      return write(...args);
    } as Socket['write'];
  });
  return redis;
}

/**
 * Opens a connection to `address` with `opts` applied to every server connection. A Cluster is
 * returned typed as `Redis`: the commands smsq and BullMQ use exist on both (ioredis's Cluster
 * routes each by its first key, and every smsq key shares the prefix's hash slot).
 */
export function connectRedis(address: string, opts: RedisOptions = {}): Redis {
  const target = parseRedisAddress(address);
  if (target.kind === 'single') return coalesceWrites(new Redis(target.url, opts));
  const server: RedisOptions = {
    ...opts,
    username: target.username,
    password: target.password,
    db: target.db,
    ...(target.tls ? { tls: {} } : {}),
  };
  if (target.kind === 'sentinel') {
    return coalesceWrites(
      new Redis({ ...server, sentinels: target.nodes, name: target.master ?? 'mymaster' }),
    );
  }
  const { lazyConnect, enableOfflineQueue, enableReadyCheck, ...perNode } = server;
  const clusterOpts: ClusterOptions = {
    redisOptions: { ...perNode, db: 0 },
    lazyConnect,
    enableOfflineQueue,
    enableReadyCheck,
  };
  const cluster = new Cluster(target.nodes, clusterOpts);
  for (const node of cluster.nodes()) coalesceWrites(node);
  cluster.on('+node', (node: Redis) => coalesceWrites(node));
  return cluster as unknown as Redis;
}

/** True when `redis` is a Cluster connection (see connectRedis). */
export function isCluster(redis: Redis): boolean {
  return (redis as unknown) instanceof Cluster;
}

/**
 * A function giving the server connection that holds `key`'s hash slot now: `redis` itself, or, on a
 * Cluster, the connection to the slot's master (WAIT, INFO and CONFIG must go to the server that
 * took the writes). The slot is looked up once; its master is read from the cluster's slot map on
 * every call, so a failover is followed.
 */
export async function slotServer(redis: Redis, key: string): Promise<() => Redis> {
  if (!isCluster(redis)) return () => redis;
  const cluster = redis as unknown as Cluster;
  const slot = Number(await cluster.call('CLUSTER', 'KEYSLOT', key));
  return () => {
    const nodeKey = cluster.slots[slot]?.[0];
    const node = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === nodeKey);
    if (!node) throw new RedisUnavailableError(new Error(`no master known for slot ${slot}`));
    return node;
  };
}

/**
 * A connection for workers: commands wait through a Redis restart instead of failing
 * (`maxRetriesPerRequest: null`, as BullMQ requires for workers).
 */
export function createWorkerConnection(address: string, opts: RedisOptions = {}): Redis {
  return connectRedis(address, { maxRetriesPerRequest: null, enableReadyCheck: true, ...opts });
}

/**
 * A connection for producers (client, HTTP API): fails fast while Redis is down so a caller can
 * answer 503 at once instead of hanging.
 */
export function createProducerConnection(address: string, opts: RedisOptions = {}): Redis {
  return connectRedis(address, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1_000,
    lazyConnect: true,
    ...opts,
  });
}

/** Resolves when the connection is ready, or throws RedisUnavailableError within `timeoutMs`. */
export async function ensureReady(redis: Redis, timeoutMs = 1_000): Promise<void> {
  if (redis.status === 'ready') return;
  if (redis.status === 'wait') {
    redis.connect().catch(() => {
      // Reported through the ready wait below; ioredis keeps reconnecting.
    });
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new RedisUnavailableError());
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/** A Lua script to define as a command: how many of its arguments are keys, and its source. */
export interface ScriptDefinition {
  keys: number;
  lua: string;
}

/**
 * Defines `scripts` as commands on `redis` (once per connection; ioredis runs them with EVALSHA
 * and falls back to EVAL), and returns the connection typed with them.
 */
export function withScripts<T>(redis: Redis, scripts: Readonly<Record<string, ScriptDefinition>>): T {
  // Called before every scripted command: a set already defined on this connection is not walked again.
  let done = scriptSetsDefined.get(redis);
  if (done?.has(scripts)) return redis as unknown as T;
  const defined = redis as unknown as Record<string, unknown>;
  for (const [name, { keys, lua }] of Object.entries(scripts)) {
    if (typeof defined[name] !== 'function') redis.defineCommand(name, { numberOfKeys: keys, lua });
  }
  if (!done) scriptSetsDefined.set(redis, (done = new WeakSet()));
  done.add(scripts);
  return redis as unknown as T;
}

/** The script sets `withScripts` has defined, per connection. */
const scriptSetsDefined = new WeakMap<Redis, WeakSet<object>>();
