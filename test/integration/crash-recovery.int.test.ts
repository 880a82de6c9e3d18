import { describe, expect, it } from 'vitest';
import type { SmsClient } from '../../src/client.js';
import type { RequestSummary } from '../../src/queue/summary.js';
import { startFakeDescom } from '../helpers/fake-descom.js';
import { startFakeOvh, trustCert, writeCertFile } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startPrivateRedis } from '../helpers/redis-server.js';
import { redisEnv } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually, waitFor } from '../helpers/wait.js';
import { spawnWorker } from '../helpers/worker-process.js';

/** Waits for completion, riding out moments when Redis is unreachable (the producer client fails fast). */
function waitCompleted(client: SmsClient, id: string, timeoutMs = 30_000): Promise<RequestSummary> {
  return waitFor(
    async () => {
      const summary = await client.get(id);
      return summary.state === 'completed' ? summary : undefined;
    },
    { timeoutMs, intervalMs: 50, retryErrors: true, what: `request ${id} completed` },
  );
}

function sumOutcomes(c: RequestSummary['counts']): number {
  return c.accepted + c.invalid + c.suppressed + c.rejected + c.failed + c.expired + c.unknown;
}

describe('crash recovery', () => {
  const baseEnv = (prefix: string) => ({
    ...redisEnv(),
    SMSQ_PREFIX: prefix,
    SMSQ_LOCK_DURATION_MS: '1000',
    SMSQ_BACKOFF_MS: '50',
    // A dead worker's call counts as in flight until its deadline (+2 s) has passed: keep it short.
    SMSQ_PROVIDER_TIMEOUT_MS: '2000',
    OVH_SETTLE_MS: '500',
    LOG_LEVEL: 'warn',
  });

  /** A worker process (killed when the test ends, if still running). */
  const worker = spawnWorker;

  async function descomWorkerEnv(
    fakeOpts: Parameters<typeof startFakeDescom>[0],
    extra: Record<string, string>,
  ) {
    const fake = await startFakeDescom(fakeOpts);
    onTeardown('fake Descom', () => fake.close());
    // A prefix and a client; the workers are processes.
    const { config, client } = await startTestSmsq({ api: false, workers: false });
    const prefix = config.prefix;
    const env = {
      ...baseEnv(prefix),
      SMSQ_PROVIDER: 'descom',
      ...fake.env,
      ...extra,
    };
    return { fake, client, env };
  }

  it('Descom: a worker process killed mid-batch leaves the batch unknown, never resent', async () => {
    const { fake, client, env } = await descomWorkerEnv({}, {});
    fake.script('hang');
    const first = worker(env);
    const to = spanishMobiles(40);
    const { id } = await client.send({ to, text: 'Hola' });
    await fake.waitForRequests(1);
    expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    expect((await client.get(id)).batches[0]?.state).toBe('sending');

    const startedAt = Date.now();
    worker(env);
    const result = await waitCompleted(client, id);
    expect(Date.now() - startedAt).toBeLessThan(60_000);
    expect(result.counts).toMatchObject({ total: 40, unknown: 40 });
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);
    expect(new Set(fake.recipientsDelivered()).size).toBe(fake.recipientsDelivered().length);
    // What the worker processes printed holds no number and no password.
    expect(first.output()).not.toMatch(/\+?3460\d{7}/);
    expect(first.output()).not.toContain(fake.pass);
  });

  it('OVH: a worker process killed mid-batch is reconciled by tag and recorded sent, never resent', async () => {
    const fake = await startFakeOvh();
    onTeardown('fake OVH', () => fake.close());
    trustCert(fake.certPem);
    const { config, client } = await startTestSmsq({ api: false, workers: false });
    const prefix = config.prefix;
    const env = {
      ...baseEnv(prefix),
      SMSQ_PROVIDER: 'ovh',
      ...fake.env,
      OVH_SERVICE_NAME: fake.serviceName,
      OVH_RATE_PER_S: '100',
      NODE_EXTRA_CA_CERTS: writeCertFile(fake.certPem),
    };

    // The job is created at OVH, then the answer never comes: the worker dies waiting.
    fake.script('POST /sms/{sn}/jobs', 'accept-then-hang');
    const first = worker(env);
    const to = spanishMobiles(30);
    const { id } = await client.send({ to, text: 'Bonjour' });
    await eventually(() => Promise.resolve(fake.requests.some((r) => r.method === 'POST')), 20_000);
    await first.kill('SIGKILL');

    worker(env);
    const result = await waitCompleted(client, id);
    expect(result.counts).toMatchObject({ total: 30, accepted: 30 });
    expect(result.batches[0]).toMatchObject({ state: 'sent', recipients: 30 });
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(fake.recipientsReceived().sort()).toEqual([...to].sort());
  }, 60_000);

  it('survives a Redis restart mid-request: each recipient reached the provider at most once and every one is counted', async () => {
    const redis = await startPrivateRedis({ persistent: true });
    onTeardown('private Redis', () => redis.destroy());
    const fake = await startFakeDescom({ latencyMs: 150 });
    onTeardown('fake Descom', () => fake.close());
    const pipeline = await startTestSmsq({
      api: false,
      env: {
        REDIS_URL: redis.url,
        SMSQ_PROVIDER: 'descom',
        ...fake.env,
        DESCOM_RATE_PER_S: '5',
        SMSQ_BATCH_CONCURRENCY: '2',
      },
    });

    // 12 requests of 5,000 recipients at 5 requests/s: still sending when Redis goes away.
    const to = spanishMobiles(60_000);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      ids.push(
        (await pipeline.client.send({ to: to.slice(i * 10_000, (i + 1) * 10_000), text: `Hola ${i}` })).id,
      );
    }
    await fake.waitForRequests(2);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 300));
    await redis.start();

    const results = await Promise.all(ids.map((id) => waitCompleted(pipeline.client, id, 60_000)));
    for (const result of results) {
      expect(sumOutcomes(result.counts)).toBe(result.counts.total);
      expect(result.counts.total).toBe(10_000);
    }
    const delivered = fake.recipientsDelivered();
    expect(new Set(delivered).size).toBe(delivered.length);
    const accepted = results.reduce((n, r) => n + r.counts.accepted, 0);
    expect(accepted).toBe(delivered.length);
  }, 90_000);

  it('SIGTERM lets an active batch finish, then the worker exits 0', async () => {
    const { fake, client, env } = await descomWorkerEnv(
      { latencyMs: 1_500 },
      { SMSQ_SHUTDOWN_TIMEOUT_MS: '20000' },
    );
    const w = worker(env);
    const { id } = await client.send({ to: spanishMobiles(3), text: 'Hola' });
    await fake.waitForRequests(1);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    const result = await client.get(id);
    expect(result.batches[0]).toMatchObject({ state: 'sent' });
    expect(fake.recipientsDelivered()).toHaveLength(3);
  });

  it('a second SIGTERM aborts the call in flight: the batch is recorded unknown, not lost, not resent', async () => {
    const { fake, client, env } = await descomWorkerEnv({}, { SMSQ_SHUTDOWN_TIMEOUT_MS: '60000' });
    fake.script('hang');
    const w = worker(env);
    const { id } = await client.send({ to: spanishMobiles(3), text: 'Hola' });
    await fake.waitForRequests(1);
    w.child.kill('SIGTERM');
    // Still draining: the grace period is a minute.
    await new Promise((r) => setTimeout(r, 500));
    expect(w.child.exitCode).toBeNull();
    w.child.kill('SIGTERM');
    // A second signal forces the exit (code 1), once the aborted call had its moment to be recorded.
    expect(await w.exited).toBe(1);
    expect((await client.get(id)).batches[0]).toMatchObject({ state: 'unknown' });
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);
  });

  it('past SMSQ_SHUTDOWN_TIMEOUT_MS, one SIGTERM aborts the call in flight and the worker exits', async () => {
    const { fake, client, env } = await descomWorkerEnv({}, { SMSQ_SHUTDOWN_TIMEOUT_MS: '500' });
    fake.script('hang');
    const w = worker(env);
    const { id } = await client.send({ to: spanishMobiles(2), text: 'Hola' });
    await fake.waitForRequests(1);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect((await client.get(id)).batches[0]).toMatchObject({ state: 'unknown' });
  });
});
