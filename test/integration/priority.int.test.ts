import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { closeSharedQueue, createQueueContext } from '../../src/queue/context.js';
import { enqueueRequest, type EnqueueDeps } from '../../src/queue/enqueue.js';
import { startFakeDescom, type FakeDescomHold } from '../helpers/fake-descom.js';
import { waitCompleted } from '../helpers/http-app.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq, type TestSmsq } from '../helpers/test-smsq.js';
import { waitFor } from '../helpers/wait.js';

const headers = { authorization: 'Bearer test-key-1', 'content-type': 'application/json' };

async function send(api: TestSmsq, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${api.url}/v1/messages`, { method: 'POST', headers, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

describe('request priority', () => {
  it('a single-recipient send goes before bulk and campaign work queued ahead of it', async () => {
    // One batch at a time per lane, so the order the bulk queue hands batches out is the order
    // they finish; each takes 200 ms at the simulator.
    const api = await startTestSmsq({
      workers: false,
      logLevel: 'info',
      env: { SMSQ_BATCH_CONCURRENCY: '1', SIMULATOR_LATENCY_MS: '200' },
    });
    const numbers = spanishMobiles(40);
    const low = [];
    for (let i = 0; i < 4; i++)
      low.push(await send(api, { to: numbers.slice(i * 5, i * 5 + 5), text: 'Promo', priority: 'low' }));
    const normal = [];
    for (let i = 0; i < 3; i++)
      normal.push(await send(api, { to: numbers.slice(20 + i * 5, 25 + i * 5), text: 'Aviso' }));
    const otp = await send(api, { to: numbers[39], text: 'Code 1234' });
    await api.startWorkers();

    const finished = new Map<string, number>();
    for (const id of [otp, ...normal, ...low]) {
      const body = await waitCompleted(api, id, headers);
      finished.set(id, Date.parse(body.finishedAt as string));
    }
    const order = [...finished.entries()].sort((a, b) => a[1] - b[1]).map(([id]) => id);
    // The OTP has its own lane: it is sent beside the first bulk batch, not after it (which of
    // the two is recorded finished first is a matter of milliseconds).
    expect(order.indexOf(otp)).toBeLessThanOrEqual(1);
    // Every normal request finished before any low one.
    const lastNormal = Math.max(...normal.map((id) => order.indexOf(id)));
    const firstLow = Math.min(...low.map((id) => order.indexOf(id)));
    expect(lastNormal).toBeLessThan(firstLow);
  });

  it('a high send reaches the provider while low batches hold every batch slot of the worker', async () => {
    const fake = await startFakeDescom();
    onTeardown('fake Descom', () => fake.close());
    const slots = 2;
    // The first `slots` sends are held at the fake until the test lets them go: two low batches
    // then occupy both slots of the batch worker, and four more wait for one.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    fake.script(...Array.from({ length: slots }, (): FakeDescomHold => ({ hold: gate })));
    const api = await startTestSmsq({
      logLevel: 'info',
      env: {
        ...fake.env,
        SMSQ_PROVIDER: 'descom',
        DESCOM_RATE_PER_S: '100',
        SMSQ_BATCH_CONCURRENCY: String(slots),
        // Held calls stay in flight until released (the test default deadline of 3 s would end them).
        SMSQ_PROVIDER_TIMEOUT_MS: '60000',
      },
    });
    onTeardown('held sends', () => release());
    const numbers = spanishMobiles(13);
    const low = [];
    for (let i = 0; i < 6; i++)
      low.push(await send(api, { to: numbers.slice(i * 2, i * 2 + 2), text: 'Promo', priority: 'low' }));
    const sends = () => fake.requests.filter((r) => r.path === '/api/sms/send');
    await waitFor(() => sends().length >= slots, { what: 'both batch slots held at the fake' });

    const otpNumber = numbers[12]!;
    const otp = await send(api, { to: otpNumber, text: 'Code 1234' });
    await waitFor(() => sends().some((r) => r.recipients.includes(otpNumber)), {
      what: 'the high send at the fake while the low batches hold every slot',
    });
    // Only the held low batches were sent before it: the backlog behind them had not moved.
    expect(sends().map((r) => r.recipients.includes(otpNumber))).toEqual([false, false, true]);
    expect((await waitCompleted(api, otp, headers)).counts).toMatchObject({ accepted: 1 });

    release();
    for (const id of low)
      expect((await waitCompleted(api, id, headers)).counts).toMatchObject({ accepted: 2 });
    expect(fake.recipientsDelivered().sort()).toEqual([...numbers].sort());
  });

  it('a high send is planned and sent while the bulk send queue takes no job', async () => {
    const fake = await startFakeDescom();
    onTeardown('fake Descom', () => fake.close());
    const api = await startTestSmsq({
      logLevel: 'info',
      env: { ...fake.env, SMSQ_PROVIDER: 'descom', DESCOM_RATE_PER_S: '100' },
    });
    // The bulk lane's send queue keeps its name, `send`: with it paused, the splitter plans none
    // of its requests, as when its slots are all busy with a campaign's chunks.
    const bulk = new Queue('send', { connection: api.workers.context.redis, prefix: api.config.prefix });
    onTeardown('bulk send queue', () => closeSharedQueue(bulk));
    await bulk.pause();
    const numbers = spanishMobiles(5);
    const campaignChunk = await send(api, { to: numbers.slice(0, 4), text: 'Promo', priority: 'low' });
    const otp = await send(api, { to: numbers[4], text: 'Code 1234' });

    expect((await waitCompleted(api, otp, headers)).counts).toMatchObject({ accepted: 1 });
    expect(fake.recipientsDelivered()).toEqual([numbers[4]]);
    await bulk.resume();
    expect((await waitCompleted(api, campaignChunk, headers)).counts).toMatchObject({ accepted: 4 });
    expect(fake.recipientsDelivered().sort()).toEqual([...numbers].sort());
  });

  it('a high request queued in `send` before lanes existed is sent through the priority lane, and a replay adds no second job', async () => {
    const api = await startTestSmsq({ workers: false, logLevel: 'info' });
    const context = createQueueContext({
      redisUrl: api.config.redisUrl,
      prefix: api.config.prefix,
      defaultCountry: 'ES',
      role: 'producer',
    });
    onTeardown('producer context', () => context.close());
    await context.ready();
    const deps: EnqueueDeps = { store: context.store, sendQueue: context.sendQueue, defaultCountry: 'ES' };
    const request = { to: '+34600000077', text: 'Code 1234' };
    // As an enqueue before lanes did it: every send job in `send`, whatever its priority.
    const { accepted } = await enqueueRequest(
      { ...deps, sendQueue: () => context.sendQueue('bulk') },
      request,
      {
        idempotencyKey: 'otp-77',
      },
    );
    const replay = await enqueueRequest(deps, request, { idempotencyKey: 'otp-77' });
    expect(replay).toMatchObject({ replayed: true, accepted: { id: accepted.id } });
    expect(await context.sendQueue('priority').getJob(accepted.id)).toBeUndefined();

    await api.startWorkers();
    const result = await waitCompleted(api, accepted.id, headers);
    expect(result.counts).toMatchObject({ total: 1, accepted: 1 });
    const [batch] = result.batches as { id: string }[];
    expect(await context.batchQueues('simulator').priority.getJob(batch!.id)).toBeDefined();
    expect(await context.batchQueues('simulator').bulk.getJob(batch!.id)).toBeUndefined();
  });

  it("a provider's 429 on a bulk batch holds both lanes of that provider for its Retry-After", async () => {
    const fake = await startFakeDescom();
    onTeardown('fake Descom', () => fake.close());
    fake.script({ status: 429, headers: { 'retry-after': '3' } });
    const api = await startTestSmsq({
      logLevel: 'info',
      env: { ...fake.env, SMSQ_PROVIDER: 'descom', DESCOM_RATE_PER_S: '100' },
    });
    const numbers = spanishMobiles(3);
    const bulk = await send(api, { to: numbers.slice(0, 2), text: 'Promo', priority: 'low' });
    // BullMQ's limiter key of each queue: set (with the Retry-After as its TTL) by the 429.
    const { redis } = api.workers.context;
    const limiter = (queue: string) => redis.pttl(`${api.config.prefix}:${queue}:limiter`);
    await waitFor(async () => (await limiter('batch-descom-priority')) > 0, {
      what: 'the priority lane rate-limited by the bulk batch’s 429',
    });
    expect(await limiter('batch-descom')).toBeGreaterThan(0);

    const otp = await send(api, { to: numbers[2], text: 'Code 1234' });
    expect((await waitCompleted(api, otp, headers)).counts).toMatchObject({ accepted: 1 });
    expect((await waitCompleted(api, bulk, headers)).counts).toMatchObject({ accepted: 2 });
    expect(fake.recipientsDelivered().sort()).toEqual([...numbers].sort());
  });

  it('refuses an unknown priority, naming the field', async () => {
    const api = await startTestSmsq({ workers: false, logLevel: 'info' });
    const res = await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ to: '+34600000001', text: 'x', priority: 'urgent' }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('priority');
  });

  it('/metrics gives the age of the oldest job waiting in each queue', async () => {
    const api = await startTestSmsq({ workers: false, logLevel: 'info' });
    await send(api, { to: spanishMobiles(2), text: 'Espera' });
    await new Promise((r) => setTimeout(r, 1_200));
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    const age = /smsq_queue_oldest_waiting_seconds\{queue="send"\} ([\d.]+)/.exec(metrics);
    expect(age).not.toBeNull();
    expect(Number(age![1])).toBeGreaterThanOrEqual(1);
    expect(Number(age![1])).toBeLessThan(30);
  });
});
