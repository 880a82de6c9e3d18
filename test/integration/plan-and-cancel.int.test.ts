import { describe, expect, it } from 'vitest';
import type { Batch } from '../../src/message/types.js';
import type { BatchRecord } from '../../src/queue/records.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { openTestStore } from '../helpers/store.js';

/**
 * The splitter's plan and a cancel are single atomic steps in Redis, so no interleaving of a
 * retried (or frozen and resumed) splitter, a cancel and the batch workers can reset a batch or
 * let a cancelled request send. These run the record store's scripts on a real Redis, in the
 * orders the old multi-step code allowed.
 */
describe('plan and cancel are atomic', () => {
  async function setup() {
    const { store, requestId } = openTestStore();
    await store.createRequest({
      id: requestId,
      createdAt: new Date().toISOString(),
      total: 4,
      invalid: [],
      duplicates: 0,
      estimatedCredits: 4,
      accepted: '{}',
    });
    const batches: BatchRecord[] = [0, 1].map((i) => {
      const batch: Batch = {
        id: `${requestId}-${i}`,
        requestId,
        provider: 'descom',
        tag: `tag${i}`,
        messages: [{ text: 'Hola', to: spanishMobiles(2, i * 2) }],
        estimatedCredits: 2,
      };
      return { batch, state: 'planned', attempts: 0 };
    });
    const plan = { provider: 'descom' as const, suppressed: 0, batches };
    return { store, requestId, batches, plan };
  }

  it('a second plan of the same request changes nothing, even over a batch already sent', async () => {
    const { store, requestId, batches, plan } = await setup();
    expect(await store.savePlan(requestId, plan)).toBe(true);
    const first = batches[0]!.batch;
    expect((await store.claim(first, 'run-1')).status).toBe('ok');
    await store.recordReceipt(
      first,
      { providerIds: ['p1'], accepted: first.messages[0]!.to, invalid: [], creditsCharged: 2 },
      'run-1',
      { sent: { state: 'sent' }, duplicate: { state: 'duplicate', accepted: '2' } },
    );

    // A second splitter run that had read the request before the first stored its plan.
    expect(await store.savePlan(requestId, plan)).toBe(false);
    expect((await store.getBatch(first.id))?.state).toBe('sent');
    expect((await store.getBatch(batches[1]!.batch.id))?.state).toBe('planned');
  });

  it('a cancel that lands before the plan is stored cancels every batch of it', async () => {
    const { store, requestId, batches, plan } = await setup();
    // The cancel finds no batch yet (the splitter is between reading the request and saving).
    expect(await store.cancelRequest(requestId)).toBe(0);
    await store.savePlan(requestId, plan);
    for (const { batch } of batches) {
      expect(await store.getBatch(batch.id)).toMatchObject({ state: 'failed', error: 'cancelled' });
    }
  });

  it('a cancel fails batches that no call has begun for, and no later claim or call can start', async () => {
    const { store, requestId, batches, plan } = await setup();
    await store.savePlan(requestId, plan);
    const [a, b] = batches.map((r) => r.batch) as [Batch, Batch];
    expect((await store.claim(a, 'run-a')).status).toBe('ok'); // claimed, no call yet
    expect(await store.cancelRequest(requestId)).toBe(2);
    expect((await store.beginCall(a, 'run-a')).status).not.toBe('ok');
    expect((await store.claim(b, 'run-b')).status).not.toBe('ok');
    expect((await store.getBatch(a.id))?.state).toBe('failed');
  });

  it('a batch whose call began is left to finish by a cancel, and a late run cannot begin a call', async () => {
    const { store, requestId, batches, plan } = await setup();
    await store.savePlan(requestId, plan);
    const a = batches[0]!.batch;
    await store.claim(a, 'run-a');
    expect((await store.beginCall(a, 'run-a')).status).toBe('ok');
    expect(await store.cancelRequest(requestId)).toBe(1);
    expect((await store.getBatch(a.id))?.state).toBe('sending');
    // Another run (a takeover) cannot begin a call for a batch it does not own.
    expect((await store.beginCall(a, 'run-b')).status).toBe('lost');
  });
});
