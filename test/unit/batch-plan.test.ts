import { describe, expect, it } from 'vitest';
import { planBatches } from '../../src/message/batch-plan.js';
import type { OutboundMessage } from '../../src/message/types.js';
import { spanishMobiles } from '../helpers/numbers.js';

const DESCOM = { maxMessagesPerRequest: 50, maxRecipientsPerMessage: 100 };
const OVH = { maxMessagesPerRequest: 1, maxRecipientsPerMessage: 500 };

function recipientsOf(batches: ReturnType<typeof planBatches>): string[] {
  return batches.flatMap((b) => b.messages.flatMap((m) => m.to));
}

describe('planBatches', () => {
  it.each([1, 2, 99, 100, 101, 4_999, 5_000, 5_001, 10_000])(
    'packs %i recipients of one text into the fewest Descom requests within 50 × 100',
    (n) => {
      const to = spanishMobiles(n);
      const batches = planBatches([{ text: 'Hola', to }], DESCOM);
      expect(batches).toHaveLength(Math.ceil(n / 5_000));
      for (const batch of batches) {
        expect(batch.messages.length).toBeLessThanOrEqual(50);
        for (const m of batch.messages) expect(m.to.length).toBeLessThanOrEqual(100);
      }
      expect(recipientsOf(batches)).toEqual(to);
    },
  );

  it.each([1, 499, 500, 501, 10_000])(
    'cuts %i recipients into OVH jobs of ≤ 500 receivers, one text each',
    (n) => {
      const to = spanishMobiles(n);
      const batches = planBatches([{ text: 'Bonjour', to }], OVH);
      expect(batches).toHaveLength(Math.ceil(n / 500));
      for (const batch of batches) {
        expect(batch.messages).toHaveLength(1);
        expect(batch.messages[0]!.to.length).toBeLessThanOrEqual(500);
      }
      expect(recipientsOf(batches)).toEqual(to);
    },
  );

  it('merges messages with the same text and keeps different texts in separate message objects', () => {
    const numbers = spanishMobiles(350);
    const messages: OutboundMessage[] = [
      { text: 'A', to: numbers.slice(0, 150) },
      { text: 'B', to: numbers.slice(150, 200) },
      { text: 'A', to: numbers.slice(200, 350) },
    ];
    const descom = planBatches(messages, DESCOM);
    expect(descom).toHaveLength(1);
    expect(descom[0]!.messages.map((m) => [m.text, m.to.length])).toEqual([
      ['A', 100],
      ['A', 100],
      ['A', 100],
      ['B', 50],
    ]);
    const ovh = planBatches(messages, OVH);
    expect(ovh.map((b) => [b.messages[0]!.text, b.messages[0]!.to.length])).toEqual([
      ['A', 300],
      ['B', 50],
    ]);
  });

  it('keeps every recipient of a 10,000-recipient mixed-text request exactly once', () => {
    const numbers = spanishMobiles(10_000);
    // Every row its own text (a mail merge): 10,000 message objects of one recipient each.
    const messages = numbers.map((to, i) => ({ text: `Hola ${i}`, to: [to] }));
    const batches = planBatches(messages, DESCOM);
    expect(batches).toHaveLength(200);
    expect(batches.every((b) => b.messages.length <= 50)).toBe(true);
    expect(new Set(recipientsOf(batches)).size).toBe(10_000);
  });

  it('is deterministic: the same request gives the same plan', () => {
    const messages = [{ text: 'x', to: spanishMobiles(1234) }];
    expect(planBatches(messages, DESCOM)).toEqual(planBatches(messages, DESCOM));
  });
});
