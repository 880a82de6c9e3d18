import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import {
  createDurabilityGate,
  NonDurableRedisConfigError,
  RedisNotDurableError,
} from '../../src/queue/durability.js';
import { smsqKeys } from '../../src/queue/names.js';
import { RecordStore } from '../../src/queue/records.js';
import { runSmsq } from '../helpers/cli.js';
import { startFakeDescom } from '../helpers/fake-descom.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startPrivateRedis, type AppendFsyncMode, type PrivateRedis } from '../helpers/redis-server.js';
import { captureLogger } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

/** A private Redis; replicas sync at once (not after the default 5 s diskless-sync delay). */
async function privateRedis(mode: AppendFsyncMode, extraArgs: string[] = []): Promise<PrivateRedis> {
  const redis = await startPrivateRedis({
    appendfsync: mode,
    extraArgs: ['--repl-diskless-sync-delay', '0', ...extraArgs],
  });
  onTeardown('private Redis', () => redis.destroy());
  return redis;
}

function connect(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  onTeardown('Redis connection', () => redis.disconnect());
  return redis;
}

/** JSON log lines at `level` (pino numbers: 30 info, 40 warn, 50 error) whose msg matches. */
function logged(lines: string, level: number, msg: RegExp): string[] {
  return lines
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === level && msg.test(l.msg))
    .map((l) => l.msg);
}

/** Starts workers on `url` and returns what they logged, or the error that refused the start. */
async function startWorkersOn(url: string, env: Record<string, string> = {}) {
  const capture = captureLogger('info');
  const { lines } = capture;
  try {
    await startTestSmsq({ api: false, capture, env: { REDIS_URL: url, ...env } });
    return { started: true as const, lines: lines() };
  } catch (err) {
    return { started: false as const, err, lines: lines() };
  }
}

/**
 * A Descom request that hangs at the fake: once the fake has it, the batch's `sending` write was
 * acknowledged by Redis. Returns the batch ids (read while Redis still has them).
 */
async function batchInFlight(redis: PrivateRedis) {
  const fake = await startFakeDescom();
  onTeardown('fake Descom', () => fake.close());
  fake.script('hang');
  const pipeline = await startTestSmsq({
    api: false,
    env: {
      REDIS_URL: redis.url,
      SMSQ_PROVIDER: 'descom',
      ...fake.env,
    },
  });
  const { id } = await pipeline.client.send({ to: spanishMobiles(3), text: 'Durable?' });
  await eventually(() => Promise.resolve(fake.requests.some((r) => r.method === 'POST')));
  const store = new RecordStore(connect(redis.url), smsqKeys(pipeline.config.prefix));
  const request = await store.getRequest(id);
  expect(request?.batchIds).toHaveLength(1);
  const batchId = request!.batchIds[0]!;
  expect((await store.getBatch(batchId))?.state).toBe('sending');
  return { store, batchId, pipeline };
}

describe('the `sending` write under a Redis SIGKILL', () => {
  it('appendfsync always: the `sending` state of a batch in flight survives SIGKILL and restart', async () => {
    const redis = await privateRedis('always');
    const { store, batchId } = await batchInFlight(redis);
    await redis.kill('SIGKILL');
    await redis.start();
    const record = await store.getBatch(batchId);
    expect(record).toMatchObject({ state: 'sending', attempts: 1 });
  }, 30_000);

  it('AOF off: the same SIGKILL loses the `sending` write, and the start-up check had said so at error', async () => {
    const redis = await privateRedis('off');
    const { store, batchId, pipeline } = await batchInFlight(redis);
    expect(logged(pipeline.logs(), 50, /Redis durability: Redis persists nothing/)).toHaveLength(1);
    await redis.kill('SIGKILL');
    await redis.start();
    // The batch is gone: had Redis kept an older snapshot, it would look `planned`, never sent.
    expect(await store.getBatch(batchId)).toBeUndefined();
  }, 30_000);
});

describe('the start-up check', () => {
  it('appendfsync always: durable, said at info, starts even when durability is required', async () => {
    const redis = await privateRedis('always');
    const result = await startWorkersOn(redis.url, { SMSQ_REQUIRE_DURABLE_REDIS: 'true' });
    expect(result.started).toBe(true);
    expect(logged(result.lines, 30, /^Redis durability: appendfsync always/)).toHaveLength(1);
  });

  it('everysec on Redis 7.0: logs at error what can be lost and how to fix it; SMSQ_REQUIRE_DURABLE_REDIS=true refuses to start', async () => {
    const redis = await privateRedis('everysec');
    const lenient = await startWorkersOn(redis.url, { SMSQ_REQUIRE_DURABLE_REDIS: 'false' });
    expect(lenient.started).toBe(true);
    const [error] = logged(lenient.lines, 50, /^Redis durability/);
    expect(error).toMatch(/everysec and no WAITAOF before Redis 7\.2: .*up to about 1 s/);
    expect(error).toMatch(/look never sent: it may be sent twice/);
    expect(error).toMatch(/appendfsync always.*Redis ≥ 7\.2.*SMSQ_REDIS_MIN_REPLICAS/);

    const strictEnvs: Record<string, string>[] = [
      { SMSQ_REQUIRE_DURABLE_REDIS: 'true' },
      { NODE_ENV: 'production' },
    ];
    for (const env of strictEnvs) {
      const strict = await startWorkersOn(redis.url, env);
      expect(strict.started).toBe(false);
      expect(strict.err).toBeInstanceOf(NonDurableRedisConfigError);
      expect((strict.err as Error).message).toMatch(
        /^Refusing to start \(SMSQ_REQUIRE_DURABLE_REDIS=true.*everysec.*Set SMSQ_REQUIRE_DURABLE_REDIS=false to start anyway\.$/,
      );
    }
  });

  it('`smsq worker` with NODE_ENV=production on an everysec Redis 7.0 exits 1 with the reason', async () => {
    const redis = await privateRedis('everysec');
    const result = await runSmsq(['worker'], { REDIS_URL: redis.url, NODE_ENV: 'production' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^Refusing to start \(SMSQ_REQUIRE_DURABLE_REDIS=true, the default with NODE_ENV=production\): Redis durability: appendfsync everysec/,
    );
  });

  it('AOF off: logs at error that a restart loses everything; required durability refuses to start', async () => {
    const redis = await privateRedis('off');
    const lenient = await startWorkersOn(redis.url);
    expect(lenient.started).toBe(true);
    expect(logged(lenient.lines, 50, /persists nothing.*ledger are lost/)).toHaveLength(1);
    const strict = await startWorkersOn(redis.url, { SMSQ_REQUIRE_DURABLE_REDIS: '1' });
    expect(strict.err).toBeInstanceOf(NonDurableRedisConfigError);
    expect((strict.err as Error).message).toMatch(/persists nothing/);
  });

  it('CONFIG refused (as on managed Redis): warns, refuses when required, unless replicas are verified online', async () => {
    const primary = await privateRedis('everysec');
    const admin = connect(primary.url);
    await admin.call('ACL', 'SETUSER', 'smsq', 'on', '>smsq-pw', '~*', '&*', '+@all', '-config');
    const url = `redis://smsq:smsq-pw@127.0.0.1:${primary.port}`;

    const strict = await startWorkersOn(url, { SMSQ_REQUIRE_DURABLE_REDIS: 'true' });
    expect(strict.err).toBeInstanceOf(NonDurableRedisConfigError);
    expect((strict.err as Error).message).toMatch(/appendfsync cannot be read \(CONFIG GET refused\)/);
    expect(
      logged(strict.lines, 40, /^Redis durability: CONFIG GET is not allowed on this Redis \(NOPERM/),
    ).toHaveLength(1);

    const replica = await privateRedis('off', ['--replicaof', '127.0.0.1', String(primary.port)]);
    await eventually(async () => /slave0:.*state=online/.test(await admin.info('replication')));
    const replicated = await startWorkersOn(url, {
      SMSQ_REQUIRE_DURABLE_REDIS: 'true',
      SMSQ_REDIS_MIN_REPLICAS: '1',
    });
    expect(replicated.started).toBe(true);
    expect(logged(replicated.lines, 30, /waits for 1 replica\(s\) \(WAIT\), 1 online/)).toHaveLength(1);
    expect(replica.port).toBeGreaterThan(0);
  });
});

describe('the durability gate (WAIT with SMSQ_REDIS_MIN_REPLICAS)', () => {
  const logger = createLogger('silent');

  async function primaryWithReplica() {
    const primary = await privateRedis('off');
    const replica = await privateRedis('off', ['--replicaof', '127.0.0.1', String(primary.port)]);
    const redis = connect(primary.url);
    await eventually(async () => /slave0:.*state=online/.test(await redis.info('replication')));
    return { primary, replica, redis };
  }

  it('passes once the replica has the write, refuses while the replica does not acknowledge', async () => {
    const { replica, redis } = await primaryWithReplica();
    // A generous timeout where the replica answers (the machine is shared), a short one where it cannot.
    const patientGate = createDurabilityGate(redis, { minReplicas: 1, timeoutMs: 5_000, logger });
    const awaitDurable = createDurabilityGate(redis, { minReplicas: 1, timeoutMs: 300, logger });
    await redis.set('durable:a', '1');
    await patientGate();

    replica.pause();
    onTeardown('replica resumed', () => replica.resume());
    await redis.set('durable:b', '1');
    const startedAt = Date.now();
    const refused = await awaitDurable().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(RedisNotDurableError);
    expect(refused).toMatchObject({ code: 'SMSQ_REDIS_NOT_DURABLE' });
    expect((refused as Error).message).toMatch(
      /^Only 0 of 1 replica\(s\) acknowledged the `sending` write within 300 ms \(WAIT\); the provider call was not made, safe to retry$/,
    );
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
  });

  it('refuses when its connection was replaced during the wait (a resent WAIT vouches for nothing)', async () => {
    const primary = await privateRedis('off');
    const redis = connect(primary.url);
    const admin = connect(primary.url);
    const awaitDurable = createDurabilityGate(redis, { minReplicas: 1, timeoutMs: 4_000, logger });
    await redis.set('durable:c', '1');
    const clientId = await redis.client('ID');
    const outcome = awaitDurable().then(
      () => 'passed',
      (err: unknown) => err,
    );
    // The WAIT blocks (no replica yet); the connection is cut, then a replica comes up within the
    // timeout: ioredis resends the WAIT on its new connection, where nothing was written.
    await eventually(async () => /cmd=wait/.test((await admin.client('LIST')) as string));
    await admin.client('KILL', 'ID', String(clientId));
    await privateRedis('off', ['--replicaof', '127.0.0.1', String(primary.port)]);
    const result = await outcome;
    expect(result).toBeInstanceOf(RedisNotDurableError);
    expect((result as Error).message).toMatch(
      /connection to Redis closed between the `sending` write and its durability wait/,
    );
  });
});
