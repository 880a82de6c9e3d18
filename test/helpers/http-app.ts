import type { FastifyInstance } from 'fastify';
import type { Config } from '../../src/config.js';
import { buildApp, type HttpDeps } from '../../src/http/app.js';
import type { Logger } from '../../src/logger.js';
import { createQueueContext, type QueueContext } from '../../src/queue/context.js';
import { startWorkers, type SmsqWorkers } from '../../src/queue/workers.js';
import { captureLogger, removePrefix, testConfig } from './smsq.js';

export interface RunningApi {
  config: Config;
  url: string;
  app: FastifyInstance;
  context: QueueContext;
  workers?: SmsqWorkers;
  logger: Logger;
  /** Everything the app and workers logged. */
  lines: () => string;
  /** Starts workers later (e.g. after cancelling a request they have not planned yet). */
  startWorkers(): Promise<SmsqWorkers>;
  close(): Promise<void>;
}

/**
 * The HTTP app listening on a free port (a real server), with a producer context and, unless
 * `workers: false`, the simulator workers in this process. `close()` stops it all and removes the prefix.
 */
export async function startTestApi(
  opts: { env?: Record<string, string>; workers?: boolean; deps?: Partial<HttpDeps> } = {},
): Promise<RunningApi> {
  const config = testConfig({ SMSQ_API_KEYS: 'test-key-1,test-key-2', ...opts.env });
  const { logger, lines } = captureLogger('info');
  let workers: SmsqWorkers | undefined =
    opts.workers === false ? undefined : await startWorkers({ config, logger });
  const context = createQueueContext({
    redisUrl: config.redisUrl,
    prefix: config.prefix,
    defaultCountry: config.defaultCountry,
    role: 'producer',
  });
  const app = await buildApp({ config, context, logger, workers, ...opts.deps });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    config,
    url: address,
    app,
    context,
    workers,
    logger,
    lines,
    async startWorkers() {
      workers = await startWorkers({ config, logger });
      return workers;
    },
    async close() {
      await app.close();
      await context.close();
      await workers?.close(1_000);
      await removePrefix(config.redisUrl, config.prefix);
    },
  };
}

/** Polls GET /v1/messages/:id until the request is completed. */
export async function waitCompleted(
  api: Pick<RunningApi, 'url'>,
  id: string,
  headers: Record<string, string>,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${api.url}/v1/messages/${id}`, { headers });
    const body = (await res.json()) as Record<string, unknown>;
    if (body.state === 'completed') return body;
    if (Date.now() > deadline) throw new Error(`request ${id} not completed: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
