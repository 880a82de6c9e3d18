/**
 * Core throughput benchmark, all figures from one run on the same Redis:
 *  1. BullMQ's own ceiling: no-op jobs/s (addBulk, then a worker at concurrency 50 that does nothing);
 *  2. the number-validation ceiling: libphonenumber-js `max` parse + validity + type of the same
 *     numbers, on one core, nothing else;
 *  3. smsq end to end: recipients/s from SmsClient.send to every request completed, through the
 *     real Descom provider (undici) against a zero-latency Descom stand-in on loopback (in a
 *     process of its own, as a provider is: in the producer's process it would answer each send
 *     only between the producer's validations); measured
 *     twice: with the workers in a process of their own (`smsq worker`, as deployed beside the apps
 *     that enqueue: the producer validates numbers while the workers send), and with producer and
 *     workers sharing this one process (each recipient's work on one core). The producer keeps up
 *     to PRODUCER_IN_FLIGHT enqueues under way at once, as a real producer does (a cron job, an app
 *     serving several users): one request at a time would measure the producer's wait for each
 *     answer, not what smsq can carry.
 *
 *   npx tsx scripts/bench-core.ts [requests=20] [recipientsPerRequest=10000] [noopJobs=20000]
 *
 * Uses REDIS_URL (default redis://127.0.0.1:6379) under a throw-away prefix, removed afterwards.
 * `benchCore()` is the same measurement for `npm run bench`.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { parsePhoneNumberWithError } from 'libphonenumber-js/max';
import { SmsClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startWorkers } from '../src/queue/workers.js';
import { spanishMobiles } from '../test/helpers/numbers.js';
import { removePrefix } from '../test/helpers/remove-prefix.js';
import { spawnWorker } from '../test/helpers/worker-process.js';
import { startFakeDescomProcess } from './bench/fake-descom-process.js';
import { isMainModule } from './bench/main-module.js';

export interface CoreBenchOptions {
  redisUrl: string;
  requests: number;
  perRequest: number;
  noopJobs: number;
}

export interface CoreBenchResult {
  noopJobsPerS: number;
  validationPerS: number;
  /** Producer here, workers in their own process. */
  recipientsPerS: number;
  /** Producer and workers in this one process. */
  recipientsPerSOneProcess: number;
  /** Recipients the fake recorded as delivered (= requests × perRequest when nothing went wrong). */
  delivered: number;
}

async function benchNoop(redisUrl: string, prefix: string, noopJobs: number): Promise<number> {
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

/** Enqueues the bench's producer keeps under way at once (see the doc comment above). */
export const PRODUCER_IN_FLIGHT = 4;

/** Runs `task(i)` for i in [0, count) with at most `limit` under way at once; results in order. */
async function inFlight<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
  return results;
}

/** Numbers validated per second: what checking a recipient costs, and so the pipeline's ceiling. */
function benchValidation(numbers: readonly string[], rounds: number): number {
  let valid = 0;
  const validate = (n: string) => {
    const parsed = parsePhoneNumberWithError(n, 'ES');
    if (parsed.isValid() && parsed.getType() !== 'FIXED_LINE') valid += 1;
  };
  numbers.slice(0, 2_000).forEach(validate); // warm-up (JIT, metadata)
  valid = 0;
  const start = performance.now();
  for (let r = 0; r < rounds; r += 1) numbers.forEach(validate);
  const seconds = (performance.now() - start) / 1000;
  if (valid !== numbers.length * rounds)
    throw new Error(`only ${valid} of ${numbers.length * rounds} numbers valid`);
  return (numbers.length * rounds) / seconds;
}

async function benchPipeline(
  redisUrl: string,
  prefix: string,
  /** One list per request, every number distinct: nothing is answered from a recent validation. */
  numbers: string[][],
  requests: number,
  workersIn: 'own process' | 'this process',
): Promise<{ perSecond: number; delivered: number }> {
  const fake = await startFakeDescomProcess({ balance: Number.MAX_SAFE_INTEGER });
  const env = {
    REDIS_URL: redisUrl,
    SMSQ_PREFIX: prefix,
    SMSQ_PROVIDER: 'descom',
    ...fake.env,
    DESCOM_RATE_PER_S: '100000',
    LOG_LEVEL: 'warn',
  };
  let close: () => Promise<unknown>;
  if (workersIn === 'own process') {
    // At info it says when it is ready ("Workers started"); beyond that, one line per request.
    const worker = spawnWorker({ ...env, LOG_LEVEL: 'info' });
    close = () => worker.kill('SIGTERM');
    await worker.waitForOutput('Workers started', 60_000).catch(async (err: unknown) => {
      await worker.kill('SIGKILL');
      throw err;
    });
  } else {
    const workers = await startWorkers({ config: loadConfig(env), logger: createLogger('warn') });
    close = () => workers.close();
  }
  const client = new SmsClient({ redis: redisUrl, prefix });
  try {
    const start = performance.now();
    const ids = await inFlight(requests, PRODUCER_IN_FLIGHT, async (i) => {
      return (await client.send({ to: numbers[i]!, text: `Bench ${i}` })).id;
    });
    const results = await Promise.all(
      // Polled every 10 ms (a read of the request's state): the run's end is seen within 10 ms of it.
      ids.map((id) => client.wait(id, { timeoutMs: 30 * 60_000, pollMs: 10 })),
    );
    const seconds = (performance.now() - start) / 1000;
    const accepted = results.reduce((n, r) => n + r.counts.accepted, 0);
    const total = numbers.reduce((n, list) => n + list.length, 0);
    if (accepted !== total) throw new Error(`only ${accepted} of ${total} accepted`);
    return { perSecond: accepted / seconds, delivered: await fake.recipientsDelivered() };
  } finally {
    await client.close();
    await close();
    await fake.close();
  }
}

export async function benchCore(opts: CoreBenchOptions): Promise<CoreBenchResult> {
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  try {
    const noopJobsPerS = await benchNoop(opts.redisUrl, prefix, opts.noopJobs);
    // Distinct numbers throughout (the two pipeline runs use different ones too), as a real
    // request's: numbers repeated across runs would be measured warm in libphonenumber's paths.
    const lists = (offset: number) =>
      Array.from({ length: opts.requests }, (_, i) =>
        spanishMobiles(opts.perRequest, offset + i * opts.perRequest),
      );
    const total = opts.requests * opts.perRequest;
    const validationPerS = benchValidation(spanishMobiles(total, 2 * total), 1);
    const pipeline = await benchPipeline(opts.redisUrl, `${prefix}a`, lists(0), opts.requests, 'own process');
    const oneProcess = await benchPipeline(
      opts.redisUrl,
      `${prefix}b`,
      lists(total),
      opts.requests,
      'this process',
    );
    return {
      noopJobsPerS,
      validationPerS,
      recipientsPerS: pipeline.perSecond,
      recipientsPerSOneProcess: oneProcess.perSecond,
      delivered: pipeline.delivered,
    };
  } finally {
    for (const p of [prefix, `${prefix}a`, `${prefix}b`]) await removePrefix(opts.redisUrl, p);
  }
}

if (isMainModule(import.meta.url)) {
  const [requests = 20, perRequest = 10_000, noopJobs = 20_000] = process.argv.slice(2).map(Number);
  const r = await benchCore({
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    requests,
    perRequest,
    noopJobs,
  });
  console.log(`BullMQ no-op jobs/s:            ${r.noopJobsPerS.toFixed(0)}`);
  console.log(`numbers validated/s (1 core):   ${r.validationPerS.toFixed(0)}`);
  console.log(
    `smsq recipients/s end to end:   ${r.recipientsPerS.toFixed(0)} (${requests} requests × ${perRequest} recipients, ${r.delivered} delivered to the fake; workers in their own process)`,
  );
  console.log(`  producer and workers in one process: ${r.recipientsPerSOneProcess.toFixed(0)}`);
  console.log(`recipients/s per no-op job/s:   ${(r.recipientsPerS / r.noopJobsPerS).toFixed(1)}`);
  console.log(`recipients/s / validated/s:     ${(r.recipientsPerS / r.validationPerS).toFixed(2)}`);
}
