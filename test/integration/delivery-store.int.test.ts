import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { behindSends } from '../../src/queue/delivery-meter.js';
import { DeliveryStore } from '../../src/queue/delivery-store.js';
import { sendsWaiting } from '../../src/queue/delivery-worker.js';
import { openTestStore } from '../helpers/store.js';
import { onTeardown } from '../helpers/teardown.js';
import { NOTHING_COUNTED } from '../../src/providers/types.js';

describe('delivery state scripts', () => {
  async function sentBatch(store: DeliveryStore, requestId: string, accepted: boolean[]) {
    await store.initBatch({
      batchId: `${requestId}-0`,
      requestId,
      provider: 'ovh',
      accepted,
      sentAt: 1_000_000,
      horizonAt: 2_000_000,
      numericIds: accepted.map((_, i) => 500 + i),
      ttlMs: 60_000,
    });
    return { requestId, provider: 'ovh' as const, sentAt: 1_000_000 };
  }

  it('records a final status once: a second report changes nothing, counts nothing, pushes nothing', async () => {
    const t = openTestStore();
    const store = new DeliveryStore(t.redis, t.keys);
    const { requestId, redis, keys } = { ...t, requestId: t.requestId };
    await redis.hset(
      keys.request(requestId),
      'id',
      requestId,
      'state',
      'completed',
      'webhookUrl',
      'https://x.test/h',
    );
    const state = await sentBatch(store, requestId, [true, false, true]);
    const first = {
      index: 0,
      status: 'delivered' as const,
      at: 1_004_000,
      code: '4',
      to: '+34600000001',
      providerId: '500',
    };
    expect(await store.apply(`${requestId}-0`, state, [first])).toBe(1);
    // The same recipient again, reported undelivered by the other path: the first status stands.
    expect(await store.apply(`${requestId}-0`, state, [{ ...first, status: 'undelivered', code: '2' }])).toBe(
      0,
    );
    // Not accepted (index 1) is never given a status.
    expect(await store.apply(`${requestId}-0`, state, [{ ...first, index: 1 }])).toBe(0);
    expect(
      await store.apply(`${requestId}-0`, state, [
        { index: 2, status: 'undelivered', at: 1_002_500, code: 'LONGCODE', to: '+34600000003' },
      ]),
    ).toBe(1);

    const batch = await store.getBatch(`${requestId}-0`);
    expect(batch!.recipients).toEqual([
      { status: 'delivered', at: new Date(1_004_000).toISOString(), code: '4' },
      null,
      { status: 'undelivered', at: new Date(1_002_500).toISOString(), code: 'LONGCODE' },
    ]);
    expect(await store.getRequestFinals(requestId)).toEqual({
      delivered: 1,
      undelivered: 1,
      expired: 0,
      unreported: 0,
    });
    const updates = (await redis.lrange(keys.webhookUpdates(requestId), 0, -1)).map(
      (u) => JSON.parse(u) as unknown,
    );
    expect(updates).toEqual([
      {
        to: '+34600000001',
        status: 'delivered',
        at: new Date(1_004_000).toISOString(),
        code: '4',
        provider: 'ovh',
        providerId: '500',
      },
      {
        to: '+34600000003',
        status: 'undelivered',
        at: new Date(1_002_500).toISOString(),
        code: 'LONGCODE',
        provider: 'ovh',
      },
      {
        type: 'delivered',
        delivery: { pending: 0, delivered: 1, undelivered: 1, expired: 0, unreported: 0 },
      },
    ]);
    // Completing again (a re-run) pushes no second `delivered` entry.
    expect(await store.requestCompleted(requestId, 60_000)).toBe(false);
    const stats = await store.getStats();
    // Latencies 4 s and 2.5 s after the send: both in the 5-s bucket, none in the 1-s one.
    expect(stats).toMatchObject({
      'ovh|delivered': '1',
      'ovh|undelivered': '1',
      'ovh|count': '2',
      'ovh|le|5': '2',
    });
    expect(stats['ovh|le|1']).toBeUndefined();
    expect(await store.batchesForId('ovh', 501)).toEqual([`${requestId}-0`]);
    expect(await store.batchesForId('ovh', 503)).toEqual([]);
  });

  it('keeps a batch without provider-id range or notes in one key; a hash made later lives as long as it', async () => {
    const t = openTestStore();
    const store = new DeliveryStore(t.redis, t.keys);
    const batchId = `${t.requestId}-0`;
    await store.initBatch({
      batchId,
      requestId: t.requestId,
      provider: 'simulator',
      accepted: [true, true, false],
      sentAt: 1_000_000,
      // A scaled schedule (SMSQ_DLR_POLL_MS) may give a fractional horizon.
      horizonAt: 2_000_000.5,
      ttlMs: 60_000,
    });
    expect(await t.redis.exists(t.keys.deliveryBatch(batchId))).toBe(0);
    const state = { requestId: t.requestId, provider: 'simulator', sentAt: 1_000_000 };
    // An index past the records (the batch has 3) never writes into what follows them.
    expect(
      await store.apply(batchId, state, [
        { index: 3, status: 'delivered', at: 1_001_000, to: '+34600000004' },
        { index: 9, status: 'delivered', at: 1_001_000, to: '+34600000010' },
      ]),
    ).toBe(0);
    expect(
      await store.apply(batchId, state, [
        { index: 1, status: 'undelivered', at: 1_001_000, code: 'LONGCODE', to: '+34600000002' },
      ]),
    ).toBe(1);
    await store.setNotes(batchId, { order: 'kept' });
    expect(await store.getBatch(batchId)).toEqual({
      requestId: t.requestId,
      provider: 'simulator',
      sentAt: 1_000_000,
      horizonAt: 2_000_000.5,
      recipients: [
        { status: 'pending' },
        { status: 'undelivered', at: new Date(1_001_000).toISOString(), code: 'LONGCODE' },
        null,
      ],
      notes: { order: 'kept' },
    });
    expect(await t.redis.pttl(t.keys.deliveryBatch(batchId))).toBeGreaterThan(50_000);
  });

  it('reads and updates a state written by an earlier version (batch fields in the bookkeeping hash)', async () => {
    const t = openTestStore();
    const store = new DeliveryStore(t.redis, t.keys);
    const batchId = `${t.requestId}-0`;
    await t.redis.set(t.keys.delivery(batchId), `p${'\0'.repeat(4)}   p${'\0'.repeat(4)}   `, 'PX', 60_000);
    await t.redis.hset(
      t.keys.deliveryBatch(batchId),
      'requestId',
      t.requestId,
      'provider',
      'ovh',
      'sentAt',
      '1000000',
      'horizonAt',
      '2000000',
      'accepted',
      '2',
    );
    const state = { requestId: t.requestId, provider: 'ovh', sentAt: 1_000_000 };
    expect(
      await store.apply(batchId, state, [
        { index: 1, status: 'delivered', at: 1_003_000, to: '+34600000002' },
      ]),
    ).toBe(1);
    expect(await store.getBatch(batchId)).toEqual({
      requestId: t.requestId,
      provider: 'ovh',
      sentAt: 1_000_000,
      horizonAt: 2_000_000,
      recipients: [{ status: 'pending' }, { status: 'delivered', at: new Date(1_003_000).toISOString() }],
      notes: {},
    });
  });

  it('pushes nothing without a webhook target, and the delivered entry at completion when nothing was accepted', async () => {
    const t = openTestStore();
    const store = new DeliveryStore(t.redis, t.keys);
    const { redis, keys, requestId } = t;
    await redis.hset(keys.request(requestId), 'id', requestId, 'state', 'completed');
    const state = await sentBatch(store, requestId, [true]);
    await store.apply(`${requestId}-0`, state, [
      { index: 0, status: 'delivered', at: 1_001_000, to: '+34600000001' },
    ]);
    expect(await redis.exists(keys.webhookUpdates(requestId))).toBe(0);

    const other = `${requestId}b`;
    await redis.hset(
      keys.request(other),
      'id',
      other,
      'state',
      'completed',
      'webhookUrl',
      'https://x.test/h',
    );
    expect(await store.requestCompleted(other, 60_000)).toBe(true);
    const entries = (await redis.lrange(keys.webhookUpdates(other), 0, -1)).map(
      (u) => JSON.parse(u) as unknown,
    );
    expect(entries).toEqual([
      {
        type: 'delivered',
        delivery: { pending: 0, delivered: 0, undelivered: 0, expired: 0, unreported: 0 },
      },
    ]);
    expect(await redis.pttl(keys.deliveryRequest(other))).toBeGreaterThan(0);
  });
});

describe('report calls behind sends', () => {
  it('waits while the provider has sends waiting in either lane, then takes the allowance', async () => {
    const t = openTestStore();
    const prefix = t.keys.ledger.slice(0, -':ledger'.length);
    const lanes = {
      priority: new Queue('batch-ovh-priority', { connection: t.redis, prefix }),
      bulk: new Queue('batch-ovh', { connection: t.redis, prefix }),
    };
    onTeardown('batch queues', async () => {
      await Promise.all([lanes.priority.close(), lanes.bulk.close()]);
    });
    let taken = 0;
    const meter = behindSends(
      () => {
        taken++;
        return Promise.resolve(NOTHING_COUNTED);
      },
      () => sendsWaiting(lanes),
    );
    for (const queue of [lanes.priority, lanes.bulk]) {
      const job = await queue.add('batch', { batchId: 'b', requestId: 'r' });
      const before = taken;
      const waiting = meter(new AbortController().signal);
      await new Promise((r) => setTimeout(r, 500));
      expect(taken).toBe(before);
      await job.remove();
      await waiting;
      expect(taken).toBe(before + 1);
    }
    // A paused provider sends nothing: reports do not wait for it.
    await lanes.bulk.add('batch', { batchId: 'b2', requestId: 'r' });
    await lanes.bulk.pause();
    await meter(new AbortController().signal);
    expect(taken).toBe(3);
  });
});
