import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { CampaignService } from '../../src/campaigns/service.js';
import { SmsClient } from '../../src/client.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import { configuredProviderIds } from '../../src/providers/index.js';
import { createQueueContext, type QueueContext } from '../../src/queue/context.js';
import type { RequestSummary } from '../../src/queue/summary.js';
import type { SmsqWorkers } from '../../src/queue/workers.js';
import {
  startApi,
  startService,
  startWorkerService,
  type RunningService,
  type ServiceOptions,
} from '../../src/service/start.js';
import { captureLogger, removePrefix, testEnv } from './smsq.js';
import { onTeardown } from './teardown.js';
import { waitFor, type WaitOptions } from './wait.js';

export interface TestSmsqOptions extends Pick<
  ServiceOptions,
  'plugins' | 'queues' | 'workerOptions' | 'campaignOptions'
> {
  /** Serve the HTTP API (and dashboard, /metrics) on a free loopback port. @defaultValue true */
  api?: boolean;
  /** Run the splitter, batch workers and campaign-run worker in this process. @defaultValue true */
  workers?: boolean;
  /** A producer-side CampaignService (`campaigns`) for the test to drive. @defaultValue false */
  campaigns?: boolean;
  /** Environment on top of the test defaults (see `testEnv`): the run's Redis, a unique prefix, fast retries. */
  env?: Record<string, string>;
  /**
   * The Redis to use instead of the run's, as smsq's environment (`REDIS_URL`, or
   * `REDIS_CLUSTER_NODES` / `REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER`): a test's own Cluster or
   * Sentinel set. Replaces every Redis key of the run's environment, so the two never mix.
   */
  redis?: Record<string, string>;
  /** Level of the captured log. @defaultValue 'debug' */
  logLevel?: string;
  /** Log into this capture (from `captureLogger`), e.g. to read what a start that failed logged. */
  capture?: ReturnType<typeof captureLogger>;
}

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the text of a non-JSON answer. */
  body: T;
}

export interface TestSmsq {
  config: Config;
  /** `http://127.0.0.1:port` of the API; throws when it does not run (option `api: false`). */
  url: string;
  /** The API's Fastify app; throws when it does not run. */
  app: FastifyInstance;
  /** The in-process workers (the first set; see `startWorkers`); throws when they do not run (option `workers: false`). */
  workers: SmsqWorkers;
  /** Whether this harness runs the API / in-process workers. */
  runs: { api: boolean; workers: boolean };
  logger: Logger;
  client: SmsClient;
  /** `authorization` header with the first API key. */
  headers: Record<string, string>;
  /** Calls the API with the first API key; a plain object `body` is sent as JSON. */
  api<T = Record<string, unknown>>(
    path: string,
    init?: { method?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<ApiResponse<T>>;
  /** Everything logged (JSON lines), to prove what was never logged. */
  logs: () => string;
  /** The producer-side campaign service (option `campaigns`). */
  campaigns: CampaignService;
  /** The producer connection the campaign service uses (option `campaigns`). */
  producer: QueueContext;
  /** Writes a CSV file in the harness's temp dir and returns its absolute path. */
  csv: (content: string) => string;
  /** Starts one more set of workers on the same prefix (a second worker process, or workers started late). */
  startWorkers: () => Promise<SmsqWorkers>;
  /** Polls the request (through Redis) until it is in `state` (default `completed`). */
  waitForRequest(
    id: string,
    options?: WaitOptions & { state?: RequestSummary['state'] },
  ): Promise<RequestSummary>;
  /**
   * Closes everything in reverse order of start (idempotent), then removes the prefix — unless the
   * test failed: its keys stay for inspection and the prefix is printed. Called by the teardown
   * registry when the test (or, from `beforeAll`, the file) ends.
   */
  close: () => Promise<void>;
}

/** The keys that say where Redis is; `redis` replaces all of them. */
const REDIS_ENV_KEYS = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER'];

/** Default API keys of the harness; `headers` and `api()` use the first. */
const TEST_API_KEYS = 'test-key-1,test-key-2';

/**
 * smsq on the run's Redis under a fresh prefix, started through the same composition root as
 * `smsq start` / `smsq api` / `smsq worker` (src/service/start.ts), with the log captured and
 * no signal handlers. Closes itself when the test ends (see teardown.ts).
 */
export async function startTestSmsq(options: TestSmsqOptions = {}): Promise<TestSmsq> {
  const env = testEnv({
    SMSQ_API_KEYS: TEST_API_KEYS,
    PORT: '0',
    HOST: '127.0.0.1',
    // Closing a test's workers lets active batches finish this long, then aborts them.
    SMSQ_SHUTDOWN_TIMEOUT_MS: '1000',
    ...options.env,
  });
  if (options.redis) {
    for (const key of REDIS_ENV_KEYS) delete env[key];
    Object.assign(env, options.redis);
  }
  const { logger, lines } = options.capture ?? captureLogger(options.logLevel ?? 'debug');
  const serviceOptions = {
    env,
    logger,
    signals: false,
    plugins: options.plugins,
    queues: options.queues,
    workerOptions: options.workerOptions,
    campaignOptions: options.campaignOptions,
  } satisfies ServiceOptions;
  const api = options.api ?? true;
  const withWorkers = options.workers ?? true;

  /** Started services and other parts, in start order; closed in reverse. */
  const parts: { name: string; close: () => Promise<void> }[] = [];
  let closing: Promise<void> | undefined;
  let dir: string | undefined;
  let failed = false;
  let config: Config | undefined;

  const closeParts = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const part of parts.splice(0).reverse()) {
      try {
        await part.close();
      } catch (err) {
        errors.push(new Error(`closing ${part.name} failed`, { cause: err }));
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    const stepFailures = lines()
      .split('\n')
      .filter((l) => l.includes('"msg":"Close step failed"'));
    if (stepFailures.length > 0) errors.push(new Error(`a close step failed: ${stepFailures.join('\n')}`));
    if (config) {
      if (failed) console.warn(`kept prefix ${config.prefix} of a failed test on ${config.redisUrl}`);
      else await removePrefix(config.redisUrl, config.prefix);
    }
    if (errors.length > 0) throw errors.length === 1 ? errors[0] : new AggregateError(errors, 'close failed');
  };
  const close = (): Promise<void> => (closing ??= closeParts());
  onTeardown('startTestSmsq', (outcome) => {
    failed = outcome.failed;
    return close();
  });

  /**
   * Registers a started service for teardown, and resolves once its workers' connections are
   * ready: a worker closed while it still connects rejects commands nobody awaits.
   */
  const track = async (started: Promise<RunningService>, name: string): Promise<RunningService> => {
    const service = await started;
    parts.push({ name, close: () => service.shutdown('test teardown') });
    const workers = [...(service.workers?.workers ?? [])];
    if (service.campaignWorkers) workers.push(service.campaignWorkers.worker);
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    return service;
  };

  // Known before anything starts, so a start that fails half-way still removes its prefix.
  config = loadConfig(env);
  try {
    let service: RunningService | undefined;
    if (api && withWorkers) service = await track(startService(serviceOptions), 'smsq start');
    else if (api) service = await track(startApi(serviceOptions), 'smsq api');
    else if (withWorkers) service = await track(startWorkerService(serviceOptions), 'smsq worker');
    config = service?.config ?? config;
    const cfg = config;

    // Created on first use: a producer connection closed mid-handshake (a test that never used
    // it) leaves an unhandled ready-check error.
    let client: SmsClient | undefined;
    const getClient = (): SmsClient => {
      if (!client) {
        const created = new SmsClient({ redis: cfg.redisUrl, prefix: cfg.prefix });
        parts.push({ name: 'client', close: () => created.close() });
        client = created;
      }
      return client;
    };

    let campaigns: CampaignService | undefined;
    let producer: QueueContext | undefined;
    if (options.campaigns) {
      const context = createQueueContext({
        redisUrl: cfg.redisUrl,
        prefix: cfg.prefix,
        defaultCountry: cfg.defaultCountry,
        role: 'producer',
      });
      producer = context;
      parts.push({ name: 'campaign producer connection', close: () => context.close() });
      // Connected before use: closing a producer connection mid-handshake leaves an unhandled ready-check rejection.
      await context.ready();
      const service = new CampaignService({
        context,
        config: cfg,
        providers: configuredProviderIds(cfg),
      });
      parts.push({ name: 'campaign service', close: () => service.close() });
      campaigns = service;
    }

    const headers = { authorization: `Bearer ${cfg.http.apiKeys[0] ?? ''}` };
    let n = 0;
    return {
      config: cfg,
      get url(): string {
        if (!service?.url) throw new Error('startTestSmsq: the API is not running (option api: false)');
        return service.url;
      },
      get app(): FastifyInstance {
        if (!service?.app) throw new Error('startTestSmsq: the API is not running (option api: false)');
        return service.app;
      },
      get workers(): SmsqWorkers {
        if (!service?.workers)
          throw new Error('startTestSmsq: no workers in this process (option workers: false)');
        return service.workers;
      },
      runs: { api, workers: withWorkers },
      logger,
      get client(): SmsClient {
        return getClient();
      },
      headers,
      async api<T>(
        path: string,
        init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
      ) {
        if (!service?.url) throw new Error('startTestSmsq: the API is not running (option api: false)');
        const json =
          init.body !== undefined && typeof init.body === 'object' && !(init.body instanceof Uint8Array);
        const res = await fetch(`${service.url}${path}`, {
          method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
          headers: { ...headers, ...(json ? { 'content-type': 'application/json' } : {}), ...init.headers },
          body: json ? JSON.stringify(init.body) : (init.body as string | undefined),
        });
        const text = await res.text();
        const isJson = res.headers.get('content-type')?.includes('json') ?? false;
        return {
          status: res.status,
          headers: res.headers,
          body: (isJson && text ? JSON.parse(text) : text) as T,
        };
      },
      logs: lines,
      get campaigns(): CampaignService {
        if (!campaigns)
          throw new Error('startTestSmsq: pass { campaigns: true } to get the campaign service');
        return campaigns;
      },
      get producer(): QueueContext {
        if (!producer)
          throw new Error('startTestSmsq: pass { campaigns: true } to get the producer connection');
        return producer;
      },
      csv(content: string): string {
        dir ??= mkdtempSync(join(tmpdir(), 'smsq-test-'));
        n += 1;
        const path = join(dir, `recipients-${n}.csv`);
        writeFileSync(path, content);
        return path;
      },
      async startWorkers() {
        const more = await track(startWorkerService(serviceOptions), 'more workers');
        return more.workers!;
      },
      waitForRequest(id, opts = {}) {
        const state = opts.state ?? 'completed';
        return waitFor(
          async () => {
            const summary = await getClient().get(id);
            return summary.state === state ? summary : undefined;
          },
          { timeoutMs: 15_000, what: `request ${id} ${state}`, ...opts },
        );
      },
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
