/**
 * Durability of the `sending` write. A batch is marked `sending` before its provider call; if Redis
 * acknowledges that write and then loses it in a crash, the batch looks never sent and is sent a
 * second time. Two parts guard against it:
 *  - the start-up check (`checkRedisDurability`) reads how Redis persists writes, says what a crash
 *    can lose and, with SMSQ_REQUIRE_DURABLE_REDIS, refuses to start on a Redis that can lose it;
 *  - the gate (`createDurabilityGate`) runs after each `sending` write, on the connection that made
 *    it, and waits until the write is on disk (WAITAOF, Redis ≥ 7.2) and/or on replicas (WAIT).
 * Which command runs, and when, is decided by pure functions (`planDurabilityWait`,
 * `judgeRedisDurability`) from facts read once (`readRedisDurabilityFacts`).
 */
import type { Redis } from 'ioredis';
import { ConfigError, SmsqError } from '../errors.js';
import type { Logger } from '../logger.js';

/** The provider call was not made because the `sending` write could not be confirmed durable. */
export class RedisNotDurableError extends SmsqError {
  constructor(message: string, options?: ErrorOptions) {
    super('SMSQ_REDIS_NOT_DURABLE', `${message}; the provider call was not made, safe to retry`, options);
  }
}

/** Start-up refusal (SMSQ_REQUIRE_DURABLE_REDIS): the process prints the message and exits 1. */
export class NonDurableRedisConfigError extends ConfigError {}

export type AppendFsync = 'always' | 'everysec' | 'no';

/** How one Redis server persists writes, as far as it lets us see. */
export interface RedisDurabilityFacts {
  /** `redis_version` from INFO server; undefined when INFO did not answer. */
  version?: string;
  /** From CONFIG GET, else INFO persistence `aof_enabled`; undefined when neither answered. */
  appendonly?: boolean;
  /** From CONFIG GET; undefined when CONFIG is not allowed (managed Redis often forbids it). */
  appendfsync?: AppendFsync;
  /** RDB snapshots configured (CONFIG GET save not empty); undefined when CONFIG is not allowed. */
  snapshots?: boolean;
  /** Replicas in state `online` (INFO replication); undefined when INFO did not answer. */
  replicasOnline?: number;
  /** Why CONFIG GET failed, when it did (e.g. `NOPERM ...`, `ERR unknown command 'CONFIG'`). */
  configError?: string;
  /** The server refused WAITAOF although its version has it (renamed or denied): treated as absent. */
  waitAofRefused?: boolean;
}

/** One command the gate runs after a `sending` write. */
export type DurabilityStep =
  { command: 'WAITAOF'; numlocal: 1; numreplicas: 0 } | { command: 'WAIT'; numreplicas: number };

function versionAtLeast(version: string | undefined, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version ?? '');
  if (!match) return false;
  const [maj, min] = [Number(match[1]), Number(match[2])];
  return maj > major || (maj === major && min >= minor);
}

/** True when the server has WAITAOF (Redis and Valkey ≥ 7.2) and did not refuse it. */
export function hasWaitAof(facts: RedisDurabilityFacts): boolean {
  return versionAtLeast(facts.version, 7, 2) && !facts.waitAofRefused;
}

/**
 * The commands to run after a `sending` write, in order; empty: nothing to wait for.
 * - Local disk: `WAITAOF 1 0` when the AOF is on, the server has WAITAOF and fsync is not
 *   `always` (with `always`, Redis fsyncs before it answers, so the answer already means on disk).
 *   With the AOF off or without WAITAOF nothing can be waited for; the start-up check said so.
 * - Replicas: `WAIT minReplicas` when `minReplicas > 0` (received by the replicas, the meaning of
 *   SMSQ_REDIS_MIN_REPLICAS; WAITAOF's replica count would also need AOF on every replica).
 */
export function planDurabilityWait(facts: RedisDurabilityFacts, minReplicas: number): DurabilityStep[] {
  const steps: DurabilityStep[] = [];
  if (facts.appendonly === true && facts.appendfsync !== 'always' && hasWaitAof(facts)) {
    steps.push({ command: 'WAITAOF', numlocal: 1, numreplicas: 0 });
  }
  if (minReplicas > 0) steps.push({ command: 'WAIT', numreplicas: minReplicas });
  return steps;
}

/** What the start-up check concludes. */
export interface DurabilityVerdict {
  /**
   * true: an acknowledged `sending` write survives a Redis crash (on disk, or on the replicas WAIT
   * counted); false: it can be lost; undefined: Redis does not let us tell.
   */
  durable: boolean | undefined;
  /** How the write is protected, or what a crash can lose (one sentence, no secrets). */
  summary: string;
  /** What the loss means for smsq, when `durable` is not true. */
  consequence: string;
  /** What to change, when `durable` is not true. */
  fixes: string[];
  /** Said at warn even when durable (e.g. fewer replicas online than required). */
  warnings: string[];
}

const FIXES = [
  'set appendonly yes with appendfsync always',
  'or use Redis ≥ 7.2 with appendonly yes (smsq then waits for the fsync with WAITAOF)',
  'or run replicas and set SMSQ_REDIS_MIN_REPLICAS (smsq then waits for them with WAIT)',
];

/** What a crash of this Redis can lose locally, or undefined when the local disk is enough. */
function describeLocalLoss(facts: RedisDurabilityFacts): {
  durable: boolean | undefined;
  text: string;
  consequence?: string;
} {
  if (facts.appendonly === undefined) {
    return {
      durable: undefined,
      text: 'cannot tell whether the append-only file is on (CONFIG GET refused and INFO persistence silent)',
    };
  }
  if (!facts.appendonly) {
    if (facts.snapshots === false) {
      return {
        durable: false,
        text: 'Redis persists nothing (no append-only file, no RDB snapshots)',
        consequence:
          'A restart or crash empties it: every queued request, batch state and the ledger are lost. ' +
          'Fine for a throw-away development Redis (such as the private one `smsq start` runs when none is configured), never for production.',
      };
    }
    return {
      durable: false,
      text: 'the append-only file is off: a crash loses every write since the last RDB snapshot',
    };
  }
  if (facts.appendfsync === 'always') {
    return { durable: true, text: 'appendfsync always: Redis fsyncs each write before it answers' };
  }
  if (hasWaitAof(facts)) {
    const note =
      facts.appendfsync === 'no' ? ' (with appendfsync no the wait may time out; prefer everysec)' : '';
    return {
      durable: true,
      text: `WAITAOF: each \`sending\` write is fsynced before the provider call${note}`,
    };
  }
  const waitAof = facts.waitAofRefused ? 'this server refuses WAITAOF' : 'no WAITAOF before Redis 7.2';
  if (facts.appendfsync === 'everysec') {
    return {
      durable: false,
      text: `appendfsync everysec and ${waitAof}: an OS crash or power loss loses up to about 1 s of acknowledged writes (2 s when the disk is slow)`,
    };
  }
  if (facts.appendfsync === 'no') {
    return {
      durable: false,
      text: `appendfsync no and ${waitAof}: an OS crash or power loss loses whatever the OS had not yet written (often 30 s)`,
    };
  }
  return {
    durable: undefined,
    text: `the append-only file is on but its appendfsync cannot be read (CONFIG GET refused) and ${waitAof}`,
  };
}

/**
 * The start-up verdict, from the facts and SMSQ_REDIS_MIN_REPLICAS. Durable when the local disk
 * keeps each acknowledged write (appendfsync always, or WAITAOF), or when `minReplicas > 0` and at
 * least that many replicas are online (each write is then acknowledged by them before the call).
 */
export function judgeRedisDurability(facts: RedisDurabilityFacts, minReplicas: number): DurabilityVerdict {
  const local = describeLocalLoss(facts);
  const warnings: string[] = [];
  if (facts.configError) warnings.push(`CONFIG GET is not allowed on this Redis (${facts.configError})`);
  let replicated = false;
  let replicaText = '';
  if (minReplicas > 0) {
    const online = facts.replicasOnline ?? 0;
    replicated = online >= minReplicas;
    replicaText = replicated
      ? `; each \`sending\` write also waits for ${minReplicas} replica(s) (WAIT), ${online} online`
      : `; SMSQ_REDIS_MIN_REPLICAS=${minReplicas} but ${facts.replicasOnline ?? 'an unknown number of'} replica(s) online`;
    if (!replicated) {
      warnings.push(
        `only ${facts.replicasOnline ?? 'an unknown number of'} of the ${minReplicas} replica(s) SMSQ_REDIS_MIN_REPLICAS requires are online: provider calls are refused until they are`,
      );
    }
  }
  const durable = local.durable === true || replicated ? true : local.durable;
  const consequence =
    durable === true
      ? ''
      : (local.consequence ??
        (durable === false
          ? 'A `sending` write acknowledged and then lost in a crash makes its batch look never sent: it may be sent twice.'
          : 'If Redis can lose an acknowledged `sending` write, its batch looks never sent after a crash and may be sent twice.'));
  return {
    durable,
    summary: local.text + replicaText,
    consequence,
    fixes: durable === true ? [] : FIXES,
    warnings,
  };
}

function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

function countOnlineReplicas(info: Map<string, string>): number | undefined {
  if (!info.has('connected_slaves')) return undefined;
  let online = 0;
  for (const [key, value] of info) {
    if (/^slave\d+$/.test(key) && /(^|,)state=online(,|$)/.test(value)) online++;
  }
  return online;
}

async function readConfig(redis: Redis, name: string): Promise<string | undefined> {
  const reply = (await redis.config('GET', name)) as string[];
  return reply[1];
}

/**
 * Reads version, persistence and replicas: INFO (default sections) and, where allowed,
 * CONFIG GET appendonly / appendfsync / save. Never throws for a refused CONFIG or INFO.
 */
export async function readRedisDurabilityFacts(redis: Redis): Promise<RedisDurabilityFacts> {
  const facts: RedisDurabilityFacts = {};
  let info: Map<string, string> | undefined;
  try {
    info = parseInfo(await redis.info());
    facts.version = info.get('redis_version');
    facts.replicasOnline = countOnlineReplicas(info);
  } catch {
    // A Redis refusing INFO leaves version and replicas unknown: no WAITAOF, replicas not verified.
  }
  const aofEnabled = info?.get('aof_enabled');
  const infoAppendonly = aofEnabled === undefined ? undefined : aofEnabled === '1';
  try {
    const [appendonly, appendfsync, save] = await Promise.all(
      ['appendonly', 'appendfsync', 'save'].map((name) => readConfig(redis, name)),
    );
    // A parameter the server does not know (a Redis look-alike) stays unknown, not "off".
    facts.appendonly = appendonly === undefined ? infoAppendonly : appendonly === 'yes';
    if (appendfsync === 'always' || appendfsync === 'everysec' || appendfsync === 'no') {
      facts.appendfsync = appendfsync;
    }
    if (save !== undefined) facts.snapshots = save.trim() !== '';
  } catch (err) {
    facts.configError = err instanceof Error ? err.message.split('\n')[0] : String(err);
    facts.appendonly = infoAppendonly;
  }
  return facts;
}

export interface CheckRedisDurabilityOptions {
  /** Refuse (throw NonDurableRedisConfigError) unless durable: SMSQ_REQUIRE_DURABLE_REDIS. */
  require: boolean;
  /** SMSQ_REDIS_MIN_REPLICAS (0: no replica is waited for). */
  minReplicas: number;
  logger: Logger;
}

/**
 * The start-up check: reads the facts, logs the verdict (info when durable, error when an
 * acknowledged `sending` write can be lost, warn when Redis does not let us tell) and, with
 * `require`, throws NonDurableRedisConfigError unless durable. Returns the facts for the gate.
 */
export async function checkRedisDurability(
  redis: Redis,
  opts: CheckRedisDurabilityOptions,
): Promise<{ facts: RedisDurabilityFacts; verdict: DurabilityVerdict }> {
  const log = opts.logger.child({ module: 'redis-durability' });
  const facts = await readRedisDurabilityFacts(redis);
  const verdict = judgeRedisDurability(facts, opts.minReplicas);
  const detail = {
    redisVersion: facts.version,
    appendonly: facts.appendonly,
    appendfsync: facts.appendfsync,
    replicasOnline: facts.replicasOnline,
    minReplicas: opts.minReplicas,
    waits: planDurabilityWait(facts, opts.minReplicas).map((s) => s.command),
  };
  for (const warning of verdict.warnings) log.warn(detail, `Redis durability: ${warning}`);
  if (verdict.durable === true) {
    log.info(detail, `Redis durability: ${verdict.summary}`);
    return { facts, verdict };
  }
  const message = `Redis durability: ${verdict.summary}. ${verdict.consequence} To fix: ${verdict.fixes.join('; ')}.`;
  if (opts.require) {
    throw new NonDurableRedisConfigError(
      `Refusing to start (SMSQ_REQUIRE_DURABLE_REDIS=true, the default with NODE_ENV=production): ${message}` +
        ' Set SMSQ_REQUIRE_DURABLE_REDIS=false to start anyway.',
    );
  }
  const level = verdict.durable === false ? 'error' : 'warn';
  log[level](
    detail,
    `${message} Starting anyway: SMSQ_REQUIRE_DURABLE_REDIS is false (set it to true, the default with NODE_ENV=production, to refuse).`,
  );
  return { facts, verdict };
}

/**
 * Default server-side timeout of one durability wait, in ms: an everysec fsync comes within about
 * 1 s (2 s on a slow disk), a replica's acknowledgement within a round trip.
 */
export const DURABILITY_TIMEOUT_MS = 5_000;

export interface DurabilityGateOptions {
  /** SMSQ_REDIS_MIN_REPLICAS: replicas that must acknowledge each `sending` write (WAIT). */
  minReplicas: number;
  /** Server-side timeout of each WAIT/WAITAOF, in ms (≥ 1; 0 would mean "forever" to Redis). */
  timeoutMs: number;
  logger: Logger;
  /** Facts already read (by the start-up check); read on first use when absent. */
  facts?: RedisDurabilityFacts;
  /**
   * Refuse calls (RedisNotDurableError) when facts re-read after a reconnect say the new server is
   * not durable (SMSQ_REQUIRE_DURABLE_REDIS). Default false.
   */
  require?: boolean;
  /**
   * The server connection that took the writes (a Cluster: the prefix slot's master, see
   * `slotServer` in src/redis.ts). Default: the connection itself.
   */
  server?: () => Redis;
}

/** Resolves once the connection's previous writes are durable; throws RedisNotDurableError otherwise. */
export type DurabilityGate = () => Promise<void>;

function isCommandRefused(err: unknown): boolean {
  // Redis error replies start with their code: NOPERM (ACL), ERR unknown command (renamed/absent).
  return err instanceof Error && /^(NOPERM|ERR unknown command)/.test(err.message);
}

/**
 * The gate the batch processor awaits right after its `planned → sending` write and before the
 * provider call. Call it on the SAME connection that made the write, and without awaiting anything
 * else in between: WAIT and WAITAOF cover the previous writes of the connection they run on.
 *
 * A wait that runs on a different connection than the write vouches for nothing (ioredis resends
 * an unanswered command after a reconnect, where it returns at once): a connection closed between
 * the call and the answer makes the gate throw. Facts are dropped on every close and read again on
 * next use, since the server may have been restarted with another configuration.
 *
 * Note: WAIT/WAITAOF block the connection they run on for up to `timeoutMs`, other commands
 * queued on it included.
 */
export function createDurabilityGate(connection: Redis, opts: DurabilityGateOptions): DurabilityGate {
  const log = opts.logger.child({ module: 'redis-durability' });
  const timeoutMs = Math.max(1, Math.round(opts.timeoutMs));
  let facts: Promise<RedisDurabilityFacts> | undefined = opts.facts && Promise.resolve(opts.facts);
  let waitAofRefused = false;
  let generation = 0;
  const serverOf = opts.server ?? (() => connection);
  let redis = serverOf();
  const watched = new WeakSet<Redis>();
  const watch = (server: Redis) => {
    if (watched.has(server)) return;
    watched.add(server);
    server.on('close', () => {
      generation++;
      facts = undefined;
    });
  };
  watch(redis);

  const currentFacts = () => {
    if (!facts) {
      const reading = readRedisDurabilityFacts(redis).then((read) => {
        if (!opts.require || opts.minReplicas > 0) return read;
        const verdict = judgeRedisDurability(read, 0);
        if (verdict.durable !== true)
          log.error({ redisVersion: read.version }, `Redis durability: ${verdict.summary}`);
        return read;
      });
      facts = reading;
      // A failed read is retried on next use rather than cached.
      reading.catch(() => {
        if (facts === reading) facts = undefined;
      });
    }
    return facts;
  };

  return async function awaitDurable(): Promise<void> {
    // Taken synchronously: the caller's write was answered on the connection of this generation.
    let server: Redis;
    try {
      server = serverOf();
    } catch (err) {
      throw new RedisNotDurableError('No Redis server holds the prefix slot', { cause: err });
    }
    if (server !== redis) {
      // A Cluster failover moved the slot: the facts were the old master's.
      watch(server);
      redis = server;
      facts = undefined;
    }
    const writtenIn = generation;
    const assertSameConnection = () => {
      if (generation !== writtenIn) {
        throw new RedisNotDurableError(
          'The connection to Redis closed between the `sending` write and its durability wait',
        );
      }
    };
    const known = { ...(await currentFacts()), waitAofRefused };
    assertSameConnection();
    // Replicas are not judged here: WAIT below counts them live (facts are read once per connection).
    if (opts.require && opts.minReplicas === 0 && judgeRedisDurability(known, 0).durable !== true) {
      throw new RedisNotDurableError(
        'Redis cannot keep the `sending` write (SMSQ_REQUIRE_DURABLE_REDIS=true)',
      );
    }
    for (const step of planDurabilityWait(known, opts.minReplicas)) {
      if (step.command === 'WAITAOF') {
        let reply: unknown;
        try {
          reply = await redis.call('WAITAOF', step.numlocal, step.numreplicas, timeoutMs);
        } catch (err) {
          if (isCommandRefused(err)) {
            waitAofRefused = true;
            log.error(
              { err },
              'Redis refuses WAITAOF: the `sending` write can no longer be confirmed on disk',
            );
          } else {
            facts = undefined; // e.g. the AOF was turned off at run time: read the facts again
          }
          throw new RedisNotDurableError('WAITAOF failed', { cause: err });
        }
        assertSameConnection();
        const [local] = Array.isArray(reply) ? (reply as unknown[]).map(Number) : [];
        if (local !== 1) {
          throw new RedisNotDurableError(
            `The \`sending\` write was not fsynced within ${timeoutMs} ms (WAITAOF)`,
          );
        }
      } else {
        let acked: number;
        try {
          acked = await redis.wait(step.numreplicas, timeoutMs);
        } catch (err) {
          throw new RedisNotDurableError('WAIT failed', { cause: err });
        }
        assertSameConnection();
        if (acked < step.numreplicas) {
          throw new RedisNotDurableError(
            `Only ${acked} of ${step.numreplicas} replica(s) acknowledged the \`sending\` write within ${timeoutMs} ms (WAIT)`,
          );
        }
      }
    }
  };
}
