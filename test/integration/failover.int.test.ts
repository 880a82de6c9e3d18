/**
 * Failover between providers (SMSQ_ROUTES): a planned batch leaves a paused provider, or one whose
 * circuit is open, for the next provider of its route. Real Redis, real BullMQ workers, the real
 * Descom (undici) and OVH (`ovh` package) clients against their loopback fakes.
 */
import { describe, expect, it } from 'vitest';
import { batchTag } from '../../src/queue/splitter.js';
import type { RequestSummary } from '../../src/queue/summary.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { eachOnce, startTwoProviders } from '../helpers/routing.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

const ROUTES = JSON.stringify([{ match: {}, providers: ['descom', 'ovh'] }]);

/** `count` recipients, each with its own text: Descom packs ≤ 50 texts per request, OVH one per job. */
function distinctTexts(to: readonly string[], label: string) {
  return to.map((n, i) => ({ to: [n], text: `${label} ${i}` }));
}

function recipientsOf(result: RequestSummary, provider: string): number {
  return result.batches.filter((b) => b.provider === provider).reduce((n, b) => n + b.recipients, 0);
}

describe('Failover', () => {
  async function start(env: Record<string, string> = {}) {
    const fakes = await startTwoProviders();
    onTeardown('provider fakes', () => fakes.close());
    const pipeline = await startTestSmsq({
      api: false,
      env: {
        ...fakes.env,
        SMSQ_PROVIDER: 'descom',
        SMSQ_ROUTES: ROUTES,
        SMSQ_BATCH_CONCURRENCY: '1',
        ...env,
      },
    });
    return { fakes, pipeline, client: pipeline.client };
  }

  it('Descom paused on 402: its planned batches go through OVH, each recipient once, then traffic returns after top-up and failback', async () => {
    const failbackMs = 1_500;
    const { fakes, pipeline, client } = await start({
      SMSQ_FAILBACK_MS: String(failbackMs),
      SMSQ_PROBE_INTERVAL_MS: '200',
    });
    fakes.descom.setBalance(0);
    const to = spanishMobiles(60);
    const { id } = await client.send({ messages: distinctTexts(to, 'Hola') });
    const result = await client.wait(id, { timeoutMs: 20_000 });

    expect(result.counts).toMatchObject({ total: 60, accepted: 60, failed: 0 });
    expect(fakes.descom.recipientsDelivered()).toEqual([]);
    expect(eachOnce(fakes.delivered())).toEqual([...to].sort());
    // The two Descom batches (50 + 10 texts) were replaced by one OVH batch per text.
    expect(result.batches).toHaveLength(60);
    expect(recipientsOf(result, 'ovh')).toBe(60);
    for (const batch of result.batches) {
      expect(batch).toMatchObject({ provider: 'ovh', state: 'sent' });
      expect(batch.history).toEqual([{ provider: 'descom', reason: 'paused', at: expect.any(String) }]);
    }
    const first402 = fakes.descom.requests.find((r) => r.status === 402)!;
    const firstOvhPost = fakes.ovh.requests.find((r) => r.method === 'POST')!;
    const takeoverMs = firstOvhPost.at - first402.at;
    // The batch that got the 402 moves in its own run; the other waited in Descom's paused queue
    // and is moved by the failover scan: time that one too.
    const waitingTags = new Set(
      result.batches.filter((b) => b.id.startsWith(`${id}-1-`)).map((b) => batchTag(b.id)),
    );
    const firstFromQueue = fakes.ovh.requests.find(
      (r) => r.method === 'POST' && waitingTags.has((r.body as { tag?: string }).tag ?? ''),
    )!;
    const fromQueueMs = firstFromQueue.at - first402.at;
    console.log(
      `failover: Descom's first 402 → OVH receives the first moved batch after ${takeoverMs} ms; ` +
        `the first batch moved out of Descom's paused queue after ${fromQueueMs} ms`,
    );
    expect(takeoverMs).toBeLessThan(10_000);
    expect(fromQueueMs).toBeLessThan(10_000);
    expect(await pipeline.workers.circuit.availability('descom')).toEqual({
      state: 'open',
      unavailable: 'paused',
    });

    // Top-up: the probe resumes Descom, its circuit half-opens; routes keep away for the failback period.
    fakes.descom.setBalance(1_000);
    await eventually(
      async () => (await pipeline.workers.circuit.availability('descom')).state === 'half-open',
    );
    const halfOpenAt = Date.now();
    const during = await client.send({ to: spanishMobiles(2, 100), text: 'Todavía por OVH' });
    const duringResult = await client.wait(during.id, { timeoutMs: 10_000 });
    expect(duringResult.batches.map((b) => b.provider)).toEqual(['ovh']);

    await eventually(
      async () => (await pipeline.workers.circuit.availability('descom')).state === 'closed',
      failbackMs + 5_000,
    );
    expect(Date.now() - halfOpenAt).toBeGreaterThanOrEqual(failbackMs - 300);
    const after = await client.send({ to: spanishMobiles(3, 200), text: 'De vuelta' });
    const afterResult = await client.wait(after.id, { timeoutMs: 10_000 });
    expect(afterResult.batches).toMatchObject([{ provider: 'descom', state: 'sent' }]);
    expect(afterResult.batches[0]!.history).toBeUndefined();
    expect(fakes.descom.recipientsDelivered().sort()).toEqual(spanishMobiles(3, 200));
  });

  it('a request with failover: false waits for its provider instead', async () => {
    const { fakes, pipeline, client } = await start({ SMSQ_FAILBACK_MS: '60000' });
    fakes.descom.setBalance(0);
    const to = spanishMobiles(3);
    const { id } = await client.send({ to, text: 'Espero', failover: false });
    await eventually(async () => (await pipeline.workers.control.pausedReason('descom')) !== undefined);
    // Several failover scans later, it is still Descom's and still planned.
    await new Promise((r) => setTimeout(r, 2_500));
    const waiting = await client.get(id);
    expect(waiting.batches).toMatchObject([{ provider: 'descom', state: 'planned' }]);
    expect(fakes.ovh.recipientsReceived()).toEqual([]);
    fakes.descom.setBalance(100);
    const result = await client.wait(id, { timeoutMs: 10_000 });
    expect(result.batches).toMatchObject([{ provider: 'descom', state: 'sent' }]);
    expect(fakes.descom.recipientsDelivered().sort()).toEqual([...to].sort());
  });

  it('a Descom 503 storm opens its circuit and OVH takes over, each recipient once', async () => {
    const { fakes, pipeline, client } = await start({ SMSQ_FAILBACK_MS: '60000' });
    fakes.descom.script(...Array.from({ length: 200 }, () => ({ status: 503 })));
    const to = spanishMobiles(60);
    const { id } = await client.send({ messages: distinctTexts(to, 'Hola') });
    const result = await client.wait(id, { timeoutMs: 20_000 });

    expect(result.counts).toMatchObject({ total: 60, accepted: 60, failed: 0 });
    expect(fakes.descom.recipientsDelivered()).toEqual([]);
    expect(fakes.ovh.recipientsReceived().sort()).toEqual([...to].sort());
    // Opened at the fifth failure in a row (SMSQ_CIRCUIT_FAILURES default), not before.
    expect(fakes.descom.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(5);
    for (const batch of result.batches) {
      expect(batch.history).toEqual([{ provider: 'descom', reason: 'circuit-open', at: expect.any(String) }]);
    }
    expect((await pipeline.workers.circuit.availability('descom')).unavailable).toBe('circuit-open');
    expect(pipeline.logs().match(/Circuit of descom opened/g)).toHaveLength(1);
  });

  it('an ambiguous (unknown) Descom batch is never moved, even once the circuit opens', async () => {
    const { fakes, client } = await start({ SMSQ_CIRCUIT_FAILURES: '3', SMSQ_FAILBACK_MS: '60000' });
    // The first batch reaches Descom and its answer is lost; the next sends get 503s.
    fakes.descom.script('drop-before-response', ...Array.from({ length: 50 }, () => ({ status: 503 })));
    const to = spanishMobiles(60);
    const { id } = await client.send({ messages: distinctTexts(to, 'Hola') });
    const result = await client.wait(id, { timeoutMs: 20_000 });

    const unknown = result.batches.filter((b) => b.state === 'unknown');
    expect(unknown).toMatchObject([{ provider: 'descom', recipients: 50 }]);
    expect(unknown[0]!.history).toBeUndefined();
    expect(result.counts).toMatchObject({ total: 60, unknown: 50, accepted: 10 });
    // Descom may have sent the unknown batch's 50: OVH got only the other 10.
    expect(fakes.ovh.recipientsReceived().sort()).toEqual(to.slice(50).sort());
  });
});
