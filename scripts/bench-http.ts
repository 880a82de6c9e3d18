/**
 * HTTP benchmark: starts `smsq start` (API + workers in one process, simulator with no latency),
 * or with `--shape api+worker` `smsq api` beside a `smsq worker` process (as deployed in
 * production), on a free port and a private prefix, fires single-recipient POST /v1/messages at
 * it with autocannon, prints req/s and latency, then stops the service and removes its keys. The
 * workers send every accepted message meanwhile, in the same process or in their own.
 *
 * Then the sustained rate: a fixed number of single sends posted as fast as the API takes them,
 * timed from the first POST until every one is sent (the send and batch queues of both lanes
 * empty). The acceptance rate alone can run far ahead of what the workers send: it is measured
 * while they work through what it accepted, on the same cores.
 *
 * The anchor: GET /healthz on the same server, with the same connections, measured just before
 * (the workers idle). It answers from memory, so it is what this machine gives one smsq process
 * for HTTP alone at that moment; on a shared or noisy machine the ratio of the two says more than
 * either number.
 *
 *   npx tsx scripts/bench-http.ts [--duration 10] [--connections 20] [--shape start|api+worker]
 *
 * Redis: REDIS_URL, else 127.0.0.1:6379 (the sustained run reads the service's queues there).
 * `benchHttp()` is the same measurement for `npm run bench`.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { smsqQueueOptions } from '../src/queue/context.js';
import { batchQueueName, LANES, sendQueueName } from '../src/queue/names.js';
import { removePrefix } from '../test/helpers/remove-prefix.js';
import { isMainModule } from './bench/main-module.js';
import { redisEnvFor, startBenchApiAndWorker, startBenchService } from './bench/service.js';

/** How smsq runs: `smsq start` (one process), or `smsq api` beside a `smsq worker`. */
export type HttpBenchShape = 'start' | 'api+worker';

export interface HttpBenchOptions {
  /** Default `start`. */
  shape?: HttpBenchShape;
  /** Redis for the service; unset: whatever `smsq start` finds. */
  redisUrl?: string;
  durationS: number;
  connections: number;
  /** Unmeasured run first (JIT, connection pools), in seconds. */
  warmupS?: number;
  /** Single sends of the sustained run (default 4,000). */
  sustainedRequests?: number;
}

export interface HttpBenchResult {
  durationS: number;
  connections: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  requestsPerS: number;
  requestsPerSMin: number;
  requestsPerSMax: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  statusCodes: Record<string, { count: number }>;
  /** GET /healthz on the same server just before: the anchor. */
  anchor: { requestsPerS: number; latencyMs: { p50: number; p99: number }; non2xx: number; errors: number };
  /** Single sends posted at once and timed until all were sent (first POST to last sent). */
  sustained: { requests: number; non2xx: number; seconds: number; requestsPerS: number };
  /** The same load from a shell. */
  equivalent: string;
}

/** Resolves once the send and batch queues (both lanes; the simulator's) hold nothing to do. */
async function drained(queues: readonly Queue[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const counts = await Promise.all(
      queues.map((q) =>
        q.getJobCounts('wait', 'active', 'waiting-children', 'delayed', 'prioritized', 'paused'),
      ),
    );
    if (counts.every((c) => Object.values(c).every((n) => n === 0))) return;
    if (performance.now() > deadline) throw new Error(`queues not drained within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function benchHttp(opts: HttpBenchOptions): Promise<HttpBenchResult> {
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const start = opts.shape === 'api+worker' ? startBenchApiAndWorker : startBenchService;
  const redis = new Redis(opts.redisUrl ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const service = await start({
    SMSQ_PREFIX: prefix,
    SIMULATOR_LATENCY_MS: '0',
    ...(opts.redisUrl !== undefined && redisEnvFor(opts.redisUrl)),
  });
  try {
    const body = JSON.stringify({ to: '+34600000001', text: 'Hola' });
    const headers = { authorization: `Bearer ${service.apiKey}`, 'content-type': 'application/json' };
    const load = (duration: number) =>
      autocannon({
        url: `${service.url}/v1/messages`,
        connections: opts.connections,
        duration,
        method: 'POST',
        headers,
        body,
      });
    const anchorLoad = (duration: number) =>
      autocannon({ url: `${service.url}/healthz`, connections: opts.connections, duration });
    await anchorLoad(opts.warmupS ?? 2);
    const anchor = await anchorLoad(opts.durationS);
    await load(opts.warmupS ?? 2);

    const queues = LANES.flatMap((lane) => [sendQueueName(lane), batchQueueName('simulator', lane)]).map(
      // smsq's own queue options: a Queue writes them to the queue's meta, which the service shares.
      (name) => new Queue(name, smsqQueueOptions(redis, prefix)),
    );
    let sustained: HttpBenchResult['sustained'];
    try {
      await drained(queues, 300_000);
      const requests = opts.sustainedRequests ?? 4_000;
      const t0 = performance.now();
      const posted = await autocannon({
        url: `${service.url}/v1/messages`,
        connections: opts.connections,
        amount: requests,
        method: 'POST',
        headers,
        body,
      });
      await drained(queues, 300_000);
      const seconds = (performance.now() - t0) / 1000;
      sustained = {
        requests,
        non2xx: posted.non2xx + posted.errors,
        seconds,
        requestsPerS: requests / seconds,
      };
    } finally {
      for (const queue of queues) await queue.close();
    }

    const result = await load(opts.durationS);
    return {
      durationS: result.duration,
      connections: opts.connections,
      total: result.requests.total,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      requestsPerS: result.requests.average,
      requestsPerSMin: result.requests.min,
      requestsPerSMax: result.requests.max,
      latencyMs: {
        p50: result.latency.p50,
        p90: result.latency.p90,
        p99: result.latency.p99,
        max: result.latency.max,
      },
      statusCodes: result.statusCodeStats,
      sustained,
      anchor: {
        requestsPerS: anchor.requests.average,
        latencyMs: { p50: anchor.latency.p50, p99: anchor.latency.p99 },
        non2xx: anchor.non2xx,
        errors: anchor.errors,
      },
      equivalent:
        `npx autocannon -d ${opts.durationS} -c ${opts.connections} -m POST -H 'authorization: Bearer ${service.apiKey}' ` +
        `-H 'content-type: application/json' -b '${body}' ${service.url}/v1/messages`,
    };
  } finally {
    await service.stop();
    redis.disconnect();
    // When no Redis answered there, the service used a private one, gone with it: nothing to remove.
    await removePrefix(opts.redisUrl ?? 'redis://127.0.0.1:6379', prefix).catch(() => undefined);
  }
}

if (isMainModule(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '20' },
      shape: { type: 'string', default: 'start' },
    },
  });
  if (values.shape !== 'start' && values.shape !== 'api+worker')
    throw new Error(`--shape: expected start or api+worker, got ${JSON.stringify(values.shape)}`);
  const r = await benchHttp({
    shape: values.shape,
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    durationS: Number(values.duration),
    connections: Number(values.connections),
  });
  console.log(`equivalent: ${r.equivalent}`);
  console.log(`duration        ${r.durationS} s, ${r.connections} connections`);
  console.log(`requests        ${r.total} (${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts)`);
  console.log(
    `req/s           ${r.requestsPerS.toFixed(0)} average (min ${r.requestsPerSMin}, max ${r.requestsPerSMax})`,
  );
  console.log(
    `latency         p50 ${r.latencyMs.p50} ms, p90 ${r.latencyMs.p90} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`,
  );
  console.log(`status codes    ${JSON.stringify(r.statusCodes)}`);
  console.log(
    `sustained       ${r.sustained.requests} single sends posted and sent in ${r.sustained.seconds.toFixed(1)} s: ` +
      `${r.sustained.requestsPerS.toFixed(0)} req/s (${r.sustained.non2xx} not accepted)`,
  );
  console.log(
    `anchor          GET /healthz ${r.anchor.requestsPerS.toFixed(0)} req/s (p99 ${r.anchor.latencyMs.p99} ms); ` +
      `POST / anchor = ${(r.requestsPerS / r.anchor.requestsPerS).toFixed(3)}`,
  );
}
