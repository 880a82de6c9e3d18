import { existsSync } from 'node:fs';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { discoverRedis, redisAnswers } from '../../src/service/redis-discovery.js';
import { finished, runSmsq, spawnSmsq, waitForLine } from '../helpers/cli.js';
import { freePort, hasRedisServerBinary } from '../helpers/redis-server.js';
import { redisUrl, testConfig } from '../helpers/smsq.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

const KEY = 'proc-key';
const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

/** POSTs a request, expecting 202; its id. */
async function post(url: string, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

/** The request's summary once `done` says so (past 20 s, the last one, for the assertions). */
async function summaryWhen(
  url: string,
  id: string,
  done: (summary: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  let summary: Record<string, unknown> = {};
  await eventually(
    async () => {
      summary = (await (await fetch(`${url}/v1/messages/${id}`, { headers: auth })).json()) as Record<
        string,
        unknown
      >;
      return done(summary);
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  ).catch(() => undefined);
  return summary;
}

/** POSTs a single send and waits for it to complete (past 20 s, the last summary, for the assertions). */
async function sendAndWait(url: string): Promise<Record<string, unknown>> {
  const id = await post(url, { to: '+34600000001', text: 'Hola' });
  return summaryWhen(url, id, (s) => s.state === 'completed');
}

/** The `url` field of a JSON log line. */
const urlOf = (line: string) => (JSON.parse(line) as { url: string }).url;

describe('start-up refusals, as processes', () => {
  it('refuses a bad variable, production without API keys, and an unreachable REDIS_URL', async () => {
    const closedPort = await freePort();
    const [badPort, noKeys, noRedis] = await Promise.all([
      runSmsq(['start'], { PORT: 'abc' }),
      runSmsq(['start'], { NODE_ENV: 'production', REDIS_URL: redisUrl() }),
      runSmsq(['start'], { REDIS_URL: `redis://127.0.0.1:${closedPort}`, PORT: '0' }),
    ]);
    expect(badPort.code).toBe(1);
    expect(badPort.stderr).toMatch(/^Invalid configuration:\nPORT: /);
    expect(noKeys.code).toBe(1);
    expect(noKeys.stderr).toContain('SMSQ_API_KEYS: required when NODE_ENV=production');
    expect(noRedis.code).not.toBe(0);
    expect(noRedis.stderr).toBe(
      `smsq: Redis is not reachable at REDIS_URL=redis://127.0.0.1:${closedPort}. Start it or correct REDIS_URL.\n`,
    );
  });
});

describe('Redis discovery for smsq start', () => {
  const logger = createLogger('silent');

  it.skipIf(!hasRedisServerBinary())(
    'starts a private redis-server when REDIS_URL is unset and nothing answers',
    async () => {
      const config = {
        ...testConfig(),
        redisUrl: `redis://127.0.0.1:${await freePort()}`,
        redisUrlExplicit: false,
      };
      const found = await discoverRedis(config, logger);
      try {
        expect(found.server).toBeDefined();
        expect(found.url).not.toBe(config.redisUrl);
        expect(await redisAnswers(found.url)).toBe(true);
      } finally {
        await found.server?.stop();
      }
      expect(await redisAnswers(found.url, 300)).toBe(false);
      expect(existsSync(found.server!.dir)).toBe(false);
    },
  );

  it('without redis-server on the PATH, says how to get Redis and names REDIS_URL', async () => {
    const config = {
      ...testConfig(),
      redisUrl: `redis://127.0.0.1:${await freePort()}`,
      redisUrlExplicit: false,
    };
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(discoverRedis(config, logger)).rejects.toThrow(
        /REDIS_URL is not set.*redis-server is not on the PATH.*Set REDIS_URL=/,
      );
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('running services, as processes', () => {
  /** The environment of the service processes: a fresh prefix (removed when the test ends). */
  async function serviceEnv(): Promise<Record<string, string>> {
    const { prefix } = (await startTestSmsq({ api: false, workers: false })).config;
    return {
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
      PORT: '0',
      SMSQ_API_KEYS: KEY,
      SIMULATOR_LATENCY_MS: '0',
      LOG_LEVEL: 'info',
    };
  }

  it('smsq start serves the API with its workers, and exits 0 on SIGTERM', async () => {
    const child = spawnSmsq(['start'], await serviceEnv());
    const url = urlOf(await waitForLine(child, /"smsq started/));
    const result = await sendAndWait(url);
    expect(result).toMatchObject({ state: 'completed', counts: { total: 1, accepted: 1 } });
    expect(await (await fetch(`${url}/readyz`)).json()).toEqual({
      status: 'ready',
      redis: 'ok',
      workers: 'running',
    });

    const exit = finished(child);
    child.kill('SIGTERM');
    const { code, stdout } = await exit;
    expect(code).toBe(0);
    expect(stdout).toContain('Shutdown complete');
  });

  it('smsq api + smsq worker --http-port: the production pair, each with its own health and metrics', async () => {
    const env = await serviceEnv();
    const api = spawnSmsq(['api'], env);
    const worker = spawnSmsq(['worker', '--http-port', '0'], env);
    const [apiUrl, workerUrl] = await Promise.all([
      waitForLine(api, /"smsq API listening/).then(urlOf),
      waitForLine(worker, /"Worker operations endpoints/).then(urlOf),
    ]);
    const result = await sendAndWait(apiUrl);
    expect(result).toMatchObject({ state: 'completed', counts: { accepted: 1 } });

    expect(await (await fetch(`${workerUrl}/readyz`)).json()).toEqual({
      status: 'ready',
      redis: 'ok',
      workers: 'running',
    });
    expect(await (await fetch(`${apiUrl}/readyz`)).json()).toEqual({
      status: 'ready',
      redis: 'ok',
      workers: 'not-run-here',
    });
    const workerMetrics = await (await fetch(`${workerUrl}/metrics`)).text();
    expect(workerMetrics).toMatch(
      /smsq_provider_request_seconds_count\{provider="simulator",outcome="ok"\} [1-9]/,
    );
    const apiMetrics = await (await fetch(`${apiUrl}/metrics`)).text();
    expect(apiMetrics).toMatch(/smsq_recipients_total\{provider="simulator",outcome="accepted"\} 1/);
    expect(apiMetrics).toContain('smsq_credits_charged_total{provider="simulator"} 1');

    const exits = [finished(api), finished(worker)];
    api.kill('SIGTERM');
    worker.kill('SIGTERM');
    expect((await Promise.all(exits)).map((e) => e.code)).toEqual([0, 0]);
  });

  it('smsq worker --lane priority sends a high request and leaves a normal one queued until a --lane bulk worker starts', async () => {
    const env = await serviceEnv();
    const api = spawnSmsq(['api'], env);
    const priorityWorker = spawnSmsq(['worker', '--lane', 'priority'], env);
    const [apiUrl] = await Promise.all([
      waitForLine(api, /"smsq API listening/).then(urlOf),
      waitForLine(priorityWorker, /"Workers started/),
    ]);
    // Two recipients: `normal`, the bulk lane. Queued first, so the splitter would meet it first.
    const normal = await post(apiUrl, { to: ['+34600000002', '+34600000003'], text: 'Aviso' });
    const high = await post(apiUrl, { to: '+34600000001', text: 'Code 1234' });
    expect(await summaryWhen(apiUrl, high, (s) => s.state === 'completed')).toMatchObject({
      state: 'completed',
      counts: { total: 1, accepted: 1 },
    });
    // The priority-only worker took nothing of the bulk lane: its send job still waits, unplanned.
    const redis = new Redis(env.REDIS_URL!, { maxRetriesPerRequest: null });
    const bulkSends = new Queue('send', { connection: redis, prefix: env.SMSQ_PREFIX });
    try {
      const counts = await bulkSends.getJobCounts('waiting', 'prioritized', 'active', 'completed', 'failed');
      expect(counts.waiting! + counts.prioritized!).toBe(1);
      expect(counts).toMatchObject({ active: 0, completed: 0, failed: 0 });
    } finally {
      await bulkSends.close();
      redis.disconnect();
    }
    expect(await summaryWhen(apiUrl, normal, () => true)).toMatchObject({
      state: 'queued',
      counts: { total: 2, accepted: 0 },
    });

    const bulkWorker = spawnSmsq(['worker', '--lane', 'bulk'], env);
    expect(await summaryWhen(apiUrl, normal, (s) => s.state === 'completed')).toMatchObject({
      state: 'completed',
      counts: { total: 2, accepted: 2 },
    });

    const exits = [finished(api), finished(priorityWorker), finished(bulkWorker)];
    for (const child of [api, priorityWorker, bulkWorker]) child.kill('SIGTERM');
    expect((await Promise.all(exits)).map((e) => e.code)).toEqual([0, 0, 0]);
  });

  it('smsq worker refuses an unknown --lane, naming the option', async () => {
    const result = await runSmsq(['worker', '--lane', 'urgent'], await serviceEnv());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("option '--lane <lane>' argument 'urgent' is invalid");
    expect(result.stderr).toContain('expected one of priority, bulk');
  });
});
