import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq } from '../helpers/test-smsq.js';

/**
 * A batch job can end without its processor settling the batch (it threw before the claim, or
 * stalled too often): the request still completes, with that batch failed (never sent) rather
 * than left `planned`, and its final record compacted like any other.
 */
describe('a request whose batch job ended without settling its batch', () => {
  it('completes with that batch failed, "batch job ended unsent", and compacted', async () => {
    const smsq = await startTestSmsq({
      api: false,
      logLevel: 'info',
      // Every batch job fails at its send-window check, before any claim: nothing is sent.
      workerOptions: {
        holdUntil: () => {
          throw new UnrecoverableError('send-window check broke');
        },
      },
    });
    const to = spanishMobiles(3);
    const { id } = await smsq.client.send({ to, text: 'Hola' });
    const result = await smsq.client.wait(id, { timeoutMs: 20_000 });
    expect(result.state).toBe('completed');
    expect(result.counts).toMatchObject({ total: 3, accepted: 0, failed: 3 });
    expect(result.batches).toHaveLength(1);
    expect(result.batches[0]).toMatchObject({ state: 'failed', error: 'batch job ended unsent' });

    // Compacted: the JSON batch field is gone, the record reads back the same batch.
    const batchId = result.batches[0]!.id;
    const key = smsq.workers.context.keys.batch(batchId);
    expect(await smsq.workers.context.redis.hexists(key, 'batch')).toBe(0);
    const record = await smsq.workers.context.store.getBatch(batchId);
    expect(record?.batch.messages.flatMap((m) => m.to).sort()).toEqual([...to].sort());
  });
});
