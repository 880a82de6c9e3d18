import { describe, expect, it } from 'vitest';
import type { BatchRecord } from '../../src/queue/records.js';
import { startFakeOvh, trustCert, type FakeOvh } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq, type TestSmsqOptions } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

/**
 * The resend after reconciliation is a send like any other: it re-checks cancel, expiry and the
 * send window. An OVH 500 leaves the batch ambiguous (OVH may have created the job); it is
 * looked up over its settle window, and only then may it go again.
 */
describe('resend after reconciliation re-checks cancel, expiry and window', () => {
  async function start(env: Record<string, string> = {}, opts: TestSmsqOptions['workerOptions'] = {}) {
    const fake = await startFakeOvh();
    onTeardown('fake OVH', () => fake.close());
    trustCert(fake.certPem);
    const pipeline = await startTestSmsq({
      api: false,
      workerOptions: opts,
      env: {
        SMSQ_PROVIDER: 'ovh',
        ...fake.env,
        OVH_RATE_PER_S: '1000',
        SMSQ_PROVIDER_TIMEOUT_MS: '1000',
        OVH_SETTLE_MS: '2500',
        ...env,
      },
    });
    return { fake, pipeline, client: pipeline.client };
  }

  const posts = (f: FakeOvh) => f.requests.filter((r) => r.method === 'POST');

  it('a cancel during the reconcile wait: nothing is sent again after the DELETE answered', async () => {
    const { fake, client } = await start();
    // OVH answers 500 without creating the job: ambiguous, found nowhere, so it would be resent.
    fake.script('POST /sms/{sn}/jobs', { status: 500 });
    const to = spanishMobiles(6);
    const { id } = await client.send({ to, text: 'Bonjour' });
    await eventually(() => Promise.resolve(posts(fake).length === 1));
    const answer = await client.cancel(id);
    // The batch's call began before the DELETE: it may be at OVH, so it is not counted cancelled.
    expect(answer.cancelledBatches).toBe(0);

    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(posts(fake)).toHaveLength(1);
    expect(fake.recipientsReceived()).toHaveLength(0);
    expect(result.counts).toMatchObject({ total: 6, failed: 6, accepted: 0 });
    expect(result.batches[0]).toMatchObject({ state: 'failed', error: 'cancelled', attempts: 1 });
  });

  it('a request that expires during the settle window is not resent: its recipients end expired', async () => {
    const { fake, client } = await start();
    fake.script('POST /sms/{sn}/jobs', { status: 500 });
    const to = spanishMobiles(4);
    const expiresAt = new Date(Date.now() + 2_000).toISOString();
    const { id } = await client.send({ to, text: 'Bonjour', expiresAt });

    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(posts(fake)).toHaveLength(1);
    expect(fake.recipientsReceived()).toHaveLength(0);
    expect(result.counts).toMatchObject({ total: 4, expired: 4 });
  });

  it('a send window that closed during the settle window holds the resend until it opens', async () => {
    // Stands in for the clock passing the window's end: open for the first send, closed after it
    // until the test reopens it.
    let closedUntil: number | undefined;
    const { fake, client, pipeline } = await start(
      {},
      {
        holdUntil: (_record: BatchRecord, now: number) =>
          closedUntil && closedUntil > now ? closedUntil : undefined,
      },
    );
    fake.script('POST /sms/{sn}/jobs', { status: 500 });
    const to = spanishMobiles(3);
    const { id } = await client.send({ to, text: 'Bonjour' });
    await eventually(() => Promise.resolve(posts(fake).length === 1));
    closedUntil = Date.now() + 60_000;

    // The window ends at about 1 s (deadline) + 2 s (margin) + 2.5 s (settle) after the call:
    // past it, the batch is back to planned and waits for the window, unsent.
    await eventually(async () => (await client.get(id)).batches[0]?.state === 'planned', 15_000);
    expect(posts(fake)).toHaveLength(1);
    closedUntil = undefined;
    // Reopened: the held job is delayed until the window's end as it was then; move it along.
    const [job] = await pipeline.workers.context.batchQueues('ovh').bulk.getDelayed();
    await job?.promote();
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 3, accepted: 3 });
    expect(posts(fake)).toHaveLength(2);
    expect(fake.recipientsReceived().sort()).toEqual([...to].sort());
  });
});
