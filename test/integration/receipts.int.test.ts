import { describe, expect, it } from 'vitest';
import { createSmsqMetrics, LedgerFollower } from '../../src/http/metrics.js';
import type { Batch, BatchReceipt } from '../../src/message/types.js';
import { duplicateLedgerFields, ledgerFields, readLedger } from '../../src/queue/ledger.js';
import { getRequestSummary } from '../../src/queue/status.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { openTestStore } from '../helpers/store.js';

/**
 * A receipt is proof that a batch was sent, whoever holds the batch when it arrives: late ones
 * upgrade a batch recorded unknown or failed, a second acceptance of a batch already sent is a
 * duplicate, and neither is ever silent (ledger line, request count, metric). Real Redis, the
 * record store's own scripts.
 */
describe('late and duplicate receipts', () => {
  async function setup() {
    const { redis, keys, store, requestId } = openTestStore();
    await store.createRequest({
      id: requestId,
      createdAt: new Date().toISOString(),
      total: 3,
      invalid: [],
      duplicates: 0,
      estimatedCredits: 3,
      accepted: '{}',
    });
    const batch: Batch = {
      id: `${requestId}-0`,
      requestId,
      provider: 'ovh',
      tag: 'tag0',
      messages: [{ text: 'Bonjour', to: spanishMobiles(3) }],
      estimatedCredits: 3,
    };
    await store.savePlan(requestId, {
      provider: 'ovh',
      suppressed: 0,
      batches: [{ batch, state: 'planned', attempts: 0 }],
    });
    const receipt = (ids: string[]): BatchReceipt => ({
      providerIds: ids,
      accepted: batch.messages[0]!.to,
      invalid: [],
      creditsCharged: 3,
    });
    const record = (owner: string, r: BatchReceipt) =>
      store.recordReceipt(batch, r, owner, {
        sent: ledgerFields(batch, 'sent', r),
        duplicate: duplicateLedgerFields(batch, r),
      });
    const ledger = async () => {
      const entries = [];
      for await (const e of readLedger(redis, keys.ledger)) entries.push(e);
      return entries;
    };
    return { redis, keys, store, requestId, batch, receipt, record, ledger };
  }

  it('a receipt for a batch already recorded unknown upgrades it to sent, with a ledger line that says so', async () => {
    const { store, requestId, batch, receipt, record, ledger } = await setup();
    await store.claim(batch, 'run-1');
    await store.beginCall(batch, 'run-1');
    await store.transition(batch, ['sending'], 'unknown', {
      ifOwner: 'run-1',
      ledger: ledgerFields(batch, 'unknown'),
    });
    expect((await getRequestSummary(store, requestId)).counts.unknown).toBe(3);

    expect(await record('run-1', receipt(['7']))).toEqual({ outcome: 'late', previous: 'unknown' });
    const summary = await getRequestSummary(store, requestId);
    expect(summary.counts).toMatchObject({ accepted: 3, unknown: 0 });
    expect(summary.batches[0]).toMatchObject({ state: 'sent', providerIds: ['7'] });
    const lines = await ledger();
    expect(lines.map((l) => l.state)).toEqual(['unknown', 'sent']);
    expect(lines[1]).toMatchObject({ note: 'late', previousState: 'unknown', accepted: 3 });
  });

  it('a receipt from a run that lost the batch is kept (the batch is sent), and its owner cannot settle it after', async () => {
    const { store, batch, receipt, record } = await setup();
    await store.claim(batch, 'stale');
    await store.beginCall(batch, 'stale');
    // The successor takes the batch over (the stale run is fenced out)…
    expect(
      (await store.transition(batch, ['sending'], 'sending', { ifOwner: 'stale', setOwner: 'next' })).ok,
    ).toBe(true);
    // …the stale run's own error cannot settle it…
    expect((await store.transition(batch, ['sending'], 'unknown', { ifOwner: 'stale' })).ok).toBe(false);
    // …but its receipt is proof, and is recorded.
    expect((await record('stale', receipt(['9']))).outcome).toBe('taken-over');
    expect((await store.getBatch(batch.id))?.state).toBe('sent');
  });

  it('the same send reported twice is recorded once; a second acceptance is a duplicate: ledger, request count, metric', async () => {
    const { redis, keys, store, requestId, batch, receipt, record, ledger } = await setup();
    await store.claim(batch, 'run-1');
    await store.beginCall(batch, 'run-1');
    expect((await record('run-1', receipt(['1', '2', '3']))).outcome).toBe('sent');
    // The lookup of the same send finds the same ids: not a duplicate.
    expect((await record('run-2', receipt(['3', '2', '1']))).outcome).toBe('same');
    // Another POST was accepted too (different ids): every recipient got it twice.
    expect((await record('run-3', receipt(['4', '5', '6']))).outcome).toBe('duplicate');

    const summary = await getRequestSummary(store, requestId);
    expect(summary.duplicatesSent).toBe(3);
    expect(summary.counts).toMatchObject({ total: 3, accepted: 3 });
    expect(summary.batches[0]).toMatchObject({ duplicates: 1, providerIds: ['1', '2', '3'] });
    const lines = await ledger();
    expect(lines.map((l) => l.state)).toEqual(['sent', 'duplicate']);
    expect(lines[1]).toMatchObject({ accepted: 3, creditsCharged: 3, providerIds: ['4', '5', '6'] });

    const metrics = createSmsqMetrics({ defaultMetrics: false });
    await new LedgerFollower(redis, keys.ledger, metrics, { since: 0 }).catchUp();
    expect(await metrics.registry.getSingleMetricAsString('smsq_duplicate_sends_total')).toMatch(
      /smsq_duplicate_sends_total\{provider="ovh"\} 3/,
    );
  });
});
