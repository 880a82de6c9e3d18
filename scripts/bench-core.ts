/**
 * Core throughput benchmark, both figures from one run on the same Redis:
 *  1. BullMQ's own ceiling: no-op jobs/s (addBulk, then a worker that does nothing);
 *  2. smsq end to end: recipients/s from SmsClient.send to every request completed, through the
 *     real Descom provider (undici) against a zero-latency Descom stand-in on loopback.
 *
 *   npx tsx scripts/bench-core.ts [requests=20] [recipientsPerRequest=10000] [noopJobs=20000]
 *
 * Uses REDIS_URL (default redis://127.0.0.1:6379) under a throw-away prefix, removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { SmsClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startWorkers } from '../src/queue/workers.js';
import { startFakeDescom } from '../test/helpers/fake-descom.js';
import { spanishMobiles } from '../test/helpers/numbers.js';
import { removePrefix } from '../test/helpers/remove-prefix.js';

const [requests = 20, perRequest = 10_000, noopJobs = 20_000] = process.argv.slice(2).map(Number);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `bench${randomBytes(4).toString('hex')}`;

async function benchNoop(): Promise<number> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('noop', { connection, prefix });
  // BullMQ does not close connections it is given: keep a handle to close them, or the process stays up.
  const workerConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  let done = 0;
  const finished = new Promise<void>((resolve) => {
    const worker = new Worker('noop', () => Promise.resolve(), {
      connection: workerConnection,
      prefix,
      concurrency: 50,
      autorun: false,
    });
    worker.on('completed', () => {
      if (++done === noopJobs) void worker.close().then(() => resolve());
    });
    void worker.run();
  });
  const start = performance.now();
  for (let i = 0; i < noopJobs; i += 1_000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1_000, noopJobs - i) }, () => ({ name: 'noop', data: {} })),
    );
  }
  await finished;
  const seconds = (performance.now() - start) / 1000;
  await queue.close();
  connection.disconnect();
  workerConnection.disconnect();
  return noopJobs / seconds;
}

async function benchPipeline(): Promise<{ perSecond: number; delivered: number }> {
  const fake = await startFakeDescom({ balance: Number.MAX_SAFE_INTEGER });
  const config = loadConfig({
    REDIS_URL: redisUrl,
    SMSQ_PREFIX: prefix,
    SMSQ_PROVIDER: 'descom',
    DESCOM_USER: fake.user,
    DESCOM_PASS: fake.pass,
    DESCOM_URL: fake.url,
    DESCOM_RATE_PER_S: '100000',
    SMSQ_BATCH_CONCURRENCY: '16',
    LOG_LEVEL: 'warn',
  });
  const workers = await startWorkers({ config, logger: createLogger('warn') });
  const client = new SmsClient({ redis: redisUrl, prefix });
  const numbers = spanishMobiles(perRequest);
  const start = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < requests; i++) ids.push((await client.send({ to: numbers, text: `Bench ${i}` })).id);
  const results = await Promise.all(
    ids.map((id) => client.wait(id, { timeoutMs: 30 * 60_000, pollMs: 100 })),
  );
  const seconds = (performance.now() - start) / 1000;
  const accepted = results.reduce((n, r) => n + r.counts.accepted, 0);
  if (accepted !== requests * perRequest)
    throw new Error(`only ${accepted} of ${requests * perRequest} accepted`);
  const delivered = fake.recipientsDelivered().length;
  await client.close();
  await workers.close();
  await fake.close();
  return { perSecond: accepted / seconds, delivered };
}

try {
  const noop = await benchNoop();
  const pipeline = await benchPipeline();
  console.log(`BullMQ no-op jobs/s:            ${noop.toFixed(0)}`);
  console.log(
    `smsq recipients/s end to end:   ${pipeline.perSecond.toFixed(0)} (${requests} requests × ${perRequest} recipients, ${pipeline.delivered} delivered to the fake)`,
  );
  console.log(`recipients/s per no-op job/s:   ${(pipeline.perSecond / noop).toFixed(1)}`);
} finally {
  await removePrefix(redisUrl, prefix);
}
