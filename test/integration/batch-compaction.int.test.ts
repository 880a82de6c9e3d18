import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { Batch, BatchReceipt, OutboundMessage, ProviderId } from '../../src/message/types.js';
import { duplicateLedgerFields, ledgerFields } from '../../src/queue/ledger.js';
import type { SendJobResult } from '../../src/queue/splitter.js';
import { getRequestSummary } from '../../src/queue/status.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { openTestStore } from '../helpers/store.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

/** Deterministic pseudo-random digits, so numbers and ids do not compress better than real ones. */
function digits(seed: number): () => string {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return String(x % 100_000_000).padStart(8, '0');
  };
}

const OVH_TEXT =
  'Votre rendez-vous est confirmé pour demain à 10h30. Répondez STOP pour ne plus recevoir de messages.';

/**
 * A final batch record is compacted (recipients and texts compressed, provider ids joined, call
 * bookkeeping dropped, rewritten as a small hash) and reads back as the same record; receipts still find the same send,
 * duplicates and late receipts work on it. Real Redis, the record store's own scripts.
 */
describe('final batch records are compacted', () => {
  async function setup(provider: ProviderId, messages: OutboundMessage[]) {
    const { redis, keys, store, requestId } = openTestStore();
    const recipients = messages.flatMap((m) => m.to);
    await store.createRequest({
      id: requestId,
      createdAt: new Date().toISOString(),
      total: recipients.length,
      invalid: [],
      duplicates: 0,
      estimatedCredits: recipients.length,
      accepted: '{}',
    });
    const batch: Batch = {
      id: `${requestId}-0`,
      requestId,
      provider,
      tag: 'sqtag0',
      messages,
      sender: 'ACME',
      estimatedCredits: recipients.length,
    };
    await store.savePlan(requestId, {
      provider,
      suppressed: 0,
      batches: [{ batch, state: 'planned', attempts: 0 }],
    });
    const record = (owner: string, r: BatchReceipt) =>
      store.recordReceipt(batch, r, owner, {
        sent: ledgerFields(batch, 'sent', r),
        duplicate: duplicateLedgerFields(batch, r),
      });
    const bytes = async () => Number(await redis.memory('USAGE', keys.batch(batch.id), 'SAMPLES', 0));
    return { redis, keys, store, requestId, batch, recipients, record, bytes };
  }

  async function sendAndCompact(s: Awaited<ReturnType<typeof setup>>, receipt: BatchReceipt) {
    await s.store.claim(s.batch, 'run-1');
    await s.store.beginCall(s.batch, 'run-1');
    expect((await s.record('run-1', receipt)).outcome).toBe('sent');
    const before = {
      record: await s.store.getBatch(s.batch.id),
      summary: await getRequestSummary(s.store, s.requestId),
      bytes: await s.bytes(),
    };
    expect(await s.store.compactBatches([before.record!])).toBe(1);
    const after = {
      record: await s.store.getBatch(s.batch.id),
      summary: await getRequestSummary(s.store, s.requestId),
      bytes: await s.bytes(),
    };
    const fields = await s.redis.hkeys(s.keys.batch(s.batch.id));
    expect(fields).not.toContain('batch');
    expect(fields).not.toContain('callAt');
    // The same record, read from the other encoding (only the call bookkeeping is gone).
    const { callAt: _callAt, ...kept } = before.record!;
    expect(after.record).toEqual(kept);
    expect(after.summary).toEqual(before.summary);
    return { before, after };
  }

  it('a 500-recipient OVH-like batch (one text, one provider id per recipient) shrinks and reads back the same', async () => {
    const next = digits(7);
    const to = Array.from({ length: 500 }, () => `+336${next()}`);
    const s = await setup('ovh', [{ text: OVH_TEXT, to }]);
    const ids = Array.from({ length: 500 }, () => `1${next()}`);
    const { before, after } = await sendAndCompact(s, {
      providerIds: ids,
      accepted: to.slice(2),
      invalid: to.slice(0, 2),
      creditsCharged: 498,
    });
    console.log(
      `OVH-like 500 recipients: ${before.bytes} B → ${after.bytes} B (${(before.bytes / 500).toFixed(1)} → ${(after.bytes / 500).toFixed(1)} B per recipient)`,
    );
    // What remains is mostly the provider ids (random here, ~10 B each joined), which the receipt
    // script must read as they are.
    expect(after.bytes).toBeLessThan(before.bytes * 0.6);
    expect(after.record?.receipt?.providerIds).toEqual(ids);
    expect(after.summary.counts).toMatchObject({ accepted: 498, invalid: 2 });
  });

  it('a 5,000-recipient Descom-like batch (50 personalised texts × 100 recipients) shrinks and reads back the same', async () => {
    const next = digits(11);
    const messages = Array.from({ length: 50 }, (_, i) => ({
      text: `Hola Cliente ${i + 1}, tu pedido ${next()} está listo para recoger en tienda. Gracias por tu compra.`,
      to: Array.from({ length: 100 }, () => `+346${next()}`),
    }));
    const s = await setup('descom', messages);
    const { before, after } = await sendAndCompact(s, {
      providerIds: ['98765432'],
      accepted: s.recipients,
      invalid: [],
      creditsCharged: 5_000,
    });
    console.log(
      `Descom-like 5,000 recipients: ${before.bytes} B → ${after.bytes} B (${(before.bytes / 5000).toFixed(1)} → ${(after.bytes / 5000).toFixed(1)} B per recipient)`,
    );
    expect(after.bytes).toBeLessThan(before.bytes / 2);
    expect(after.record?.batch).toEqual(s.batch);
  });

  it('a 50-recipient personalised batch (one id per batch) is rewritten as a small hash (listpack)', async () => {
    const next = digits(13);
    const messages = Array.from({ length: 50 }, (_, i) => ({
      text: `Hola Cliente ${i + 1}, tu pedido esta listo para recoger en tienda. Gracias por tu compra.`,
      to: [`+346${next()}`],
    }));
    const s = await setup('simulator', messages);
    await s.redis.expire(s.keys.batch(s.batch.id), 3600);
    const { before, after } = await sendAndCompact(s, {
      providerIds: ['sim-5d71a5d6-6a19-405a-9afb-baa077c1a3b3'],
      accepted: s.recipients,
      invalid: [],
      creditsCharged: 50,
    });
    console.log(
      `Personalised 50 recipients: ${before.bytes} B → ${after.bytes} B (${(before.bytes / 50).toFixed(1)} → ${(after.bytes / 50).toFixed(1)} B per recipient)`,
    );
    expect(await s.redis.object('ENCODING', s.keys.batch(s.batch.id))).toBe('listpack');
    expect(after.bytes).toBeLessThan(before.bytes / 4);
    expect(after.record?.batch).toEqual(s.batch);
    // The rewrite keeps the record's TTL.
    expect(await s.redis.ttl(s.keys.batch(s.batch.id))).toBeGreaterThan(3000);
  });

  it('a record compacted by an earlier version (batch deflated in `batchz`) still reads back', async () => {
    const s = await setup('ovh', [{ text: 'Bonjour', to: spanishMobiles(3) }]);
    const key = s.keys.batch(s.batch.id);
    await s.redis.hdel(key, 'batch');
    await s.redis.hset(key, 'state', 'sent', 'batchz', deflateRawSync(JSON.stringify(s.batch)));
    await s.redis.hset(key, 'receipt', '{"invalid":[],"creditsCharged":3}', 'receiptIds', '1,2,3');
    expect(await s.store.getBatch(s.batch.id)).toMatchObject({
      batch: s.batch,
      state: 'sent',
      receipt: { providerIds: ['1', '2', '3'], creditsCharged: 3 },
    });
  });

  it('on a compacted batch the same send is still recognised, and another acceptance is still a duplicate', async () => {
    const s = await setup('ovh', [{ text: 'Bonjour', to: spanishMobiles(3) }]);
    const receipt = (ids: string[]): BatchReceipt => ({
      providerIds: ids,
      accepted: s.recipients,
      invalid: [],
      creditsCharged: 3,
    });
    await sendAndCompact(s, receipt(['1', '2', '3']));
    expect((await s.record('run-2', receipt(['3', '2', '1']))).outcome).toBe('same');
    expect((await s.record('run-3', receipt(['4', '5', '6']))).outcome).toBe('duplicate');
    const summary = await getRequestSummary(s.store, s.requestId);
    expect(summary.duplicatesSent).toBe(3);
    expect(summary.batches[0]).toMatchObject({ duplicates: 1, providerIds: ['1', '2', '3'] });
  });

  it('a late receipt on a compacted unknown batch makes it sent with that receipt', async () => {
    const s = await setup('ovh', [{ text: 'Bonjour', to: spanishMobiles(3) }]);
    await s.store.claim(s.batch, 'run-1');
    await s.store.beginCall(s.batch, 'run-1');
    await s.store.transition(s.batch, ['sending'], 'unknown', {
      ifOwner: 'run-1',
      ledger: ledgerFields(s.batch, 'unknown'),
    });
    const unknown = await s.store.getBatch(s.batch.id);
    expect(await s.store.compactBatches([unknown!])).toBe(1);
    expect(await s.store.compactBatches([unknown!])).toBe(0); // once
    const late = { providerIds: ['7', '8'], accepted: s.recipients, invalid: [], creditsCharged: 3 };
    expect(await s.record('run-1', late)).toEqual({ outcome: 'late', previous: 'unknown' });
    const sent = await s.store.getBatch(s.batch.id);
    expect(sent).toMatchObject({
      state: 'sent',
      batch: s.batch,
      receipt: { providerIds: ['7', '8'], creditsCharged: 3 },
    });
    // …and compacting it again keeps that receipt.
    expect(await s.store.compactBatches([sent!])).toBe(0);
    expect((await s.record('run-2', late)).outcome).toBe('same');
  });

  it('a batch not yet final is left as it is', async () => {
    const s = await setup('ovh', [{ text: 'Bonjour', to: spanishMobiles(3) }]);
    await s.store.claim(s.batch, 'run-1');
    const sending = await s.store.getBatch(s.batch.id);
    expect(await s.store.compactBatches([sending!])).toBe(0);
    expect(await s.redis.hexists(s.keys.batch(s.batch.id), 'batch')).toBe(1);
  });
});

describe('a completed request keeps each recipient once, compactly', () => {
  it('its send job keeps no recipients nor provider ids, and its batch records are compacted', async () => {
    const p = await startTestSmsq({ api: false });
    const to = spanishMobiles(250);
    const { id } = await p.client.send({ to, text: 'Hola, tu cita es mañana' });
    const result = await p.client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 250, accepted: 250 });
    const job = p.workers.context.sendQueue('bulk').getJob(id);
    await eventually(async () => (await (await job)?.getState()) === 'completed');
    const completed = (await p.workers.context.sendQueue('bulk').getJob(id))!;
    expect(completed.data.messages).toEqual([]);
    const stored = JSON.stringify({
      data: completed.data,
      returnvalue: completed.returnvalue as SendJobResult,
    });
    expect(stored).not.toContain('+34600000');
    expect(stored).not.toContain('sim-');
    expect((completed.returnvalue as SendJobResult).counts.accepted).toBe(250);
    const { keys } = p.workers.context;
    for (const batch of result.batches) {
      expect(await p.workers.context.redis.hexists(keys.batch(batch.id), 'batch')).toBe(0);
      expect(
        (await p.workers.context.store.getBatch(batch.id))?.batch.messages.flatMap((m) => m.to),
      ).toHaveLength(batch.recipients);
    }
    expect(await p.client.get(id)).toEqual(result);
  });
});
