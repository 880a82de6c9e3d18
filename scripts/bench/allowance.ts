/**
 * Allowance used: real worker processes (1 or 2) send queued single-recipient requests to the
 * loopback Descom fake answering after a fixed latency, with `DESCOM_RATE_PER_S` as the allowance.
 * After a warm-up from the first request received (`warmupS` plus twice the latency), arrivals
 * at the fake are counted over the measuring window: the mean requests/s against the allowance (target 0.95–1.00) and the busiest
 * 1-s window, sliding (a window starts at every arrival), against the allowance (never above 1.00).
 * Every request counts (sends, balance probes): the allowance is the provider's, whatever the call.
 */
import { randomBytes } from 'node:crypto';
import { SmsClient } from '../../src/client.js';
import { startFakeDescom } from '../../test/helpers/fake-descom.js';
import { spanishMobiles } from '../../test/helpers/numbers.js';
import { removePrefix } from '../../test/helpers/remove-prefix.js';
import { spawnWorker, type WorkerProcess } from '../../test/helpers/worker-process.js';
import { busiestFixedWindow, busiestWindow, sleep, stampArrivals, waitForArrivals } from './arrivals.js';
import { ratio, type Figure } from './figures.js';
import { redisEnvFor } from './service.js';

export interface AllowanceOptions {
  redisUrl: string;
  latenciesMs: readonly number[];
  processes: readonly number[];
  ratePerS: number;
  warmupS: number;
  measureS: number;
}

interface AllowanceCase {
  latencyMs: number;
  processes: number;
  meanPerS: number;
  busiest: number;
  busiestFixed: number;
  sends: number;
  otherRequests: number;
  ranOutOfWork: boolean;
}

/** Enqueues `count` single-recipient requests, `parallel` at a time. */
async function enqueue(client: SmsClient, count: number, parallel = 10): Promise<void> {
  const numbers = spanishMobiles(count);
  for (let i = 0; i < count; i += parallel) {
    await Promise.all(
      numbers.slice(i, i + parallel).map((to, j) => client.send({ to: [to], text: `Allowance ${i + j}` })),
    );
  }
}

async function runCase(opts: AllowanceOptions, latencyMs: number, processes: number): Promise<AllowanceCase> {
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const fake = await startFakeDescom({ latencyMs, balance: Number.MAX_SAFE_INTEGER });
  const client = new SmsClient({ redis: opts.redisUrl, prefix });
  const workers: WorkerProcess[] = [];
  try {
    // More work than the allowance lets through in the run, so it never runs out while measured.
    // The warm-up grows with the latency: in-flight work sized from observed latency needs answers first.
    const warmupMs = opts.warmupS * 1000 + 2 * latencyMs;
    const queued = Math.ceil(opts.ratePerS * (warmupMs / 1000 + opts.measureS + 2) * 1.5);
    await enqueue(client, queued);
    const arrivals = stampArrivals(fake);
    const env = {
      ...redisEnvFor(opts.redisUrl),
      SMSQ_PREFIX: prefix,
      SMSQ_PROVIDER: 'descom',
      ...fake.env,
      DESCOM_RATE_PER_S: String(opts.ratePerS),
      LOG_LEVEL: 'warn',
    };
    for (let i = 0; i < processes; i += 1) workers.push(spawnWorker(env));
    await waitForArrivals(fake, 1, 60_000);
    const from = arrivals.at[0]! + warmupMs;
    const to = from + opts.measureS * 1000;
    await sleep(to - performance.now() + 50);
    arrivals.stop();
    const inWindow = fake.requests
      .map((r, i) => ({ r, t: arrivals.at[i]! }))
      .filter((x) => x.t >= from && x.t < to);
    const times = inWindow.map((x) => x.t);
    const sends = inWindow.filter((x) => x.r.path === '/api/sms/send').length;
    return {
      latencyMs,
      processes,
      meanPerS: times.length / opts.measureS,
      busiest: busiestWindow(times),
      busiestFixed: busiestFixedWindow(times, from),
      sends,
      otherRequests: times.length - sends,
      ranOutOfWork: fake.requests.filter((r) => r.path === '/api/sms/send').length >= queued,
    };
  } finally {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await client.close();
    await fake.close();
    await removePrefix(opts.redisUrl, prefix).catch(() => undefined);
  }
}

function caseFigures(c: AllowanceCase, ratePerS: number): Figure[] {
  const label = `descom ${c.latencyMs} ms, ${c.processes} process${c.processes > 1 ? 'es' : ''}`;
  const anchor = { name: 'DESCOM_RATE_PER_S', value: ratePerS, unit: 'req/s' };
  const used = ratio(c.meanPerS, ratePerS);
  const busiest = ratio(c.busiest, ratePerS);
  const details = {
    busiestFixedWindow: c.busiestFixed,
    sends: c.sends,
    otherRequests: c.otherRequests,
    ranOutOfWork: c.ranOutOfWork,
  };
  return [
    {
      figure: `allowance used, ${label}`,
      value: Math.round(c.meanPerS * 10) / 10,
      unit: 'req/s',
      anchor,
      ratio: used,
      target: '0.95 ≤ ratio ≤ 1.00',
      pass: used >= 0.95 && used <= 1 && !c.ranOutOfWork,
      details,
    },
    {
      figure: `busiest 1-s window, ${label}`,
      value: c.busiest,
      unit: 'req',
      anchor,
      ratio: busiest,
      target: 'ratio ≤ 1.00',
      pass: busiest <= 1,
      details,
    },
  ];
}

/** One case per latency × process count; a case that fails is reported and the others still run. */
export async function benchAllowance(
  opts: AllowanceOptions,
  onFigure: (f: Figure) => void,
  onError: (section: string, err: unknown) => void,
): Promise<void> {
  for (const latencyMs of opts.latenciesMs) {
    for (const processes of opts.processes) {
      try {
        for (const f of caseFigures(await runCase(opts, latencyMs, processes), opts.ratePerS)) onFigure(f);
      } catch (err) {
        onError(`allowance ${latencyMs} ms × ${processes}`, err);
      }
    }
  }
}
