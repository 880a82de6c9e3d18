import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startFakeDescom } from '../helpers/fake-descom.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { freePort, startPrivateRedis } from '../helpers/redis-server.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

/**
 * Every row of DESIGN.md's "never twice, never lost" table for Descom, end to end: real Redis,
 * real BullMQ workers, the real undici client, and a real HTTP server standing in for Descom.
 */
describe('Descom: never twice, never lost', () => {
  async function start(env: Record<string, string> = {}, url?: string) {
    const fake = await startFakeDescom();
    onTeardown('fake Descom', () => fake.close());
    const pipeline = await startTestSmsq({
      api: false,
      env: {
        SMSQ_PROVIDER: 'descom',
        DESCOM_USER: fake.user,
        DESCOM_PASS: fake.pass,
        DESCOM_URL: url ?? fake.url,
        DESCOM_RATE_PER_S: '1000',
        ...env,
      },
    });
    return { fake, pipeline, client: pipeline.client };
  }

  function expectNoDuplicates(delivered: string[]) {
    expect(new Set(delivered).size).toBe(delivered.length);
  }

  it('records a 2xx as sent with credits and IDs, and a re-run of the batch never calls again', async () => {
    const { fake, pipeline, client } = await start();
    const to = spanishMobiles(120);
    const { id } = await client.send({ to, text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 120, accepted: 120 });
    expect(result.batches).toHaveLength(1);
    expect(result.batches[0]).toMatchObject({ state: 'sent', recipients: 120, attempts: 1 });
    expect(result.batches[0]!.providerIds).toHaveLength(1);
    expect(result.credits.charged).toBe(120);
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);

    // Run the same batch again, as a duplicate delivery of its job would.
    const batchId = result.batches[0]!.id;
    const again = await pipeline.workers.context
      .batchQueues('descom')
      .bulk.add('batch', { batchId, requestId: id });
    await eventually(async () => (await again.isCompleted()) || (await again.isFailed()));
    expect(await again.getState()).toBe('completed');
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);
  });

  it('retries a 503 ("not performed") with backoff and delivers each recipient once', async () => {
    const { fake, client } = await start();
    fake.script({ status: 503 }, { status: 503 });
    const to = spanishMobiles(30);
    const { id } = await client.send({ to, text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 30, accepted: 30 });
    expect(result.batches[0]).toMatchObject({ state: 'sent', attempts: 3 });
    expect(fake.recipientsDelivered().sort()).toEqual([...to].sort());
  });

  it('retries when the request never left (connection refused) and gives up as failed', async () => {
    const closedPort = await freePort();
    const { fake, client } = await start({ SMSQ_ATTEMPTS: '3' }, `http://127.0.0.1:${closedPort}/api`);
    const { id } = await client.send({ to: spanishMobiles(5), text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 5, failed: 5, accepted: 0 });
    expect(result.batches[0]).toMatchObject({ state: 'failed', attempts: 3 });
    expect(result.batches[0]!.error).toMatch(/ECONNREFUSED|TRANSIENT/);
    expect(fake.requests).toHaveLength(0);
  });

  it('waits out a 429 with Retry-After without using an attempt', async () => {
    const { fake, client } = await start({ SMSQ_ATTEMPTS: '1' });
    fake.script({ status: 429, headers: { 'retry-after': '1' } });
    const startedAt = Date.now();
    const { id } = await client.send({ to: spanishMobiles(3), text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 3, accepted: 3 });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(900);
    expectNoDuplicates(fake.recipientsDelivered());
  });

  it('does not retry a 422: the batch is rejected', async () => {
    const { fake, client } = await start();
    fake.script({ status: 422, body: { error: 'invalid' } });
    const { id } = await client.send({ to: spanishMobiles(4), text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 4, rejected: 4 });
    expect(result.batches[0]).toMatchObject({ state: 'rejected', attempts: 1 });
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);
  });

  it('pauses the provider on a 402, keeps the jobs, and resumes when the balance probe succeeds', async () => {
    const { fake, pipeline, client } = await start();
    fake.setBalance(0);
    const to = spanishMobiles(10);
    const { id } = await client.send({ to, text: 'Hola' });
    await eventually(async () => (await pipeline.workers.control.pausedReason('descom')) !== undefined);
    expect(await pipeline.workers.context.batchQueues('descom').bulk.isPaused()).toBe(true);
    expect(await pipeline.workers.context.batchQueues('descom').priority.isPaused()).toBe(true);
    expect((await client.get(id)).state).not.toBe('completed');
    expect(pipeline.logs()).toMatch(/"level":60.*paused/);

    fake.setBalance(1_000);
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 10, accepted: 10 });
    expect(await pipeline.workers.context.batchQueues('descom').bulk.isPaused()).toBe(false);
    expect(await pipeline.workers.context.batchQueues('descom').priority.isPaused()).toBe(false);
    expect(fake.recipientsDelivered().sort()).toEqual([...to].sort());
  });

  it('stays paused while the balance is below the waiting batch cost: one POST, then none until a top-up', async () => {
    const { fake, pipeline, client } = await start();
    fake.setBalance(5); // positive, but below the 10 credits the batch costs
    const to = spanishMobiles(10);
    const { id } = await client.send({ to, text: 'Hola' });
    await eventually(async () => (await pipeline.workers.control.pausedReason('descom')) !== undefined);
    const sends = () => fake.requests.filter((r) => r.path === '/api/sms/send').length;
    const probes = () => fake.requests.filter((r) => r.path === '/api/balance').length;
    // Several probe rounds (200 ms apart) and the batch's own 1 s recheck: no POST may follow.
    await eventually(() => Promise.resolve(probes() >= 8), 15_000);
    expect(sends()).toBe(1);
    expect(await pipeline.workers.context.batchQueues('descom').bulk.isPaused()).toBe(true);
    expect((await client.get(id)).state).not.toBe('completed');

    fake.setBalance(10);
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 10, accepted: 10 });
    expect(sends()).toBe(2);
    expect(fake.recipientsDelivered().sort()).toEqual([...to].sort());
  });

  it('keeps a 200 when Redis then refuses writes (OOM under noeviction): recorded sent once Redis takes writes, never unknown', async () => {
    const redis = await startPrivateRedis();
    onTeardown('private Redis', () => redis.destroy());
    const admin = new Redis(redis.url);
    onTeardown('admin connection', () => admin.disconnect());
    const { fake, client, pipeline } = await start({ REDIS_URL: redis.url });
    const held = fake.holdNext();
    const to = spanishMobiles(9);
    const { id } = await client.send({ to, text: 'Hola' });
    await held.received;
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    held.release();
    // The receipt is in hand and its write refused: the worker keeps it and retries.
    await eventually(
      () => Promise.resolve(/Redis refused the provider receipt/.test(pipeline.logs())),
      10_000,
    );
    await admin.config('SET', 'maxmemory', '0');
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 9, accepted: 9, unknown: 0 });
    expect(result.batches[0]).toMatchObject({ state: 'sent', attempts: 1 });
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);
    expectNoDuplicates(fake.recipientsDelivered());
  });

  it('records a socket dropped after the request went out as unknown and never resends it', async () => {
    const { fake, client } = await start();
    fake.script('drop-before-response');
    const { id } = await client.send({ to: spanishMobiles(7), text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 7, unknown: 7, accepted: 0 });
    expect(result.batches[0]).toMatchObject({ state: 'unknown', attempts: 1 });
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);
    expectNoDuplicates(fake.recipientsDelivered());
  });

  it('records a timeout after the request went out as unknown (headers timeout)', async () => {
    const { fake, client } = await start({ SMSQ_PROVIDER_TIMEOUT_MS: '300' });
    fake.script('hang');
    const { id } = await client.send({ to: spanishMobiles(2), text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 2, unknown: 2 });
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);
  });

  it('records a 500 as unknown: the provider may have acted', async () => {
    const { fake, client } = await start();
    fake.script({ status: 500 });
    const { id } = await client.send({ to: spanishMobiles(2), text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 2, unknown: 2 });
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);
  });

  it('resends an ambiguous batch only when SMSQ_AMBIGUOUS=resend', async () => {
    const { fake, client } = await start({ SMSQ_AMBIGUOUS: 'resend' });
    fake.script('drop-before-response');
    const to = spanishMobiles(3);
    const { id } = await client.send({ to, text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 3, accepted: 3 });
    // The documented trade-off of resend: the first copy may have been delivered too.
    expect(fake.recipientsDelivered()).toHaveLength(6);
  });

  it('expires a batch not sent before expiresAt', async () => {
    const { fake, client } = await start({ SMSQ_BACKOFF_MS: '600' });
    fake.script({ status: 503 });
    const expiresAt = new Date(Date.now() + 300).toISOString();
    const { id } = await client.send({ to: spanishMobiles(4), text: 'Hola', expiresAt });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 4, expired: 4 });
    expect(fake.recipientsDelivered()).toHaveLength(0);
  });

  it('cancels batches not yet sent: they end failed and never reach the provider', async () => {
    const { fake, pipeline, client } = await start();
    const queue = pipeline.workers.context.batchQueues('descom').bulk;
    await queue.pause();
    const { id } = await client.send({ to: spanishMobiles(250), text: 'Hola' });
    await eventually(async () => (await client.get(id)).batches.length > 0);
    const { cancelledBatches } = await client.cancel(id);
    expect(cancelledBatches).toBe(1);
    await queue.resume();
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 250, failed: 250 });
    expect(fake.requests).toHaveLength(0);
  });

  it('never logs a phone number, a message text or the password', async () => {
    const { fake, pipeline, client } = await start();
    fake.script({ status: 503 }, 'drop-before-response');
    const { id } = await client.send({ to: ['+34600000042', '+34600000043'], text: 'Texto privado 987' });
    await client.wait(id, { timeoutMs: 15_000 });
    const logs = pipeline.logs();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toMatch(/60000004[23]/);
    expect(logs).not.toContain('Texto privado');
    expect(logs).not.toContain(fake.pass);
  });
});
