import { describe, expect, it } from 'vitest';
import { readLedger } from '../../src/queue/ledger.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq } from '../helpers/test-smsq.js';

describe('pipeline on the simulator', () => {
  async function start(env: Record<string, string> = {}) {
    const smsq = await startTestSmsq({ api: false, env, logLevel: 'info' });
    return { config: smsq.config, workers: smsq.workers, client: smsq.client, lines: smsq.logs };
  }

  it('completes a 10,000-recipient request with counts adding up to the total', async () => {
    const { client } = await start();
    const to = spanishMobiles(10_000);
    const accepted = await client.send({ to, text: 'Hola, tu cita es mañana' });
    expect(accepted.recipients).toBe(10_000);
    const result = await client.wait(accepted.id, { timeoutMs: 60_000 });
    expect(result.state).toBe('completed');
    expect(result.counts).toEqual({
      total: 10_000,
      accepted: 10_000,
      invalid: 0,
      suppressed: 0,
      rejected: 0,
      failed: 0,
      expired: 0,
      unknown: 0,
    });
    // Simulator: 50 message objects × 100 recipients per request → 2 requests.
    expect(result.batches).toHaveLength(2);
    expect(result.credits.charged).toBe(10_000);
    expect(result.batches.every((b) => b.providerIds.length === 1)).toBe(true);
  });

  it('reports invalid and duplicate numbers and never logs numbers or text', async () => {
    const { client, lines } = await start();
    const accepted = await client.send({
      to: ['+34600000001', '600000001', 'not-a-number', '+34600000002'],
      text: 'Secreto 4321',
    });
    expect(accepted.recipients).toBe(2);
    expect(accepted.duplicates).toBe(1);
    expect(accepted.invalid).toEqual([{ to: 'not-a-number', reason: 'not a phone number' }]);
    const result = await client.wait(accepted.id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 3, accepted: 2, invalid: 1 });
    const logged = lines();
    expect(logged).toContain('Request completed');
    expect(logged).not.toContain('600000001');
    expect(logged).not.toContain('Secreto');
  });

  it('writes one ledger entry per provider request, which outlives the request records', async () => {
    const { client, workers } = await start();
    const before = new Date();
    const { id } = await client.send({ to: spanishMobiles(5_500), text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    const entries = [];
    for await (const e of readLedger(workers.context.redis, workers.context.keys.ledger, { since: before }))
      entries.push(e);
    expect(entries).toHaveLength(2);
    expect(entries.map((e) => e.batchId).sort()).toEqual(result.batches.map((b) => b.id).sort());
    expect(entries.reduce((n, e) => n + e.recipients, 0)).toBe(5_500);
    expect(entries.reduce((n, e) => n + e.creditsCharged, 0)).toBe(result.credits.charged);
    expect(entries.every((e) => e.state === 'sent' && e.requestId === id && e.providerIds.length === 1)).toBe(
      true,
    );
    const later = [];
    for await (const e of readLedger(workers.context.redis, workers.context.keys.ledger, {
      since: new Date(Date.now() + 1000),
    }))
      later.push(e);
    expect(later).toHaveLength(0);
  });

  it('drops suppressed numbers on every send and counts them suppressed', async () => {
    const { client, workers } = await start();
    await workers.context.suppressions.add(['+34600000007', '600000008']);
    const { id } = await client.send({ to: spanishMobiles(10), text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 10, accepted: 8, suppressed: 2 });
    expect(result.batches[0]!.recipients).toBe(8);
  });

  it('returns the same id for a repeated idempotency key and refuses the key with another body', async () => {
    const { client } = await start();
    const first = await client.send({ to: '+34600000001', text: 'Hola' }, { idempotencyKey: 'order-42' });
    const again = await client.send({ to: '+34600000001', text: 'Hola' }, { idempotencyKey: 'order-42' });
    expect(again).toEqual(first);
    await expect(
      client.send({ to: '+34600000001', text: 'Adiós' }, { idempotencyKey: 'order-42' }),
    ).rejects.toThrow(/already used/);
    const result = await client.wait(first.id, { timeoutMs: 20_000 });
    expect(result.counts.accepted).toBe(1);
  });

  it('holds a request with sendAt until then', async () => {
    const { client } = await start();
    const sendAt = new Date(Date.now() + 800).toISOString();
    const { id } = await client.send({ to: '+34600000001', text: 'Hola', sendAt });
    const early = await client.get(id);
    expect(early).toMatchObject({ state: 'queued', batches: [] });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts.accepted).toBe(1);
    expect(Date.parse(result.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(sendAt));
  });

  it('fails, never drops, a request naming a provider these workers do not run', async () => {
    const { client } = await start();
    const { id } = await client.send({ to: ['+34600000001', '+34600000002'], text: 'Hola', provider: 'ovh' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 2, failed: 2 });
    expect(result.batches[0]!.error).toMatch(/not configured/);
  });
});
