/**
 * What a failover must never do: move a batch that may have reached its provider, or send a
 * recipient of a cancelled request. Real Redis, real workers, the loopback fakes; the races run
 * the move script against the cancel script for real.
 */
import { describe, expect, it } from 'vitest';
import type { BatchState } from '../../src/queue/batch-state.js';
import type { BatchRecord } from '../../src/queue/records.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTwoProviders } from '../helpers/routing.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

const ROUTES = JSON.stringify([{ match: {}, providers: ['descom', 'ovh'] }]);

describe('Failover guards', () => {
  async function start() {
    const fakes = await startTwoProviders();
    onTeardown('provider fakes', () => fakes.close());
    const pipeline = await startTestSmsq({
      api: false,
      env: {
        ...fakes.env,
        SMSQ_PROVIDER: 'descom',
        SMSQ_ROUTES: ROUTES,
        SMSQ_FAILBACK_MS: '60000',
      },
    });
    return { fakes, pipeline, workers: pipeline.workers, client: pipeline.client };
  }

  it('moves a planned batch, never one in sending, unknown or sent', async () => {
    const { fakes, workers } = await start();
    const { store } = workers.context;
    const requestId = 'rguards';
    await store.createRequest({
      id: requestId,
      createdAt: new Date().toISOString(),
      total: 4,
      invalid: [],
      estimatedCredits: 4,
      accepted: '{}',
    });
    const states: BatchState[] = ['planned', 'sending', 'unknown', 'sent'];
    const records: BatchRecord[] = states.map((state, i) => ({
      batch: {
        id: `${requestId}-${i}`,
        requestId,
        provider: 'descom',
        tag: `tag${i}`,
        messages: [{ text: 'Hola', to: spanishMobiles(1, i) }],
        estimatedCredits: 1,
      },
      state,
      attempts: state === 'planned' ? 0 : 1,
      route: ['descom', 'ovh'],
    }));
    await store.savePlan(requestId, { provider: 'descom', suppressed: 0, batches: records });
    // Descom's circuit opens (as on a pause); no job exists for these batches, so only our calls move them.
    await workers.circuit.paused('descom');

    const results = [];
    for (const record of records) results.push(await workers.failover!.moveIfNeeded(record, {}));
    expect(results.map((r) => r.status)).toEqual(['moved', 'stays', 'stays', 'stays']);

    const after = await store.getBatches(records.map((r) => r.batch.id));
    expect(after.map((r) => r.state)).toEqual(['moved', 'sending', 'unknown', 'sent']);
    const request = await store.getRequest(requestId);
    expect(request?.batchIds).toEqual([
      `${requestId}-0-ovh-0`,
      `${requestId}-1`,
      `${requestId}-2`,
      `${requestId}-3`,
    ]);
    const successor = await store.getBatch(`${requestId}-0-ovh-0`);
    expect(successor).toMatchObject({
      state: expect.stringMatching(/planned|sending|sent/),
      batch: { provider: 'ovh', messages: records[0]!.batch.messages },
      history: [{ provider: 'descom', reason: 'paused' }],
    });
    // Moving the same batch again (a second process, a retried scan) makes nothing new.
    const again = await workers.failover!.moveIfNeeded(after[0]!, {});
    expect(again).toEqual({ status: 'moved', to: 'ovh', successors: [`${requestId}-0-ovh-0`] });
    expect((await store.getRequest(requestId))?.batchIds).toHaveLength(4);
    // Its one OVH job (deterministic id) sends it, once.
    await eventually(async () => (await store.getBatch(`${requestId}-0-ovh-0`))?.state === 'sent');
    expect(fakes.ovh.recipientsReceived()).toEqual(records[0]!.batch.messages[0]!.to);
  });

  it("a high batch waiting in a paused provider's priority lane moves to the next provider's priority lane", async () => {
    const { fakes, workers, client } = await start();
    // Descom has no credit, so its probe keeps it paused: the batch moves only by a scan.
    fakes.descom.setBalance(0);
    await workers.control.pause('descom', { code: 'SMSQ_TEST_PAUSE', message: 'test pause' });
    const to = spanishMobiles(1, 500);
    const { id } = await client.send({ to, text: 'Code 1234' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 1, accepted: 1 });
    const [successor] = result.batches;
    expect(successor).toMatchObject({ provider: 'ovh', history: [{ provider: 'descom', reason: 'paused' }] });
    const ovh = workers.context.batchQueues('ovh');
    expect(await ovh.priority.getJob(successor!.id)).toBeDefined();
    expect(await ovh.bulk.getJob(successor!.id)).toBeUndefined();
    expect(fakes.ovh.recipientsReceived()).toEqual(to);
    expect(fakes.descom.recipientsDelivered()).toEqual([]);
  });

  it('a failover racing a cancel never sends a cancelled recipient', async () => {
    const { fakes, workers, client } = await start();
    // Descom has no credit, so its probe keeps it paused and its jobs wait in its paused queue.
    fakes.descom.setBalance(0);
    await workers.control.pause('descom', { code: 'SMSQ_TEST_PAUSE', message: 'test pause' });
    // OVH's jobs wait too (its queue paused, the provider itself available), so that a move that
    // wins leaves its successors planned for the cancel to reach; they run once it resumes.
    const ovhQueue = workers.context.batchQueues('ovh').bulk;
    await ovhQueue.pause();

    const ids: string[] = [];
    for (let round = 0; round < 12; round++) {
      const to = spanishMobiles(3, round * 10);
      const { id } = await client.send({ to, text: `Hola ${round}` });
      ids.push(id);
      await eventually(async () => (await client.get(id)).batches.length > 0, 10_000);
      // Move then cancel, cancel then move, and both at once.
      if (round % 3 === 0) {
        await workers.failover!.scan();
        await client.cancel(id);
      } else if (round % 3 === 1) {
        await client.cancel(id);
        await workers.failover!.scan();
      } else {
        await Promise.all([workers.failover!.scan(), client.cancel(id)]);
      }
    }
    await ovhQueue.resume();
    for (const id of ids) {
      await eventually(async () => {
        const summary = await client.get(id);
        return summary.batches.every((b) => b.state === 'failed');
      }, 10_000);
    }
    // Let any successor job that was added run to its claim.
    await workers.failover!.scan();
    await new Promise((r) => setTimeout(r, 1_000));
    const won = { move: 0, cancel: 0 };
    for (const id of ids) {
      const summary = await client.get(id);
      won[summary.batches[0]!.provider === 'ovh' ? 'move' : 'cancel'] += 1;
      expect(summary.counts).toMatchObject({ total: 3, failed: 3, accepted: 0 });
      expect(summary.batches.every((b) => b.state === 'failed' && b.error === 'cancelled')).toBe(true);
    }
    console.log(`failover vs cancel: the move came first in ${won.move} rounds, the cancel in ${won.cancel}`);
    expect(won.move).toBeGreaterThanOrEqual(4);
    expect(won.cancel).toBeGreaterThanOrEqual(4);
    expect(fakes.ovh.recipientsReceived()).toEqual([]);
    expect(fakes.descom.recipientsDelivered()).toEqual([]);
  });

  it('a circuit opened by a pause that ended without a resume (given up after repeats) is probed and half-opens', async () => {
    const { workers } = await start();
    // The pause opened the circuit; then its flag went without a resume (ProviderControl gives up
    // on a refusal it cannot probe: flag deleted, queue resumed, no resume() call).
    await workers.circuit.paused('descom');
    expect(await workers.control.pausedReason('descom')).toBeUndefined();
    // The Descom probe (its balance) answers: the circuit half-opens instead of staying open for ever.
    await eventually(async () => (await workers.circuit.availability('descom')).state === 'half-open', 5_000);
  });
});
