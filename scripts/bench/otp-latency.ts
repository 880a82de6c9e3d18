/**
 * OTP latency: single-recipient `POST /v1/messages` at a steady rate to smsq sending to the
 * loopback Descom fake; each latency runs from just before the POST leaves to the fake having read
 * the request carrying that number (same clock). With `smsq start` (API + workers in one process):
 * measured alone, then while a personalised campaign import drains at the provider's allowance.
 * Then during the same campaign with the deployment shape for transactional traffic: `smsq api`,
 * `smsq worker --lane priority` and `smsq worker --lane bulk` (the campaign's import and sending).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CampaignService } from '../../src/campaigns/service.js';
import { loadConfig } from '../../src/config.js';
import { createQueueContext } from '../../src/queue/context.js';
import { startFakeDescom, type FakeDescom } from '../../test/helpers/fake-descom.js';
import { spanishMobiles } from '../../test/helpers/numbers.js';
import { removePrefix } from '../../test/helpers/remove-prefix.js';
import { TEXT, writeCsv } from '../bench-campaign.js';
import { sleep, stampArrivals, waitForArrivals, type Arrivals } from './arrivals.js';
import { percentile, targetFigure, type Figure } from './figures.js';
import { redisEnvFor, startBenchLaneWorkers, startBenchService, type BenchService } from './service.js';

export interface OtpOptions {
  redisUrl: string;
  /** OTPs per second. */
  perS: number;
  measureS: number;
  /** Recipients of the concurrent campaign. */
  campaignRows: number;
  /** The provider's allowance (DESCOM_RATE_PER_S), shared by OTPs and the campaign. */
  ratePerS: number;
}

interface OtpRun {
  sent: number;
  latenciesMs: number[];
  non202: number;
  missing: number;
}

const digits = (n: string) => n.replace(/\D/g, '');

/** Sends one OTP to each of `numbers`, `perS` a second (open loop: a slow answer does not delay the next). */
async function sendOtps(
  service: BenchService,
  fake: FakeDescom,
  arrivals: Arrivals,
  numbers: readonly string[],
  perS: number,
  /** Called once the last OTP has been answered, before waiting for the provider to receive them all. */
  afterSending: () => Promise<void> = () => Promise.resolve(),
): Promise<OtpRun> {
  const sentAt = new Map<string, number>();
  const replies: Promise<number>[] = [];
  const start = performance.now();
  const firstRequest = fake.requests.length;
  for (const [i, to] of numbers.entries()) {
    await sleep(start + (i * 1000) / perS - performance.now());
    sentAt.set(digits(to), performance.now());
    replies.push(
      fetch(`${service.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${service.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to, text: 'Tu codigo es 482913' }),
      }).then(
        async (r) => {
          await r.arrayBuffer();
          return r.status;
        },
        () => 0,
      ),
    );
  }
  const statuses = await Promise.all(replies);
  await afterSending();
  const latencies = new Map<string, number>();
  const deadline = performance.now() + 30_000;
  while (latencies.size < sentAt.size && performance.now() < deadline) {
    for (let i = firstRequest; i < fake.requests.length && i < arrivals.at.length; i += 1) {
      for (const r of fake.requests[i]!.recipients) {
        const key = digits(r);
        const t0 = sentAt.get(key);
        if (t0 !== undefined && !latencies.has(key)) latencies.set(key, arrivals.at[i]! - t0);
      }
    }
    if (latencies.size < sentAt.size) await sleep(50);
  }
  return {
    sent: numbers.length,
    latenciesMs: [...latencies.values()].sort((a, b) => a - b),
    non202: statuses.filter((s) => s !== 202).length,
    missing: sentAt.size - latencies.size,
  };
}

function otpFigures(what: string, run: OtpRun, targets: { p50?: number; p99: number }, extra = {}): Figure[] {
  const details = { sent: run.sent, non202: run.non202, notReceived: run.missing, ...extra };
  const complete = run.non202 === 0 && run.missing === 0;
  const round = (n: number) => Math.round(n * 10) / 10;
  const figure = (name: string, p: number, target: number | undefined): Figure => {
    const value = round(percentile(run.latenciesMs, p));
    const label = `OTP latency ${name}, ${what}`;
    return target === undefined
      ? {
          figure: label,
          value,
          unit: 'ms',
          anchor: null,
          ratio: null,
          target: 'none',
          pass: complete,
          details,
        }
      : targetFigure(label, value, 'ms', { op: '≤', value: target }, complete, details);
  };
  return [figure('p50', 50, targets.p50), figure('p99', 99, targets.p99)];
}

/** OTP numbers of one shape: a warm-up range and a measured range (campaign rows stay below +34609000000). */
interface OtpRanges {
  warmUp: number;
  alone?: number;
  during: number;
}

/** One way of running smsq, measured against the shared fake under a prefix of its own. */
interface Shape {
  start: (env: Record<string, string>) => Promise<BenchService>;
  ranges: OtpRanges;
  /** Added to the "during a campaign" label (empty for `smsq start`, whose labels predate shapes). */
  labelSuffix: string;
}

const SHAPES: readonly Shape[] = [
  {
    start: startBenchService,
    ranges: { warmUp: 9_000_000, alone: 9_100_000, during: 9_200_000 },
    labelSuffix: '',
  },
  {
    start: startBenchLaneWorkers,
    ranges: { warmUp: 9_300_000, during: 9_400_000 },
    labelSuffix:
      ', transactional worker in its own process (smsq api + worker --lane priority + worker --lane bulk)',
  },
];

export async function benchOtpLatency(
  opts: OtpOptions,
  onFigure: (f: Figure) => void,
  onError: (section: string, err: unknown) => void,
): Promise<void> {
  const fake = await startFakeDescom({ balance: Number.MAX_SAFE_INTEGER });
  const arrivals = stampArrivals(fake);
  const dir = mkdtempSync(join(tmpdir(), 'smsq-bench-otp-'));
  try {
    const csv = join(dir, 'campaign.csv');
    await writeCsv(csv, opts.campaignRows);
    for (const shape of SHAPES) await benchShape(opts, shape, { fake, arrivals, csv }, onFigure, onError);
  } finally {
    arrivals.stop();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchShape(
  opts: OtpOptions,
  shape: Shape,
  shared: { fake: FakeDescom; arrivals: Arrivals; csv: string },
  onFigure: (f: Figure) => void,
  onError: (section: string, err: unknown) => void,
): Promise<void> {
  const { fake, arrivals, csv } = shared;
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  let service: BenchService | undefined;
  const env = {
    ...redisEnvFor(opts.redisUrl),
    SMSQ_PREFIX: prefix,
    SMSQ_PROVIDER: 'descom',
    ...fake.env,
    DESCOM_RATE_PER_S: String(opts.ratePerS),
  };
  const count = Math.round(opts.perS * opts.measureS);
  const during = `OTP latency during a campaign${shape.labelSuffix}`;
  try {
    service = await shape.start(env);
    // Warm-up, not measured (JIT, connections, the first jobs' scripts loaded).
    await sendOtps(service, fake, arrivals, spanishMobiles(opts.perS, shape.ranges.warmUp), opts.perS);

    if (shape.ranges.alone !== undefined) {
      try {
        const alone = await sendOtps(
          service,
          fake,
          arrivals,
          spanishMobiles(count, shape.ranges.alone),
          opts.perS,
        );
        for (const f of otpFigures('alone', alone, { p50: 5, p99: 20 })) onFigure(f);
      } catch (err) {
        onError('OTP latency alone', err);
      }
    }

    try {
      const config = loadConfig(env);
      const context = createQueueContext({
        redisUrl: opts.redisUrl,
        prefix,
        defaultCountry: 'ES',
        role: 'producer',
      });
      const campaigns = new CampaignService({ context, config });
      try {
        const before = fake.requests.length;
        const { runId } = await campaigns.startImport({ text: TEXT, recipients: { csv } });
        // Measure once the campaign's sends have begun, so OTPs meet a queue that is draining.
        await waitForArrivals(fake, before + 10, 60_000);
        let drainingAtEnd = false;
        const run = await sendOtps(
          service,
          fake,
          arrivals,
          spanishMobiles(count, shape.ranges.during),
          opts.perS,
          async () => void (drainingAtEnd = (await campaigns.runs.getRun(runId))?.state !== 'completed'),
        );
        // Campaign rows are +3460 followed by their row index; OTP numbers start at +34609000000.
        const isCampaign = (n: string) => Number(digits(n).slice(4)) < 9_000_000;
        const campaignSends = fake.requests.slice(before).filter((r) => r.recipients.some(isCampaign)).length;
        const label = `during a ${opts.campaignRows.toLocaleString('en')}-recipient personalised campaign at ${opts.ratePerS} req/s${shape.labelSuffix}`;
        for (const f of otpFigures(
          label,
          run,
          { p99: 50 },
          { campaignSends, campaignStillDrainingAfterLastOtp: drainingAtEnd },
        )) {
          // OTPs measured after the campaign finished say nothing about queueing behind it.
          onFigure(
            drainingAtEnd
              ? f
              : {
                  ...f,
                  pass: false,
                  target: `${f.target} (the campaign had finished before the last OTP was sent)`,
                },
          );
        }
      } finally {
        await campaigns.close();
        await context.close();
      }
    } catch (err) {
      onError(during, err);
    }
  } finally {
    await service?.stop();
    await removePrefix(opts.redisUrl, prefix).catch(() => undefined);
  }
}
