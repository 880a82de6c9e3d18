/**
 * The circuit lives in Redis: two real worker processes count the same failures, open it once,
 * and both keep routed batches away from the provider afterwards.
 */
import { describe, expect, it } from 'vitest';
import { SmsClient } from '../../src/client.js';
import type { RequestSummary } from '../../src/queue/summary.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { eventually } from '../helpers/wait.js';
import { startTwoProviders } from '../helpers/routing.js';
import { redisUrl, testPrefix } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

describe('Failover across worker processes', () => {
  async function completed(client: SmsClient, id: string): Promise<RequestSummary> {
    let summary: RequestSummary | undefined;
    await eventually(async () => (summary = await client.get(id)).state === 'completed', 30_000);
    return summary!;
  }

  it('two worker processes agree on the circuit: opened once, and neither sends routed batches to Descom after', async () => {
    const fakes = await startTwoProviders();
    onTeardown('provider fakes', () => fakes.close());
    const prefix = testPrefix();
    const env = {
      ...fakes.env,
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
      SMSQ_PROVIDER: 'descom',
      SMSQ_ROUTES: JSON.stringify([{ match: {}, providers: ['descom', 'ovh'] }]),
      SMSQ_CIRCUIT_FAILURES: '4',
      SMSQ_FAILBACK_MS: '60000',
      SMSQ_BACKOFF_MS: '20',
      SMSQ_ATTEMPTS: '6',
      SMSQ_BATCH_CONCURRENCY: '1',
      SMSQ_LOCK_DURATION_MS: '2000',
      SMSQ_PROVIDER_TIMEOUT_MS: '2000',
      SMSQ_PROBE_INTERVAL_MS: '200',
      LOG_LEVEL: 'info',
    };
    const workers: WorkerProcess[] = [spawnWorker(env), spawnWorker(env)];
    await Promise.all(workers.map((w) => w.waitForOutput('Workers started', 30_000)));
    const client = new SmsClient({ redis: redisUrl(), prefix });
    onTeardown('client', () => client.close());

    fakes.descom.script(...Array.from({ length: 200 }, () => ({ status: 503 })));
    // Four Descom batches (50 texts each): both processes take some and fail on them.
    const to = spanishMobiles(200);
    const first = await client.send({ messages: to.map((n, i) => ({ to: [n], text: `Hola ${i}` })) });
    const result = await completed(client, first.id);
    expect(result.counts).toMatchObject({ total: 200, accepted: 200 });
    expect(fakes.ovh.recipientsReceived().sort()).toEqual([...to].sort());
    expect(fakes.descom.recipientsDelivered()).toEqual([]);
    const descomCalls = fakes.descom.requests.filter((r) => r.path === '/api/sms/send').length;
    // The circuit counts both processes' failures together: it opened at the fourth, whoever made it.
    expect(descomCalls).toBeLessThanOrEqual(4 + 2); // plus at most one call in flight per process
    const opened = workers.map((w) => (w.output().match(/Circuit of descom opened/g) ?? []).length);
    expect(opened[0]! + opened[1]!).toBe(1);

    // Later requests, whichever process plans and sends them, all go to OVH.
    for (let i = 0; i < 3; i++) {
      const next = await client.send({ to: spanishMobiles(5, 1_000 + i * 10), text: `Después ${i}` });
      const done = await completed(client, next.id);
      expect(
        done.batches.every((b) => b.provider === 'ovh' && b.history?.[0]?.reason === 'circuit-open'),
      ).toBe(true);
    }
    expect(fakes.descom.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(descomCalls);
    const failedOverBy = workers.map(
      (w) => (w.output().match(/Batch failed over from descom to ovh/g) ?? []).length,
    );
    console.log(
      `failover across processes: batches moved by process A ${failedOverBy[0]}, by B ${failedOverBy[1]}`,
    );
  }, 60_000);
});
