/**
 * `npm run bench`: every figure of the scale targets from one run, each with the anchor it is
 * judged against, printed as it is measured and written to bench-results.json.
 *
 *   npm run bench [-- --quick] [-- --only allowance,memory,otp,core,http] [-- --out file.json]
 *
 * Sections: `allowance` (requests/s seen by the provider against its allowance, 0–1,000 ms
 * latency, 1 and 2 worker processes), `memory` (Redis bytes per recipient and import rows/s on a
 * 1,000,000-row campaign, 100,000 with --quick), `otp` (single-send latency alone and during a
 * campaign in one `smsq start`, and during it with `smsq worker --lane priority` apart), `core`
 * (end-to-end recipients/s against the number-validation and BullMQ no-op ceilings), `http`
 * (POST /v1/messages requests/s and p99, against GET /healthz on the same server, and the rate at
 * which posted single sends are all sent; with `smsq start`, then with `smsq api` beside a `smsq
 * worker` process). Each section runs on its own: one
 * that fails is reported and the others still run. Everything runs on private redis-servers on
 * loopback, never on REDIS_URL. Exit code 1 when a section could not run; a figure that misses its
 * target is reported, not an error.
 */
import { parseArgs } from 'node:util';
import { startPrivateRedis } from '../test/helpers/redis-server.js';
import { benchAllowance } from './bench/allowance.js';
import {
  formatFigure,
  ratio,
  targetFigure,
  writeResults,
  type Figure,
  type SectionError,
} from './bench/figures.js';
import { benchOtpLatency } from './bench/otp-latency.js';
import { benchCampaign } from './bench-campaign.js';
import { benchCore } from './bench-core.js';
import { benchHttp } from './bench-http.js';

const SECTIONS = ['allowance', 'memory', 'otp', 'core', 'http'] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: 'bench-results.json' },
  },
});
const quick = values.quick;
const only = new Set((values.only ?? SECTIONS.join(',')).split(',').map((s) => s.trim()));
for (const s of only) {
  if (!(SECTIONS as readonly string[]).includes(s))
    throw new Error(`--only: unknown section ${JSON.stringify(s)} (one of ${SECTIONS.join(', ')})`);
}

const figures: Figure[] = [];
const errors: SectionError[] = [];
const onFigure = (f: Figure) => {
  figures.push(f);
  console.log(formatFigure(f));
};
const onError = (section: string, err: unknown) => {
  const error = err instanceof Error ? err.message : String(err);
  errors.push({ section, error });
  console.log(`ERROR ${section}: ${error}`);
};

const startedAt = new Date();
const redis = await startPrivateRedis();
const redisUrl = redis.url;

const sections: Record<Section, () => Promise<void>> = {
  allowance: () =>
    benchAllowance(
      {
        redisUrl,
        latenciesMs: [0, 100, 200, 1000],
        processes: [1, 2],
        ratePerS: 40,
        warmupS: quick ? 1 : 2,
        measureS: quick ? 3 : 6,
      },
      onFigure,
      onError,
    ),

  async memory() {
    // Its own private Redis: used_memory_peak is then this campaign's alone.
    const r = await benchCampaign({ rows: quick ? 100_000 : 1_000_000, timeoutS: 900 });
    const completed = r.state === 'completed' && r.counts.accepted === r.rows;
    const details = {
      rows: r.rows,
      state: r.state,
      accepted: r.counts.accepted,
      requests: r.requests,
      runSeconds: Math.round(r.seconds * 10) / 10,
      recipientsPerSEndToEnd: Math.round(r.recipientsPerS),
      redisKeysBytesPerRecipient: r.redisKeysBytesPerRecipient,
      redisByKind: r.redisByKind,
    };
    const rss = Math.max(r.rssMb.importer ?? 0, r.rssMb.workers ?? 0);
    const rows = `${r.rows.toLocaleString('en')}-row campaign`;
    onFigure(
      targetFigure(
        `Redis peak per recipient, ${rows}`,
        r.redisPeakBytesPerRecipient,
        'B',
        { op: '≤', value: 200 },
        completed,
        details,
      ),
    );
    onFigure(
      targetFigure(
        `Redis retained per recipient after completion, ${rows}`,
        r.redisRetainedBytesPerRecipient,
        'B',
        { op: '≤', value: 50 },
        completed,
        details,
      ),
    );
    onFigure(
      targetFigure(
        `campaign import (rows read and staged), ${rows}`,
        Math.round(r.importRowsPerS),
        'rows/s',
        { op: '≥', value: 100_000 },
        completed,
        { importSeconds: Math.round(r.importSeconds * 10) / 10, ...details },
      ),
    );
    onFigure(
      targetFigure(
        `campaign peak RSS (importer, workers), ${rows}`,
        rss,
        'MB',
        { op: '≤', value: 256 },
        completed,
        { ...r.rssMb },
      ),
    );
  },

  otp: () =>
    benchOtpLatency(
      { redisUrl, perS: 50, measureS: quick ? 2 : 10, campaignRows: quick ? 20_000 : 50_000, ratePerS: 100 },
      onFigure,
      onError,
    ),

  async core() {
    const r = await benchCore({
      redisUrl,
      requests: quick ? 5 : 20,
      perRequest: 10_000,
      noopJobs: quick ? 5_000 : 20_000,
    });
    const value = Math.round(r.recipientsPerS);
    const e2eRatio = ratio(r.recipientsPerS, r.validationPerS);
    onFigure({
      figure:
        'end-to-end recipients/s (producer, workers in their own process) vs number validation (libphonenumber-js max, 1 core)',
      value,
      unit: 'recipients/s',
      anchor: { name: 'validation ceiling', value: Math.round(r.validationPerS), unit: 'numbers/s' },
      ratio: e2eRatio,
      target: 'ratio ≥ 0.80',
      pass: e2eRatio >= 0.8,
      details: {
        delivered: r.delivered,
        recipientsPerSOneProcess: Math.round(r.recipientsPerSOneProcess),
        oneProcessRatio: ratio(r.recipientsPerSOneProcess, r.validationPerS),
      },
    });
    onFigure({
      figure: 'end-to-end recipients/s vs BullMQ no-op jobs/s (concurrency 50)',
      value,
      unit: 'recipients/s',
      anchor: { name: 'BullMQ no-op ceiling', value: Math.round(r.noopJobsPerS), unit: 'jobs/s' },
      ratio: ratio(r.recipientsPerS, r.noopJobsPerS),
      target: 'none (an anchor: recipients carried per job the queue can move)',
      pass: true,
    });
  },

  async http() {
    // As `npm start` runs it (one process), then as deployed in production (`smsq api` beside a
    // `smsq worker`): the workers send every accepted message meanwhile in both.
    const shapes = [
      { shape: 'start', label: '' },
      { shape: 'api+worker', label: ', smsq api beside a smsq worker process' },
    ] as const;
    for (const { shape, label } of shapes) {
      const r = await benchHttp({
        shape,
        redisUrl,
        durationS: quick ? 3 : 10,
        connections: 20,
        warmupS: quick ? 1 : 2,
        sustainedRequests: quick ? 1_000 : 4_000,
      });
      const clean = r.non2xx === 0 && r.errors === 0 && r.timeouts === 0;
      const details = {
        total: r.total,
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        connections: 20,
        shape,
      };
      onFigure(
        targetFigure(
          `POST /v1/messages requests/s (single recipient, autocannon${label})`,
          Math.round(r.requestsPerS),
          'req/s',
          { op: '≥', value: 5_000, note: 'no errors' },
          clean,
          details,
        ),
      );
      onFigure(
        targetFigure(
          `POST /v1/messages latency p99${label}`,
          r.latencyMs.p99,
          'ms',
          { op: '<', value: 50 },
          clean,
          { ...r.latencyMs, ...details },
        ),
      );
      onFigure({
        figure: `POST /v1/messages sustained: single sends posted and all sent, first POST to last sent${label}`,
        value: Math.round(r.sustained.requestsPerS),
        unit: 'req/s',
        anchor: { name: 'POST accepted', value: Math.round(r.requestsPerS), unit: 'req/s' },
        ratio: ratio(r.sustained.requestsPerS, r.requestsPerS),
        target:
          'none (what the workers send beside the API on the same cores; acceptance alone runs ahead of it)',
        pass: r.sustained.non2xx === 0,
        details: { ...r.sustained, shape },
      });
      onFigure({
        figure: `POST /v1/messages requests/s vs GET /healthz requests/s (same server, just before${label})`,
        value: Math.round(r.requestsPerS),
        unit: 'req/s',
        anchor: { name: 'GET /healthz', value: Math.round(r.anchor.requestsPerS), unit: 'req/s' },
        ratio: ratio(r.requestsPerS, r.anchor.requestsPerS),
        target: 'none (an anchor: what this machine gave the process for HTTP alone in the same run)',
        pass: true,
        details: {
          anchorLatencyMs: r.anchor.latencyMs,
          anchorNon2xx: r.anchor.non2xx,
          anchorErrors: r.anchor.errors,
        },
      });
    }
  },
};

try {
  console.log(`smsq bench${quick ? ' --quick' : ''}: ${[...only].join(', ')} (private Redis ${redisUrl})`);
  for (const section of SECTIONS) {
    if (!only.has(section)) continue;
    const t = performance.now();
    console.log(`\n== ${section}`);
    try {
      await sections[section]();
    } catch (err) {
      onError(section, err);
    }
    console.log(`   (${((performance.now() - t) / 1000).toFixed(0)} s)`);
  }
} finally {
  await redis.destroy();
}

const seconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
writeResults(values.out, { quick, startedAt: startedAt.toISOString(), seconds }, figures, errors);
console.log(`\n== summary (${seconds} s${quick ? ', --quick' : ''})`);
for (const f of figures) console.log(formatFigure(f));
for (const e of errors) console.log(`ERROR ${e.section}: ${e.error}`);
console.log(
  `${figures.filter((f) => f.pass).length}/${figures.length} figures meet their target; ${errors.length} section errors; written to ${values.out}`,
);
if (errors.length > 0) process.exitCode = 1;
