/**
 * Process compositions: `smsq start` (API + dashboard + workers in one process, for development
 * and small installs), `smsq api` (HTTP only) and `smsq worker` (workers only). Each goes
 * config → logger → Redis → parts → signals, and closes its parts in reverse order on SIGTERM.
 */
import type { FastifyInstance } from 'fastify';
import { CAMPAIGN_RUNS_QUEUE } from '../campaigns/store.js';
import {
  startCampaignWorkers,
  type CampaignWorkers,
  type StartCampaignWorkersOptions,
} from '../campaigns/workers.js';
import { loadConfig, type Config } from '../config.js';
import { buildApp, buildOpsApp } from '../http/app.js';
import { assertApiKeysConfigured } from '../http/auth.js';
import type { SmsqRoutePlugin } from '../http/deps.js';
import { campaignRoutes } from '../http/routes/campaigns.js';
import { createSmsqMetrics, type SmsqMetrics } from '../http/metrics.js';
import { createStdoutLogger, type Logger } from '../logger.js';
import type { ProviderId } from '../message/types.js';
import { providerModule } from '../providers/index.js';
import { createQueueContext, type QueueContext } from '../queue/context.js';
import type { Lane } from '../queue/names.js';
import {
  backgroundDuties,
  startWorkers,
  type SmsqWorkers,
  type StartWorkersOptions,
} from '../queue/workers.js';
import { WEBHOOK_QUEUE } from '../webhooks/events.js';
import { installShutdown, type ShutdownStep } from './lifecycle.js';
import { discoverRedis, displayRedisUrl, redisAnswers } from './redis-discovery.js';

export interface ServiceOptions {
  /** Environment to read (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Extra authenticated route plugins, beside the campaign routes. */
  plugins?: SmsqRoutePlugin[];
  /** Extra queue names for the dashboard and /metrics, beside the campaign-runs queue. */
  queues?: string[];
  /**
   * The seam for an embedding program or a test harness (`test/helpers/test-smsq.ts`); the CLI
   * passes none of these. The root logger to use instead of one on stdout at LOG_LEVEL.
   */
  logger?: Logger;
  /**
   * Whether SIGTERM/SIGINT shut the service down. `false` when the caller owns the process (a
   * test runner): it calls `shutdown()` itself and no listener is left on `process`.
   * @defaultValue true
   */
  signals?: boolean;
  /** Passed to the batch workers: injected providers, a send-window check (tests, benchmarks). */
  workerOptions?: Pick<StartWorkersOptions, 'providers' | 'holdUntil'>;
  /** Passed to the campaign-run worker: a wall clock, hooks, chunk sizes (tests). */
  campaignOptions?: Omit<StartCampaignWorkersOptions, 'config' | 'logger' | 'context'>;
}

export interface RunningService {
  config: Config;
  logger: Logger;
  /** `http://host:port` of the HTTP server, when this process serves one. */
  url?: string;
  app?: FastifyInstance;
  workers?: SmsqWorkers;
  /** The campaign-run worker, beside `workers`. */
  campaignWorkers?: CampaignWorkers;
  /** The same as the first SIGTERM: closes every part in reverse order. */
  shutdown(reason?: string): Promise<void>;
}

/** Closes what was started so far when a later step of a start fails, then rethrows. */
async function startSteps(
  logger: Logger,
  options: Pick<ServiceOptions, 'signals'>,
  build: (steps: ShutdownStep[]) => Promise<Omit<RunningService, 'shutdown' | 'logger'>>,
): Promise<RunningService> {
  const steps: ShutdownStep[] = [];
  try {
    const running = await build(steps);
    const lifecycle = installShutdown(steps, {
      logger,
      graceMs: running.config.shutdownTimeoutMs,
      signals: options.signals,
    });
    return { ...running, logger, shutdown: (reason = 'shutdown()') => lifecycle.shutdown(reason) };
  } catch (err) {
    for (const step of steps.reverse()) await step.close().catch(() => undefined);
    throw err;
  }
}

async function listen(app: FastifyInstance, config: Config): Promise<string> {
  await app.listen({ port: config.http.port, host: config.http.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.http.port;
  const host = config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host;
  return `http://${host}:${port}`;
}

/** Campaign routes and their queue are part of every API. */
function httpExtras(options: ServiceOptions): Pick<ServiceOptions, 'plugins' | 'queues'> {
  return {
    plugins: [campaignRoutes, ...(options.plugins ?? [])],
    queues: [CAMPAIGN_RUNS_QUEUE, WEBHOOK_QUEUE, ...(options.queues ?? [])],
  };
}

/**
 * The batch workers and the campaign-run worker (unless the bulk lane is not worked here), as
 * shutdown steps: the campaign worker closes first (it shares the workers' connection).
 */
async function startAllWorkers(
  steps: ShutdownStep[],
  opts: Pick<ServiceOptions, 'workerOptions' | 'campaignOptions'> & {
    config: Config;
    logger: Logger;
    metrics: SmsqMetrics;
    only?: readonly ProviderId[];
    lanes?: readonly Lane[];
  },
): Promise<{
  workers: SmsqWorkers;
  campaignWorkers?: CampaignWorkers;
  providers: ReadonlyMap<ProviderId, unknown>;
}> {
  const { config, logger } = opts;
  const workers = await startWorkers({
    ...opts.workerOptions,
    config,
    logger,
    only: opts.only,
    lanes: opts.lanes,
    observeProviderRequest: (o) => opts.metrics.observeProviderRequest(o),
    onEnqueueRepaired: () => opts.metrics.enqueueRepaired.inc(),
    onWebhookDelivery: (result) => opts.metrics.webhookDeliveries.inc({ result }),
  });
  const { providers } = workers;
  steps.push({
    name: 'workers',
    close: (abortAt) => workers.close(abortAt === undefined ? undefined : Math.max(0, abortAt - Date.now())),
    abort: () => workers.abort(),
  });
  // Campaign runs feed the bulk lane: a priority-only process leaves them to the bulk lane's.
  if (!backgroundDuties(workers.lanes)) return { workers, providers };
  const campaigns = await startCampaignWorkers({
    ...opts.campaignOptions,
    config,
    logger,
    context: workers.context,
  });
  steps.push({ name: 'campaign workers', close: () => campaigns.close() });
  return { workers, campaignWorkers: campaigns, providers };
}

function producerContext(config: Config): QueueContext {
  return createQueueContext({
    redisUrl: config.redisUrl,
    prefix: config.prefix,
    defaultCountry: config.defaultCountry,
    role: 'producer',
  });
}

/**
 * `smsq start`: the whole service in one process. Finds Redis (starting a private redis-server
 * in development when none is configured or running), then the workers, then the HTTP server.
 */
export async function startService(options: ServiceOptions = {}): Promise<RunningService> {
  const loaded = loadConfig(options.env);
  assertApiKeysConfigured(loaded);
  const logger = options.logger ?? createStdoutLogger(loaded.logLevel);
  const log = logger.child({ module: 'start' });
  return startSteps(logger, options, async (steps) => {
    const redis = await discoverRedis(loaded, logger);
    const server = redis.server;
    if (server) steps.push({ name: 'private redis-server', close: () => server.stop() });
    const config: Config = { ...loaded, redisUrl: redis.url };

    const metrics = createSmsqMetrics();
    const { workers, campaignWorkers, providers } = await startAllWorkers(steps, {
      ...options,
      config,
      logger,
      metrics,
    });

    const context = producerContext(config);
    steps.push({ name: 'producer connection', close: () => context.close() });
    const app = await buildApp({
      config,
      context,
      logger,
      workers,
      metrics,
      ...httpExtras(options),
    });
    steps.push({ name: 'http server', close: () => app.close() });
    const url = await listen(app, config);
    log.info(
      {
        url,
        redis: displayRedisUrl(config.redisUrl),
        prefix: config.prefix,
        providers: [...providers.keys()],
        defaultProvider: config.defaultProvider,
      },
      `smsq started: API ${url}/v1, docs ${url}/docs, dashboard ${url}/admin/queues, metrics ${url}/metrics`,
    );
    const fallback = providerModule(config.defaultProvider);
    if (fallback.fallback) {
      log.warn(
        `No provider credentials: every request goes to the ${fallback.id.toUpperCase()} (${fallback.description}); no SMS leaves this machine`,
      );
    }
    return { config, url, app, workers, campaignWorkers };
  });
}

/** `smsq api`: the HTTP API and dashboard only (run `smsq worker` processes beside it). */
export async function startApi(options: ServiceOptions = {}): Promise<RunningService> {
  const config = loadConfig(options.env);
  assertApiKeysConfigured(config);
  const logger = options.logger ?? createStdoutLogger(config.logLevel);
  const log = logger.child({ module: 'api' });
  return startSteps(logger, options, async (steps) => {
    if (!(await redisAnswers(config.redisUrl, 2_000))) {
      // Not fatal: the API answers 503 and /readyz says not ready until Redis is back.
      log.error(
        { redis: displayRedisUrl(config.redisUrl) },
        'Redis is not reachable at REDIS_URL; answering 503 until it is',
      );
    }
    const context = producerContext(config);
    steps.push({ name: 'producer connection', close: () => context.close() });
    const app = await buildApp({ config, context, logger, ...httpExtras(options) });
    steps.push({ name: 'http server', close: () => app.close() });
    const url = await listen(app, config);
    log.info(
      { url, redis: displayRedisUrl(config.redisUrl), prefix: config.prefix },
      `smsq API listening on ${url}`,
    );
    return { config, url, app };
  });
}

export interface WorkerOptions extends Pick<
  ServiceOptions,
  'env' | 'logger' | 'signals' | 'workerOptions' | 'campaignOptions'
> {
  /** Run batch workers for these providers only (the splitter always runs). */
  only?: readonly ProviderId[];
  /** Work these lanes only (`--lane`; default both): see StartWorkersOptions.lanes. */
  lanes?: readonly Lane[];
  /** Serve /healthz, /readyz and /metrics on this port (HOST as the API), e.g. for a container health check. */
  httpPort?: number;
}

/**
 * `smsq worker` (and workers/worker.ts): the splitter, the batch workers and the campaign-run
 * worker, against REDIS_URL (workers wait through a Redis restart), with an optional operations port.
 */
export async function startWorkerService(options: WorkerOptions = {}): Promise<RunningService> {
  const config = loadConfig(options.env);
  const logger = options.logger ?? createStdoutLogger(config.logLevel);
  return startSteps(logger, options, async (steps) => {
    const metrics = createSmsqMetrics();
    const { workers, campaignWorkers } = await startAllWorkers(steps, {
      ...options,
      config,
      logger,
      metrics,
      only: options.only,
      lanes: options.lanes,
    });
    if (options.httpPort === undefined) return { config, workers, campaignWorkers };

    const context = producerContext(config);
    steps.push({ name: 'producer connection', close: () => context.close() });
    const app = await buildOpsApp({ config, context, logger, workers, metrics });
    steps.push({ name: 'operations http server', close: () => app.close() });
    const url = await listen(app, { ...config, http: { ...config.http, port: options.httpPort } });
    logger
      .child({ module: 'worker' })
      .info({ url }, `Worker operations endpoints on ${url} (/healthz, /readyz, /metrics)`);
    return { config, url, app, workers, campaignWorkers };
  });
}
