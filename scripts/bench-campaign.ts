/**
 * Campaign import benchmark: one CSV of N personalised rows sent as one import run through the
 * simulator (SIMULATOR_LATENCY_MS=0), with the send workers and the campaign worker (the
 * importer) in two child processes. Prints recipients/s, each process's peak RSS and Redis's
 * used_memory_peak.
 *
 *   npx tsx scripts/bench-campaign.ts [rows=1000000]
 *
 * `benchCampaign()` is the same measurement for `npm run bench`, returning the numbers; it also
 * times the import alone (from startImport until every row was read and its chunk staged: the
 * run's `importedAt`).
 *
 * Redis: REDIS_URL if set (its used_memory_peak then includes whatever else it holds), else a
 * private redis-server on a free port, stopped afterwards. Keys live under a throw-away prefix,
 * removed afterwards. BENCH_TIMEOUT_S (default 900) bounds the whole run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { CampaignService } from '../src/campaigns/service.js';
import { startCampaignWorkers } from '../src/campaigns/workers.js';
import { loadConfig, type Config } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createQueueContext } from '../src/queue/context.js';
import { startWorkers } from '../src/queue/workers.js';
import { startPrivateRedis, type PrivateRedis } from '../test/helpers/redis-server.js';
import { isMainModule } from './bench/main-module.js';

type Role = 'workers' | 'importer';
interface ChildReport {
  role: Role;
  /** RSS once started, before the run (modules loaded, connections open). */
  startRssMb: number;
  peakRssMb: number;
}

export const TEXT = 'Hola {{name}}, tu pedido esta listo para recoger en tienda. Gracias por tu compra.';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

function benchEnv(redisUrl: string, prefix: string): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    SMSQ_PREFIX: prefix,
    SMSQ_PROVIDER: 'simulator',
    SIMULATOR_LATENCY_MS: '0',
    // The simulator's request allowance would otherwise be the ceiling (1,000 requests/s).
    SIMULATOR_RATE_PER_S: '100000',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
  };
}

/** Peak resident set size of a process, from the kernel (Linux), in bytes. */
function vmHwm(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmHWM:'));
    return line ? Number(line.replace(/\D+/g, '')) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time a process used so far (Linux), in seconds. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    return undefined;
  }
}

/** Child process: runs one role until the parent says stop, sampling its own RSS. */
async function runChild(role: Role): Promise<void> {
  const prefix = process.env.BENCH_PREFIX!;
  const config: Config = loadConfig(benchEnv(process.env.BENCH_REDIS_URL!, prefix));
  const logger = createLogger(config.logLevel);
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 100);
  const stop =
    role === 'workers'
      ? await startWorkers({ config, logger }).then((w) => () => w.close(5_000))
      : await startCampaignWorkers({ config, logger }).then((w) => () => w.close(5_000));
  const startRss = process.memoryUsage.rss();
  process.send?.({ ready: true });
  await once(process, 'message');
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  await stop();
  process.send?.({ role, startRssMb: mb(startRss), peakRssMb: mb(peak) } satisfies ChildReport);
  process.disconnect();
}

export async function writeCsv(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  const write = async (chunk: string) => {
    if (!out.write(chunk)) await once(out, 'drain');
  };
  await write('phone,name\n');
  let buffer = '';
  for (let i = 0; i < rows; i += 1) {
    buffer += `+3460${String(i).padStart(7, '0')},Cliente ${i}\n`;
    if (buffer.length > 64 * 1024) {
      await write(buffer);
      buffer = '';
    }
  }
  await write(buffer);
  out.end();
  await once(out, 'finish');
}

/**
 * What the run left in Redis, by kind of key (ids folded), largest first: MB and key count, and
 * the total in bytes. `SAMPLES 0` measures every field (the default samples 5 of a hash's fields).
 */
async function memoryByKind(redis: Redis, prefix: string): Promise<{ text: string; bytes: number }> {
  const kinds = new Map<string, { bytes: number; keys: number }>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.memory('USAGE', key, 'SAMPLES', 0);
    const sizes = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const kind = key
        .slice(prefix.length + 1)
        .replace(/r[0-9a-f]{32}(-\d+)?/g, '<id>')
        .replace(/import\.[0-9a-z]+/g, '<run>')
        .replace(/:\d+$/, ':<n>');
      const entry = kinds.get(kind) ?? { bytes: 0, keys: 0 };
      entry.bytes += Number(sizes[i]?.[1] ?? 0);
      entry.keys += 1;
      kinds.set(kind, entry);
    });
  } while (cursor !== '0');
  const text = [...kinds]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, 10)
    .map(([kind, e]) => `${kind} ${mb(e.bytes)} MB (${e.keys} keys)`)
    .join('; ');
  return { text, bytes: [...kinds.values()].reduce((n, e) => n + e.bytes, 0) };
}

async function removePrefix(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl);
  let removed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) removed += await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
  return removed;
}

function startChild(role: Role, redisUrl: string, prefix: string): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), ['--role', role], {
    execArgv: process.execArgv,
    env: { ...process.env, BENCH_PREFIX: prefix, BENCH_REDIS_URL: redisUrl },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${role} process exited early (code ${code})`)));
  });
}

async function stopChild(child: ChildProcess): Promise<ChildReport | undefined> {
  if (child.exitCode !== null || !child.connected) return undefined;
  const report = new Promise<ChildReport | undefined>((resolve) => {
    child.on('message', (m: ChildReport) => resolve(m));
    child.once('exit', () => resolve(undefined));
  });
  child.send('stop');
  const result = await report;
  if (child.exitCode === null) {
    // A process that still holds handles after closing everything is reported, then ended.
    const exited = await Promise.race([once(child, 'exit').then(() => true), sleep(3_000).then(() => false)]);
    if (!exited) {
      console.warn(
        `bench: the ${result?.role ?? 'child'} process did not exit on its own 3 s after closing; ending it`,
      );
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }
  return result;
}

export interface CampaignBenchOptions {
  rows: number;
  /** Redis to run on; unset: a private redis-server for this run (its used_memory_peak is this run's). */
  redisUrl?: string;
  timeoutS: number;
  /** Print progress every 10 s. */
  progress?: boolean;
}

export interface CampaignBenchResult {
  rows: number;
  state: string;
  error?: string;
  counts: Record<string, number>;
  requests: number;
  /** From startImport until every row was read and staged (the run's importedAt). */
  importSeconds: number;
  importRowsPerS: number;
  /** From startImport until the run completed. */
  seconds: number;
  recipientsPerS: number;
  /** Peak RSS (VmHWM, else sampled) of each process, in MB. */
  rssMb: { workers?: number; importer?: number; driver: number };
  /** used_memory_peak above used_memory at the start, per row. */
  redisPeakBytesPerRecipient: number;
  /** used_memory after the run completed above the start, per row. */
  redisRetainedBytesPerRecipient: number;
  /** MEMORY USAGE of the run's keys after it completed, per row. */
  redisKeysBytesPerRecipient: number;
  redisByKind: string;
  privateRedis: boolean;
}

const usedMemory = (info: string, field = 'used_memory') =>
  Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);

export async function benchCampaign(opts: CampaignBenchOptions): Promise<CampaignBenchResult> {
  const { rows, timeoutS } = opts;
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  let privateRedis: PrivateRedis | undefined;
  const redisUrl = opts.redisUrl ?? (privateRedis = await startPrivateRedis()).url;
  const dir = mkdtempSync(join(tmpdir(), 'smsq-bench-'));
  const children: ChildProcess[] = [];
  const redis = new Redis(redisUrl);
  const deadlineAt = Date.now() + timeoutS * 1000;
  const log = (line: string) => opts.progress && console.log(line);

  try {
    const csv = join(dir, 'recipients.csv');
    let t = performance.now();
    await writeCsv(csv, rows);
    log(
      `CSV: ${rows.toLocaleString('en')} rows, ${mb(statSync(csv).size)} MB, written in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );

    const usedBefore = usedMemory(await redis.info('memory'));
    const workers = await startChild('workers', redisUrl, prefix);
    children.push(workers);
    const importer = await startChild('importer', redisUrl, prefix);
    children.push(importer);

    const config = loadConfig(benchEnv(redisUrl, prefix));
    const context = createQueueContext({ redisUrl, prefix, defaultCountry: 'ES', role: 'producer' });
    await context.ready();
    const campaigns = new CampaignService({ context, config });
    t = performance.now();
    const { runId } = await campaigns.startImport({ text: TEXT, recipients: { csv } });
    let lastLog = performance.now();
    let importSeconds: number | undefined;
    // The run's own record (one HGETALL) every 100 ms: the import's end is seen to a tenth of a second.
    let record = await campaigns.runs.getRun(runId);
    while (record?.state !== 'completed' && record?.state !== 'failed') {
      if (Date.now() > deadlineAt)
        throw new Error(
          `run ${runId} not finished within ${timeoutS} s (${record?.progress.rows ?? 0} rows read)`,
        );
      await sleep(100);
      record = await campaigns.runs.getRun(runId);
      if (importSeconds === undefined && record?.importedAt !== undefined)
        importSeconds = (performance.now() - t) / 1000;
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        log(
          `  ${((performance.now() - t) / 1000).toFixed(0)} s: ${(record?.progress.rows ?? 0).toLocaleString('en')} rows read, ${record?.progress.chunks ?? 0} chunks`,
        );
      }
    }
    const seconds = (performance.now() - t) / 1000;
    const run = await campaigns.getRun(runId);

    const hwm = { workers: vmHwm(workers.pid!), importer: vmHwm(importer.pid!) };
    const cpu = { workers: cpuSeconds(workers.pid!), importer: cpuSeconds(importer.pid!) };
    const reports = await Promise.all(children.map(stopChild));
    const info = await redis.info('memory');
    const byKind = await memoryByKind(redis, prefix);
    await campaigns.close();
    await context.close();

    const rss = (role: Role) => {
      const kernel = hwm[role];
      const sampled = reports.find((r) => r?.role === role)?.peakRssMb;
      return kernel !== undefined ? mb(kernel) : sampled;
    };
    log(
      `CPU: workers ${cpu.workers?.toFixed(1) ?? 'n/a'} s, importer ${cpu.importer?.toFixed(1) ?? 'n/a'} s`,
    );
    return {
      rows,
      state: run.state,
      ...(run.error !== undefined && { error: run.error }),
      counts: { ...run.counts },
      requests: run.requests,
      importSeconds: importSeconds ?? seconds,
      importRowsPerS: rows / (importSeconds ?? seconds),
      seconds,
      recipientsPerS: run.counts.accepted / seconds,
      rssMb: {
        workers: rss('workers'),
        importer: rss('importer'),
        driver: mb(vmHwm(process.pid) ?? process.memoryUsage.rss()),
      },
      redisPeakBytesPerRecipient: Math.round((usedMemory(info, 'used_memory_peak') - usedBefore) / rows),
      redisRetainedBytesPerRecipient: Math.round((usedMemory(info) - usedBefore) / rows),
      redisKeysBytesPerRecipient: Math.round(byKind.bytes / rows),
      redisByKind: byKind.text,
      privateRedis: privateRedis !== undefined,
    };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    const removed = await removePrefix(redisUrl, prefix).catch(() => 0);
    log(`cleanup: ${removed} keys under ${prefix}: removed; temp dir removed`);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
    await privateRedis?.destroy();
  }
}

async function main(): Promise<void> {
  const r = await benchCampaign({
    rows: Number(process.argv[2] ?? 1_000_000),
    redisUrl: process.env.REDIS_URL,
    timeoutS: Number(process.env.BENCH_TIMEOUT_S ?? 900),
    progress: true,
  });
  console.log(`\nrun: ${r.state}${r.error ? ` (${r.error})` : ''}`);
  console.log(`counts: ${JSON.stringify(r.counts)}; requests: ${r.requests}`);
  console.log(
    `import: ${r.importSeconds.toFixed(1)} s until every row was read and staged → ${Math.round(r.importRowsPerS).toLocaleString('en')} rows/s`,
  );
  console.log(
    `time: ${r.seconds.toFixed(1)} s from startImport to run completed → ${Math.round(r.recipientsPerS).toLocaleString('en')} recipients/s`,
  );
  console.log(
    `peak RSS: workers ${r.rssMb.workers ?? 'n/a'} MB, importer ${r.rssMb.importer ?? 'n/a'} MB, driver ${r.rssMb.driver} MB (CSV writer + poller)`,
  );
  console.log(`Redis at the end, by key kind: ${r.redisByKind}`);
  console.log(
    `Redis per recipient${r.privateRedis ? ' (private redis-server, this run only)' : ' (shared Redis: includes other data)'}: ` +
      `peak ${r.redisPeakBytesPerRecipient} B (used_memory_peak above the start); ` +
      `retained ${r.redisRetainedBytesPerRecipient} B (used_memory above the start), ` +
      `${r.redisKeysBytesPerRecipient} B in the run's keys (MEMORY USAGE)`,
  );
  if (r.state !== 'completed' || r.counts.accepted !== r.rows) process.exitCode = 1;
}

const roleAt = process.argv.indexOf('--role');
if (isMainModule(import.meta.url) && roleAt > 0) {
  void runChild(process.argv[roleAt + 1] as Role).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
} else if (isMainModule(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
