/**
 * What every provider of the registry must do, against its loopback fake (or in-process): the
 * same tests for each, driven by its conformance adapter (test/helpers/conformance/). A new
 * provider gets them by adding its adapter; its own quirks stay in its own test file.
 */
import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import { beforeEach, describe, expect, it } from 'vitest';
import { isDeliveryError, type RateLimitedError } from '../../src/errors.js';
import { planBatches } from '../../src/message/batch-plan.js';
import { analyzeText } from '../../src/message/segments.js';
import type { Batch, BatchReceipt, OutboundMessage } from '../../src/message/types.js';
import { PROVIDER_MODULES } from '../../src/providers/index.js';
import { CONFORMANCE_ADAPTERS } from '../helpers/conformance/index.js';
import { recipientsOf, type ConformanceHarness, type FaultPlan } from '../helpers/conformance/types.js';
import { onTeardown } from '../helpers/teardown.js';

/**
 * Every provider call ends within this (the shared total deadline): hangs take this long. Not
 * shorter: a 500-receiver OVH job signed and posted over TLS by the real client takes a few
 * hundred ms on a loaded two-core machine, and must not hit the deadline.
 */
const TIMEOUT_MS = 1_500;

const number = (i: number) => `+34600${String(i).padStart(6, '0')}`;

function batchOf(provider: string, messages: OutboundMessage[], i = 0): Batch {
  return {
    id: `b${i}`,
    requestId: 'r1',
    provider,
    // Unique and ≤ 20 characters, as the splitter makes them.
    tag: `c${randomBytes(4).toString('hex')}${i}`,
    messages,
    estimatedCredits: messages.reduce((n, m) => n + analyzeText(m.text).segments * m.to.length, 0),
  };
}

const smallBatch = (provider: string) =>
  batchOf(provider, [{ text: 'Hola, tu código es 1234', to: [number(1), number(2)] }]);

const signal = () => new AbortController().signal;

/** The error a call rejected with (fails the test when it resolved). */
async function failure(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    (value) => {
      throw new Error(`expected a failure, got ${JSON.stringify(value)}`);
    },
    (err: unknown) => err,
  );
}

function play(h: ConformanceHarness, batch: Batch, plan: FaultPlan): Promise<BatchReceipt | undefined> {
  const provider = plan.provider ?? h.provider;
  const target = plan.batch ?? batch;
  const opts = { signal: plan.signal ?? signal() };
  if (plan.call !== 'lookup') return provider.send(target, opts);
  if (!provider.lookup) throw new Error(`${provider.id} has no lookup`);
  return provider.lookup(target, { ...opts, sendingSince: Date.now() - 60_000 });
}

describe.each(PROVIDER_MODULES.map((m) => [m.id, m] as const))('provider %s', (id, module) => {
  const adapter = CONFORMANCE_ADAPTERS[id];
  let h: ConformanceHarness;

  beforeEach(async () => {
    if (!adapter) throw new Error(`no conformance adapter for ${id} in test/helpers/conformance/index.ts`);
    const started = await adapter.start({ timeoutMs: TIMEOUT_MS });
    onTeardown(`${id} conformance harness`, () => started.close());
    h = started;
  });

  it('accounts for every row of its decision table: a scripted fault, or why none can reach it', () => {
    const rows = module.decisions.map((d) => d.when).sort();
    expect([...Object.keys(h.faults), ...Object.keys(h.unreachable)].sort()).toEqual(rows);
  });

  it.each(module.decisions.map((d) => [d.when, d] as const))(
    'reaches the row "%s" and decides as it says',
    async (when, row) => {
      const fault = h.faults[when];
      if (!fault) {
        expect(h.unreachable[when]).toBeTruthy();
        return;
      }
      const batch = smallBatch(id);
      const plan = (await fault(batch)) ?? {};
      const before = h.delivered().length;
      const outcome = play(h, batch, plan);
      if (row.kind === 'sent') {
        const receipt = await outcome;
        expect(receipt?.accepted.length).toBe(recipientsOf(batch).length);
        expect(receipt?.creditsCharged).toBeGreaterThan(0);
        expect(h.delivered().length).toBe(before + recipientsOf(batch).length);
        return;
      }
      const err = await failure(outcome);
      expect(isDeliveryError(err), String(err)).toBe(true);
      expect(err).toMatchObject({ kind: row.kind, code: row.code });
      // "Did not act" is a promise the fake can check: nothing of the batch was delivered.
      if (!row.mayHaveLeft) expect(h.delivered().length).toBe(before);
    },
  );

  it('answers a 2xx with `sent`: provider ids, credits, every recipient', async () => {
    const batch = smallBatch(id);
    const receipt = await h.provider.send(batch, { signal: signal() });
    expect(receipt.providerIds.length).toBeGreaterThan(0);
    expect(receipt.creditsCharged).toBeGreaterThan(0);
    expect(receipt.creditsEstimated).toBeFalsy();
    expect([...receipt.accepted, ...receipt.invalid].sort()).toEqual(recipientsOf(batch).sort());
  });

  it('says once, before it answers, that its request is being written (the allowance counts it from then)', async () => {
    const written: number[] = [];
    await h.provider.send(smallBatch(id), { signal: signal(), onWritten: () => written.push(Date.now()) });
    const answeredAt = Date.now();
    expect(written).toHaveLength(1);
    expect(written[0]).toBeLessThanOrEqual(answeredAt);
  });

  it.each([1, 2, 99, 100, 101, 499, 500, 501, 5_000, 10_000])(
    'plans %i recipients over mixed texts within its limits, and sends each exactly once',
    async (count) => {
      const texts = ['Hola', 'Привет, это сообщение на русском', `Larga ${'x'.repeat(300)}`];
      const messages = texts
        .map((text, t) => ({
          text,
          to: Array.from({ length: count }, (_, i) => i)
            .filter((i) => i % texts.length === t)
            .map(number),
        }))
        .filter((m) => m.to.length > 0);
      h.setCredits(1_000_000);
      const { limits } = h.provider;
      const planned = planBatches(messages, limits);
      for (const p of planned) {
        expect(p.messages.length).toBeLessThanOrEqual(limits.maxMessagesPerRequest);
        for (const m of p.messages) expect(m.to.length).toBeLessThanOrEqual(limits.maxRecipientsPerMessage);
      }
      const all = messages.flatMap((m) => m.to).sort();
      expect(planned.flatMap((p) => p.messages.flatMap((m) => m.to)).sort()).toEqual(all);

      const limit = pLimit(4);
      const receipts = await Promise.all(
        planned.map((p, i) => limit(() => h.provider.send(batchOf(id, p.messages, i), { signal: signal() }))),
      );
      expect(receipts.flatMap((r) => r.accepted).sort()).toEqual(all);
      expect(h.delivered().sort()).toEqual(all);
    },
    60_000,
  );

  it('calls a drop after the provider acted ambiguous (and the batch was delivered)', async () => {
    const batch = smallBatch(id);
    await h.faults[h.dropAfterSend]?.(batch);
    const err = await failure(h.provider.send(batch, { signal: signal() }));
    expect(err).toMatchObject({ kind: 'ambiguous' });
    expect(h.delivered()).toEqual(expect.arrayContaining(recipientsOf(batch)));
  });

  it('calls a provider that never answers ambiguous, within the total deadline', async () => {
    const batch = smallBatch(id);
    await h.faults[h.hang]?.(batch);
    const started = Date.now();
    const err = await failure(h.provider.send(batch, { signal: signal() }));
    expect(err).toMatchObject({ kind: 'ambiguous' });
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1_000);
  });

  it('waits as a 429 Retry-After says, having sent nothing', async () => {
    h.rateLimitNext('3');
    const err = await failure(h.provider.send(smallBatch(id), { signal: signal() }));
    expect(err).toMatchObject({ kind: 'rate-limited' });
    expect((err as RateLimitedError).retryAfterMs).toBe(3_000);
    expect(h.delivered()).toEqual([]);
  });

  it('pauses on an empty account: AccountError, probe false until a top-up, then true, and the send goes', async () => {
    const batch = smallBatch(id);
    h.setCredits(0);
    const err = await failure(h.provider.send(batch, { signal: signal() }));
    expect(err).toMatchObject({ kind: 'account' });
    await expect(h.provider.probe({ signal: signal(), neededCredits: batch.estimatedCredits })).resolves.toBe(
      false,
    );
    h.setCredits(1_000);
    await expect(h.provider.probe({ signal: signal(), neededCredits: batch.estimatedCredits })).resolves.toBe(
      true,
    );
    await expect(h.provider.send(batch, { signal: signal() })).resolves.toMatchObject({
      accepted: recipientsOf(batch),
    });
    expect(h.delivered()).toEqual(recipientsOf(batch));
  });

  it('has a lookup exactly when its adapter says so', () => {
    expect(typeof h.provider.lookup === 'function').toBe(adapter?.lookup);
  });

  describe.runIf(adapter?.lookup)('lookup', () => {
    const lookup = (batch: Batch) =>
      h.provider.lookup!(batch, { signal: signal(), sendingSince: Date.now() - 60_000 });

    it('finds a sent batch with the ids its send returned', async () => {
      const batch = smallBatch(id);
      const receipt = await h.provider.send(batch, { signal: signal() });
      const found = await lookup(batch);
      expect(found?.providerIds.sort()).toEqual(receipt.providerIds.sort());
      expect(found?.accepted.sort()).toEqual(recipientsOf(batch).sort());
    });

    it('finds nothing for a batch never sent', async () => {
      await expect(lookup(smallBatch(id))).resolves.toBeUndefined();
    });

    it('finds a batch whose answer was lost after the provider acted', async () => {
      const batch = smallBatch(id);
      await h.faults[h.dropAfterSend]?.(batch);
      await failure(h.provider.send(batch, { signal: signal() }));
      const found = await lookup(batch);
      expect(found?.accepted.sort()).toEqual(recipientsOf(batch).sort());
    });
  });
});
