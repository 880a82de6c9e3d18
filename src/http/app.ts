import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { Queue } from 'bullmq';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { MAX_REQUEST_BYTES } from '../message/request.js';
import type { ProviderId } from '../message/types.js';
import { configuredProviderIds } from '../providers/index.js';
import { closeSharedQueue, smsqQueueOptions } from '../queue/context.js';
import { assertApiKeysConfigured, createApiKeyCheck } from './auth.js';
import { dashboardPlugin } from './dashboard.js';
import type { HttpDeps } from './deps.js';
import { installErrorHandling } from './error-handler.js';
import { createSmsqMetrics, metricsRoutes } from './metrics.js';
import { healthRoutes } from './routes/health.js';
import { messagesRoutes } from './routes/messages.js';
import { suppressionsRoutes } from './routes/suppressions.js';
import { queuePushedReport, type DeliveryJobData } from '../queue/delivery-worker.js';
import { DLR_QUEUE } from '../queue/names.js';
import { registerProviderRoutes } from './routes/provider-routes.js';
import { recipientsRoutes } from './routes/recipients.js';
import { withRedis } from './redis-guard.js';

export type { HttpDeps, SmsqRoutePlugin } from './deps.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** A caller's X-Request-Id is kept when it is a plain token; otherwise a new UUID. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * The path to log for a request: the route pattern (`/v1/suppressions/:number`) when one matched,
 * else the path with every segment holding 4+ digits redacted; never the query string. Numbers
 * travel in some URLs and must not reach the logs.
 */
export function loggablePath(
  request: Pick<FastifyRequest, 'url'> & { routeOptions?: { url?: string } },
): string {
  const pattern = request.routeOptions?.url;
  if (pattern) return pattern;
  const path = request.url.split('?')[0] ?? '';
  return path
    .split('/')
    .map((segment) => (/\d{4,}|%2B|\+/i.test(segment) ? '[redacted]' : segment))
    .join('/');
}

const serializers = {
  req: (request: FastifyRequest) => ({
    method: request.method,
    path: loggablePath(request),
    remoteAddress: request.ip,
  }),
  res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }),
};

function createBaseApp(logger: HttpDeps['logger']): FastifyInstance {
  // Our pino logger, with its redaction; typed as Fastify's base logger so every plugin type-checks.
  const loggerInstance: FastifyBaseLogger = logger.child({ module: 'http' }, { serializers });
  const app = Fastify({
    loggerInstance,
    bodyLimit: MAX_REQUEST_BYTES,
    genReqId: requestIdOf,
    requestIdHeader: false,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('apiKeyScope', '');
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('X-Request-Id', request.id);
  });
  installErrorHandling(app);
  return app;
}

/**
 * The HTTP app: API (`/v1`, bearer keys), OpenAPI at `/docs`, health, metrics and the dashboard.
 * Not listening yet: call `app.listen()`. Closing the app closes only what it created.
 */
export async function buildApp(deps: HttpDeps): Promise<FastifyInstance> {
  const { config, context, logger } = deps;
  assertApiKeysConfigured(config);
  const app = createBaseApp(logger);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'smsq',
        version,
        description: 'Bulk SMS from a Redis queue: send requests, follow them, manage the opt-out list.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  const providers = configuredProviderIds(config);
  const extraQueues = (deps.queues ?? []).map(
    (name) => new Queue(name, smsqQueueOptions(context.redis, context.prefix)),
  );
  const dlrQueue = new Queue<DeliveryJobData>(DLR_QUEUE, smsqQueueOptions(context.redis, context.prefix));
  const queues = [
    context.sendQueue,
    ...providers.map((p) => context.batchQueue(p)),
    dlrQueue as Queue,
    ...extraQueues,
  ];
  app.addHook('onClose', async () => {
    await Promise.all([...extraQueues, dlrQueue].map((q) => closeSharedQueue(q as Queue)));
  });

  await registerOpsRoutes(app, deps, { providers, queues: () => queues, followLedger: true });
  // Provider callbacks (OVH delivery reports) authenticate themselves, outside the API-key check.
  await registerProviderRoutes(app, {
    providers: config.providers,
    pushReport: (provider, report) => withRedis(context, () => queuePushedReport(dlrQueue, provider, report)),
    countIgnored: async (provider) => {
      await withRedis(context, () =>
        context.redis.hincrby(context.keys.deliveryStats, `${provider}|push-ignored`, 1),
      );
    },
  });

  const checkApiKey = createApiKeyCheck(config, logger.child({ module: 'http' }));
  await app.register(async (api) => {
    api.addHook('onRequest', checkApiKey);
    await api.register(messagesRoutes, deps);
    await api.register(suppressionsRoutes, deps);
    await api.register(recipientsRoutes, deps);
    // Extra routes (campaigns) live behind the same key check and error handler.
    for (const plugin of deps.plugins ?? []) await api.register(plugin, deps);
  });

  await app.register(dashboardPlugin, { config, logger, queues });
  return app;
}

/**
 * The operations endpoints of a worker process (`smsq worker --http-port`): `/healthz`, `/readyz`
 * (Redis answers, workers running) and `/metrics` (provider latency, paused providers, process).
 */
export async function buildOpsApp(
  deps: Pick<HttpDeps, 'config' | 'context' | 'logger' | 'workers' | 'metrics'>,
): Promise<FastifyInstance> {
  const app = createBaseApp(deps.logger);
  await registerOpsRoutes(app, deps, {
    providers: configuredProviderIds(deps.config),
    queues: () => [],
    followLedger: false,
  });
  return app;
}

/** `/healthz`, `/readyz` and `/metrics`, the same for the API and a worker's operations port. */
async function registerOpsRoutes(
  app: FastifyInstance,
  deps: Pick<HttpDeps, 'context' | 'workers' | 'metrics'>,
  opts: { providers: ProviderId[]; queues: () => Queue[]; followLedger: boolean },
): Promise<void> {
  const { context } = deps;
  await app.register(healthRoutes, { context, workers: deps.workers });
  await app.register(metricsRoutes, {
    metrics: deps.metrics ?? createSmsqMetrics(),
    redis: context.redis,
    ready: () => context.ready(),
    ledgerKey: context.keys.ledger,
    pausedKey: context.keys.paused,
    circuitKey: context.keys.circuit,
    failoversKey: context.keys.failovers,
    providers: opts.providers,
    queues: opts.queues,
    followLedger: opts.followLedger,
    queuePrefix: context.prefix,
    deliveryStatsKey: context.keys.deliveryStats,
  });
}
