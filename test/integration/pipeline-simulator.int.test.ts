import { afterEach, describe, expect, it } from 'vitest';
import { SmsClient } from '../../src/client.js';
import { startWorkers, type SmsqWorkers } from '../../src/queue/workers.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { captureLogger, removePrefix, testConfig } from '../helpers/smsq.js';

describe('pipeline on the simulator', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(env: Record<string, string> = {}) {
    const config = testConfig(env);
    const { logger, lines } = captureLogger('info');
    const workers = await startWorkers({ config, logger });
    const client = new SmsClient({ redis: config.redisUrl, prefix: config.prefix });
    cleanups.push(async () => {
      await client.close();
      await workers.close(1_000);
      await removePrefix(config.redisUrl, config.prefix);
    });
    return { config, workers, client, lines };
  }

  it('completes a 10,000-recipient request with counts adding up to the total', async () => {
    const { client } = await start();
    const to = spanishMobiles(10_000);
    const accepted = await client.send({ to, text: 'Hola, tu cita es mañana' });
    expect(accepted.recipients).toBe(10_000);
    const result = await client.wait(accepted.id, { timeoutMs: 60_000 });
    expect(result.state).toBe('completed');
    expect(result.counts).toEqual({
      total: 10_000, accepted: 10_000, invalid: 0, suppressed: 0, rejected: 0, failed: 0, expired: 0, unknown: 0,
    });
    // Simulator: 50 message objects × 100 recipients per request → 2 requests.
    expect(result.batches).toHaveLength(2);
    expect(result.credits.charged).toBe(10_000);
    expect(result.batches.every((b) => b.providerIds.length === b.recipients)).toBe(true);
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
});
