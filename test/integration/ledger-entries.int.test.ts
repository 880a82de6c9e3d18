import { describe, expect, it } from 'vitest';
import type { Batch, BatchReceipt } from '../../src/message/types.js';
import { duplicateLedgerFields, ledgerFields, readLedger, type LedgerEntry } from '../../src/queue/ledger.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { openTestStore } from '../helpers/store.js';

/**
 * A ledger line is written with only what cannot be derived (time, request id, segments and the
 * usual `accepted` come back on reading) and reads back whole; lines written by earlier versions,
 * with every field, read back the same. Real Redis.
 */
describe('ledger entries', () => {
  const to = spanishMobiles(4);
  const batch: Batch = {
    id: 'r0123456789abcdef0123456789abcdef-3',
    requestId: 'r0123456789abcdef0123456789abcdef',
    provider: 'ovh',
    tag: 'sqtag3',
    messages: [{ text: 'Hola', to }],
    estimatedCredits: 8,
  };
  const receipt: BatchReceipt = {
    providerIds: ['11', '12', '13'],
    accepted: to.slice(1),
    invalid: to.slice(0, 1),
    creditsCharged: 6,
  };

  async function roundTrip(fields: Record<string, string>): Promise<{ entry: LedgerEntry; ms: number }> {
    const { redis, keys } = openTestStore();
    const id = await redis.xadd(keys.ledger, '*', ...Object.entries(fields).flat());
    const entries: LedgerEntry[] = [];
    for await (const entry of readLedger(redis, keys.ledger)) entries.push(entry);
    expect(entries).toHaveLength(1);
    return { entry: entries[0]!, ms: Number(id!.split('-')[0]) };
  }

  it('a sent line leaves out what reading derives, and reads back whole', async () => {
    const fields = ledgerFields(batch, 'sent', receipt);
    for (const derived of ['at', 'requestId', 'segments', 'accepted', 'creditsChargedIsEstimate'])
      expect(fields).not.toHaveProperty(derived);
    const { entry, ms } = await roundTrip(fields);
    expect(entry).toEqual({
      entryId: expect.any(String) as string,
      at: new Date(ms).toISOString(),
      requestId: batch.requestId,
      batchId: batch.id,
      provider: 'ovh',
      state: 'sent',
      recipients: 4,
      accepted: 3,
      invalid: 1,
      segments: 8,
      creditsEstimated: 8,
      creditsCharged: 6,
      creditsChargedIsEstimate: false,
      providerIds: ['11', '12', '13'],
    });
  });

  it('unknown and duplicate lines read back their accepted count and estimate flag', async () => {
    const unknown = await roundTrip(ledgerFields(batch, 'unknown'));
    expect(unknown.entry).toMatchObject({
      state: 'unknown',
      accepted: 0,
      invalid: 0,
      creditsCharged: 8,
      creditsChargedIsEstimate: true,
    });
    const duplicate = await roundTrip(duplicateLedgerFields(batch, { ...receipt, creditsEstimated: true }));
    expect(duplicate.entry).toMatchObject({
      state: 'duplicate',
      accepted: 3,
      invalid: 1,
      creditsChargedIsEstimate: true,
    });
  });

  it('keeps the request id of a batch whose id does not start with it', async () => {
    const other = { ...batch, id: 'elsewhere-1', requestId: 'req-with-dash' };
    const fields = ledgerFields(other, 'rejected');
    expect(fields.requestId).toBe('req-with-dash');
    const { entry } = await roundTrip(fields);
    expect(entry).toMatchObject({ requestId: 'req-with-dash', batchId: 'elsewhere-1', accepted: 0 });
  });

  it('a line with every field (written by an earlier version) reads back as it was written', async () => {
    const { entry } = await roundTrip({
      at: '2026-01-02T03:04:05.678Z',
      requestId: 'r-old',
      batchId: 'r-old-0',
      provider: 'simulator',
      state: 'sent',
      recipients: '5',
      accepted: '5',
      invalid: '0',
      segments: '10',
      creditsEstimated: '10',
      creditsCharged: '10',
      creditsChargedIsEstimate: 'false',
      providerIds: '["sim-1"]',
    });
    expect(entry).toMatchObject({
      at: '2026-01-02T03:04:05.678Z',
      requestId: 'r-old',
      accepted: 5,
      segments: 10,
      creditsChargedIsEstimate: false,
      providerIds: ['sim-1'],
    });
  });
});
