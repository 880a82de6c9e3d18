import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startFakeOvh, trustCert, writeCertFile, type FakeOvh } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startPrivateRedis } from '../helpers/redis-server.js';
import { redisUrl } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq, type TestSmsq } from '../helpers/test-smsq.js';
import { eventually, waitFor } from '../helpers/wait.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

/**
 * OVH as it really behaves, against the real `ovh` client and real Redis: accepted jobs stay
 * pending in `/jobs` before `/outgoing`, a POST can be accepted after the client gave up, a 200
 * can come without a readable report, Redis can refuse the write that follows a 200, and a worker
 * can freeze past its lock. Each asserts, from the fake's own record, that no recipient received
 * the SMS twice, and that the request's counts add up.
 */
describe('OVH under real faults: never twice, never lost', () => {
  async function startFake(opts: Parameters<typeof startFakeOvh>[0] = {}) {
    const fake = await startFakeOvh(opts);
    trustCert(fake.certPem);
    onTeardown('fake OVH', () => fake.close());
    return fake;
  }

  const ovhEnv = (f: FakeOvh): Record<string, string> => ({
    SMSQ_PROVIDER: 'ovh',
    ...f.env,
    OVH_SERVICE_NAME: f.serviceName,
    OVH_RATE_PER_S: '1000',
    SMSQ_PROVIDER_TIMEOUT_MS: '1000',
    OVH_SETTLE_MS: '3000',
  });

  function pipelineOn(f: FakeOvh, env: Record<string, string> = {}): Promise<TestSmsq> {
    return startTestSmsq({ api: false, env: { ...ovhEnv(f), ...env } });
  }

  const posts = (f: FakeOvh) => f.requests.filter((r) => r.method === 'POST');
  function expectEachReceivedOnce(f: FakeOvh, to: readonly string[]) {
    expect(f.recipientsReceived().sort()).toEqual([...to].sort());
  }

  it('a POST accepted then dropped, the job pending for 20 s: found among pending jobs, never resent', async () => {
    const f = await startFake({ pendingMs: 20_000 });
    const { client } = await pipelineOn(f);
    f.script('POST /sms/{sn}/jobs', 'drop-after-accept');
    const to = spanishMobiles(12);
    const { id } = await client.send({ to, text: 'Bonjour' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 12, accepted: 12 });
    expect(result.batches[0]).toMatchObject({ state: 'sent', attempts: 1 });
    expect(posts(f)).toHaveLength(1);
    expectEachReceivedOnce(f, to);
  });

  it('a POST accepted after our deadline (late acceptance) is found and never resent', async () => {
    const f = await startFake({ pendingMs: 5_000 });
    const { client } = await pipelineOn(f);
    // Our deadline is 1 s; OVH creates the job at 1.8 s and never answers.
    f.script('POST /sms/{sn}/jobs', { acceptLate: 1_800 });
    const to = spanishMobiles(8);
    const { id } = await client.send({ to, text: 'Bonjour' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 8, accepted: 8 });
    expect(posts(f)).toHaveLength(1);
    expectEachReceivedOnce(f, to);
  });

  it.each(['empty-200', 'unreadable-200', 'accept-204'] as const)(
    'a 2xx without a readable report (%s) is sent, its credits an estimate, never looked up or resent',
    async (action) => {
      const f = await startFake({ pendingMs: 20_000 });
      const { client } = await pipelineOn(f);
      f.script('POST /sms/{sn}/jobs', action);
      const to = spanishMobiles(5);
      const { id } = await client.send({ to, text: 'Bonjour' });
      const result = await client.wait(id, { timeoutMs: 20_000 });
      expect(result.counts).toMatchObject({ total: 5, accepted: 5 });
      expect(result.batches[0]!.credits).toMatchObject({ charged: 5, chargedIsEstimate: true });
      expect(posts(f)).toHaveLength(1);
      expectEachReceivedOnce(f, to);
    },
  );

  it('Redis refusing writes (OOM under noeviction) between the 200 and our state write: the receipt is kept and written later', async () => {
    const redis = await startPrivateRedis();
    onTeardown('private Redis', () => redis.destroy());
    const admin = new Redis(redis.url);
    onTeardown('admin connection', () => admin.disconnect());
    const f = await startFake({ pendingMs: 20_000 });
    const pipeline = await pipelineOn(f, { REDIS_URL: redis.url });
    const { client } = pipeline;
    let refusedUntil = 0;
    f.script('POST /sms/{sn}/jobs', {
      acceptThen: async () => {
        await admin.config('SET', 'maxmemory-policy', 'noeviction');
        await admin.config('SET', 'maxmemory', '1');
        refusedUntil = Date.now() + 1_500;
        setTimeout(() => void admin.config('SET', 'maxmemory', '0'), 1_500);
      },
    });
    const to = spanishMobiles(7);
    const { id } = await client.send({ to, text: 'Bonjour' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(refusedUntil).toBeGreaterThan(0);
    expect(result.counts).toMatchObject({ total: 7, accepted: 7, unknown: 0 });
    expect(result.batches[0]).toMatchObject({ state: 'sent', attempts: 1 });
    expect(posts(f)).toHaveLength(1);
    expectEachReceivedOnce(f, to);
    // The refusal was seen and handled as ours, not as the provider's.
    expect(pipeline.logs()).toMatch(/OOM/);
    expect(pipeline.logs()).not.toMatch(/Send outcome unknown/);
  });

  it('Redis SIGKILLed right after the sending write (appendfsync always): the 200 is written once Redis is back, one POST', async () => {
    const redis = await startPrivateRedis({ appendfsync: 'always' });
    onTeardown('private Redis', () => redis.destroy());
    const f = await startFake({ pendingMs: 20_000 });
    const { client } = await pipelineOn(f, { REDIS_URL: redis.url });
    let killedAt = 0;
    f.script('POST /sms/{sn}/jobs', {
      acceptThen: async () => {
        await redis.kill('SIGKILL');
        killedAt = Date.now();
        setTimeout(() => void redis.start(), 1_000);
      },
    });
    const to = spanishMobiles(6);
    const { id } = await client.send({ to, text: 'Bonjour' });
    await eventually(() => Promise.resolve(killedAt > 0), 15_000);
    // The client fails fast while Redis is down (as producers must): poll through the outage.
    await eventually(
      async () => (await client.get(id).catch(() => undefined))?.state === 'completed',
      25_000,
    );
    const result = await client.get(id);
    expect(result.counts).toMatchObject({ total: 6, accepted: 6 });
    expect(result.batches[0]).toMatchObject({ state: 'sent', attempts: 1 });
    expect(posts(f)).toHaveLength(1);
    expectEachReceivedOnce(f, to);
  });

  it('OVH 403 NOT_GRANTED_CALL again and again: paused, retried after each probe, then the waiting batches fail (no endless loop)', async () => {
    const f = await startFake();
    const { client, workers } = await pipelineOn(f, { SMSQ_PROBE_INTERVAL_MS: '100' });
    f.script('POST /sms/{sn}/jobs', ...Array.from({ length: 20 }, () => 'not-granted' as const));
    const { id } = await client.send({ to: spanishMobiles(4), text: 'Bonjour' });
    const result = await client.wait(id, { timeoutMs: 25_000 });
    expect(result.counts).toMatchObject({ total: 4, failed: 4, accepted: 0 });
    expect(result.batches[0]!.error).toMatch(/NOT_GRANTED/);
    // Paused once per refusal, three refusals, then given up: no fourth POST, and not paused any more.
    expect(posts(f)).toHaveLength(3);
    expect(await workers.control.pausedReason('ovh')).toBeUndefined();
    expect(f.recipientsReceived()).toHaveLength(0);
  });

  it('a worker frozen (SIGSTOP) past its lock with its call under way: its successor waits, never sends a second time', async () => {
    const f = await startFake();
    // A prefix and a client; the workers are processes.
    const { config, client } = await startTestSmsq({ api: false, workers: false });
    const prefix = config.prefix;
    const env = {
      ...ovhEnv(f),
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
      SMSQ_LOCK_DURATION_MS: '1000',
      SMSQ_PROVIDER_TIMEOUT_MS: '10000',
      LOG_LEVEL: 'warn',
      NODE_EXTRA_CA_CERTS: writeCertFile(f.certPem),
    };
    const workers: WorkerProcess[] = [];
    const worker = () => {
      const w = spawnWorker(env);
      workers.push(w);
      return w;
    };

    // The first worker's call begins, then stalls inside it (OVH's time sync is held).
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    f.script('GET /auth/time', { acceptThen: () => held });
    const first = worker();
    const to = spanishMobiles(9);
    const { id } = await client.send({ to, text: 'Bonjour' });
    await eventually(() => Promise.resolve(f.requests.some((r) => r.path === '/auth/time')), 20_000);
    first.child.kill('SIGSTOP');

    // A second worker takes the job over once the frozen one's lock has expired.
    worker();
    const queue = new Queue('batch-ovh', { connection: new Redis(redisUrl()), prefix });
    onTeardown('batch queue', async () => {
      await queue.close();
      (await queue.client).disconnect();
    });
    await eventually(async () => ((await queue.getJob(`${id}-0`))?.stalledCounter ?? 0) >= 1, 20_000);
    await eventually(async () => ['active', 'delayed'].includes(await queue.getJobState(`${id}-0`)), 20_000);
    // A successor that did not wait would now look the batch up (not found: the frozen worker has
    // not posted yet) and send it; give it the time to, then let the frozen worker go on.
    const acted = eventually(() => Promise.resolve(posts(f).length > 0), 3_000).then(
      () => true,
      () => false,
    );
    expect(await acted).toBe(false);
    release();
    first.child.kill('SIGCONT');

    const result = await waitFor(
      async () => {
        const summary = await client.get(id);
        return summary.state === 'completed' ? summary : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `request ${id} completed` },
    );
    expect(result.state).toBe('completed');
    expect(result.counts).toMatchObject({ total: 9, accepted: 9 });
    expect(posts(f)).toHaveLength(1);
    expectEachReceivedOnce(f, to);
    expect(workers[0]!.output()).not.toMatch(/\+?3460\d{7}/);
  }, 60_000);
});
