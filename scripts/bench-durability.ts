/**
 * What a durable `sending` write costs: the same workload through the real pipeline (splitter,
 * batch workers, the simulator provider at zero latency) on three private redis-servers started
 * here, one after the other in each round:
 *   off      no append-only file (the anchor: ratios are against it, measured in the same round)
 *   everysec append-only file fsynced once a second
 *   always   append-only file fsynced before every answer
 * A warm-up run (not reported) comes first, and each round starts with another mode, so JIT
 * warm-up and drift do not favour one. Prints recipients/s and batch state writes/s (planned →
 * sending → sent: two per batch) per mode with its ratio to `off` of the same round, then the
 * medians over the rounds (on a shared machine, many short rounds and a median resist noise
 * better than one long run).
 *
 *   npx tsx scripts/bench-durability.ts [rounds=7] [requests=60] [recipientsPerRequest=500]
 *
 * Needs redis-server on the PATH; its data directories are temporary and removed afterwards.
 */
import { SmsClient } from '../src/client.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startWorkers } from '../src/queue/workers.js';
import { spanishMobiles } from '../test/helpers/numbers.js';
import { startPrivateRedis, type AppendFsyncMode } from '../test/helpers/redis-server.js';

const [rounds = 7, requests = 60, perRequest = 500] = process.argv.slice(2).map(Number);
const MODES: AppendFsyncMode[] = ['off', 'everysec', 'always'];

interface Run {
  recipientsPerSecond: number;
  batchWritesPerSecond: number;
  batches: number;
}

async function runWorkload(mode: AppendFsyncMode, numbers: string[]): Promise<Run> {
  const redis = await startPrivateRedis({ appendfsync: mode });
  try {
    const config = loadConfig({
      REDIS_URL: redis.url,
      SMSQ_PROVIDER: 'simulator',
      SIMULATOR_LATENCY_MS: '0',
      SIMULATOR_RATE_PER_S: '100000',
      SMSQ_BATCH_CONCURRENCY: '16',
      LOG_LEVEL: 'silent',
    });
    const workers = await startWorkers({ config, logger: createLogger('silent') });
    const client = new SmsClient({ redis: redis.url, prefix: config.prefix });
    try {
      const start = performance.now();
      const ids: string[] = [];
      for (let i = 0; i < requests; i++)
        ids.push((await client.send({ to: numbers, text: `Bench ${i}` })).id);
      const results = await Promise.all(
        ids.map((id) => client.wait(id, { timeoutMs: 30 * 60_000, pollMs: 50 })),
      );
      const seconds = (performance.now() - start) / 1000;
      const accepted = results.reduce((n, r) => n + r.counts.accepted, 0);
      if (accepted !== requests * perRequest) throw new Error(`${mode}: only ${accepted} accepted`);
      const batches = results.reduce((n, r) => n + r.batches.length, 0);
      return {
        recipientsPerSecond: accepted / seconds,
        batchWritesPerSecond: (2 * batches) / seconds,
        batches,
      };
    } finally {
      await client.close();
      await workers.close();
    }
  } finally {
    await redis.destroy();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const numbers = spanishMobiles(perRequest);
await runWorkload('off', numbers);
console.log(
  `${requests} requests × ${perRequest} recipients, simulator at zero latency, ratios against AOF off:`,
);
const ratios = new Map<AppendFsyncMode, number[]>(MODES.map((m) => [m, []]));
const perSecond = new Map<AppendFsyncMode, number[]>(MODES.map((m) => [m, []]));
for (let round = 1; round <= rounds; round++) {
  const runs = new Map<AppendFsyncMode, Run>();
  const order = MODES.map((_, i) => MODES[(i + round - 1) % MODES.length]!);
  for (const mode of order) runs.set(mode, await runWorkload(mode, numbers));
  const anchor = runs.get('off')!;
  for (const mode of MODES) {
    const run = runs.get(mode)!;
    const ratio = run.recipientsPerSecond / anchor.recipientsPerSecond;
    ratios.get(mode)!.push(ratio);
    perSecond.get(mode)!.push(run.recipientsPerSecond);
    console.log(
      [
        `round ${round}`,
        mode.padEnd(8),
        `${run.recipientsPerSecond.toFixed(0).padStart(7)} recipients/s`,
        `${run.batchWritesPerSecond.toFixed(0).padStart(5)} batch writes/s`,
        `×${ratio.toFixed(2)}`,
        `(${run.batches} batches)`,
      ].join('  '),
    );
  }
}
// Batch writes are two per batch and batches a fixed number: their ratio is the recipients' one.
for (const mode of MODES) {
  console.log(
    `median ${mode.padEnd(8)}  ${median(perSecond.get(mode)!).toFixed(0).padStart(7)} recipients/s  ` +
      `×${median(ratios.get(mode)!).toFixed(2)} of AOF off (per round: ${ratios
        .get(mode)!
        .map((r) => r.toFixed(2))
        .join(' ')})`,
  );
}
