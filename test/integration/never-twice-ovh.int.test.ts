import { describe, expect, it } from 'vitest';
import { startFakeOvh, trustCert, type FakeOvh } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

/**
 * The OVH rows of the "never twice, never lost" table, end to end: real Redis and workers, the
 * real `ovh` client against an HTTPS stand-in that checks every signature.
 */
describe('OVH: never twice, never lost', () => {
  async function start(opts: Parameters<typeof startFakeOvh>[0] = {}, env: Record<string, string> = {}) {
    const fake = await startFakeOvh(opts);
    onTeardown('fake OVH', () => fake.close());
    trustCert(fake.certPem);
    const pipeline = await startTestSmsq({
      api: false,
      env: {
        SMSQ_PROVIDER: 'ovh',
        ...fake.env,
        OVH_RATE_PER_S: '1000',
        OVH_BATCH_SIZE: '200',
        ...env,
      },
    });
    return { fake, pipeline, client: pipeline.client };
  }

  const posts = (f: FakeOvh) => f.requests.filter((r) => r.method === 'POST');

  it('sends one job per ≤ OVH_BATCH_SIZE receivers and counts invalid receivers of a 200 as invalid', async () => {
    const to = spanishMobiles(450);
    const { fake, client } = await start({ invalidNumbers: [to[0]!, to[449]!] });
    const { id } = await client.send({ to, text: 'Bonjour' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 450, accepted: 448, invalid: 2 });
    expect(result.batches.map((b) => b.recipients)).toEqual([200, 200, 50]);
    expect(result.credits.charged).toBe(448);
    expect(posts(fake)).toHaveLength(3);
    // Tags are unique per batch and within OVH's 20 characters.
    const tags = posts(fake).map((r) => (r.body as { tag: string }).tag);
    expect(new Set(tags).size).toBe(3);
    expect(tags.every((t) => t.length <= 20)).toBe(true);
  });

  it('looks an ambiguous batch up by tag and records it sent without a second POST', async () => {
    const { fake, client } = await start();
    fake.script('POST /sms/{sn}/jobs', 'drop-after-accept');
    const to = spanishMobiles(20);
    const { id } = await client.send({ to, text: 'Bonjour' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 20, accepted: 20 });
    expect(result.batches[0]).toMatchObject({ state: 'sent', attempts: 1 });
    expect(result.credits.charged).toBe(20);
    expect(posts(fake)).toHaveLength(1);
    expect(fake.recipientsReceived()).toHaveLength(20);
  });

  it('resends an ambiguous batch the lookup cannot find (OVH 5xx before creating it)', async () => {
    const { fake, client } = await start();
    fake.script('POST /sms/{sn}/jobs', { status: 500 });
    const to = spanishMobiles(5);
    const { id } = await client.send({ to, text: 'Bonjour' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 5, accepted: 5 });
    expect(result.batches[0]).toMatchObject({ state: 'sent', attempts: 2 });
    expect(posts(fake)).toHaveLength(2);
    expect(fake.recipientsReceived().sort()).toEqual([...to].sort());
  });

  it('rejects a batch on a business 400 while credits are left, without retrying', async () => {
    const { fake, client } = await start();
    fake.script('POST /sms/{sn}/jobs', { status: 400, body: { message: 'Invalid sender' } });
    const { id } = await client.send({ to: spanishMobiles(3), text: 'Bonjour' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 3, rejected: 3 });
    expect(posts(fake)).toHaveLength(1);
  });

  it('pauses OVH when a 400 comes with no credits left, and resumes when credits are back', async () => {
    const { fake, pipeline, client } = await start({ creditsLeft: 0 });
    const to = spanishMobiles(4);
    const { id } = await client.send({ to, text: 'Bonjour' });
    await eventually(async () => (await pipeline.workers.control.pausedReason('ovh')) !== undefined);
    expect((await client.get(id)).state).not.toBe('completed');
    fake.setCreditsLeft(100);
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 4, accepted: 4 });
    expect(fake.recipientsReceived().sort()).toEqual([...to].sort());
  });

  it('pauses OVH on a 403 credential error and keeps the jobs until an operator resumes', async () => {
    const { fake, pipeline, client } = await start({}, { SMSQ_PROBE_INTERVAL_MS: '600000' });
    fake.script('POST /sms/{sn}/jobs', {
      status: 403,
      body: {
        errorCode: 'INVALID_CREDENTIAL',
        httpCode: '403 Forbidden',
        message: 'This credential is not valid',
      },
    });
    const { id } = await client.send({ to: spanishMobiles(2), text: 'Bonjour' });
    await eventually(async () => (await pipeline.workers.control.pausedReason('ovh')) !== undefined);
    await pipeline.workers.control.resume('ovh', 'operator');
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 2, accepted: 2 });
    expect(posts(fake)).toHaveLength(2);
  });

  it('waits out a 429 without using an attempt', async () => {
    const { fake, client } = await start({}, { SMSQ_ATTEMPTS: '1' });
    fake.script('POST /sms/{sn}/jobs', { status: 429, body: { message: 'Too many requests' } });
    const { id } = await client.send({ to: spanishMobiles(2), text: 'Bonjour' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 2, accepted: 2 });
    expect(posts(fake)).toHaveLength(2);
  });
});
