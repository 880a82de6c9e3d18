import type { FastifyInstance } from 'fastify';
import type { Config } from '../../src/config.js';
import type { HttpDeps } from '../../src/http/app.js';
import type { Logger } from '../../src/logger.js';
import { createQueueContext, type QueueContext } from '../../src/queue/context.js';
import type { SmsqWorkers } from '../../src/queue/workers.js';
import { onTeardown } from './teardown.js';
import { startTestSmsq } from './test-smsq.js';
import { waitFor } from './wait.js';

/** @deprecated use startTestSmsq */
export interface RunningApi {
  config: Config;
  url: string;
  app: FastifyInstance;
  /** A producer context on the prefix (not the app's own: the composition root keeps that). */
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
 * The HTTP app listening on a free port (a real server) and, unless `workers: false`, the
 * workers in this process. `close()` stops it all and removes the prefix.
 * @deprecated use startTestSmsq({ env, workers, plugins })
 */
export async function startTestApi(
  opts: {
    env?: Record<string, string>;
    workers?: boolean;
    deps?: Pick<Partial<HttpDeps>, 'plugins' | 'queues'>;
  } = {},
): Promise<RunningApi> {
  const smsq = await startTestSmsq({
    env: opts.env,
    workers: opts.workers !== false,
    plugins: opts.deps?.plugins,
    queues: opts.deps?.queues,
    logLevel: 'info',
  });
  const { config } = smsq;
  const context = createQueueContext({
    redisUrl: config.redisUrl,
    prefix: config.prefix,
    defaultCountry: config.defaultCountry,
    role: 'producer',
  });
  // Connected before use: closing a producer connection mid-handshake leaves an unhandled ready-check rejection.
  await context.ready();
  onTeardown('producer context', () => context.close());
  return {
    context,
    config: smsq.config,
    url: smsq.url,
    app: smsq.app,
    workers: smsq.runs.workers ? smsq.workers : undefined,
    logger: smsq.logger,
    lines: smsq.logs,
    startWorkers: smsq.startWorkers,
    close: smsq.close,
  };
}

/** Polls GET /v1/messages/:id until the request is completed, and returns its summary. */
export function waitCompleted(
  api: { url?: string },
  id: string,
  headers: Record<string, string>,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  return waitFor(
    async () => {
      const res = await fetch(`${api.url}/v1/messages/${id}`, { headers });
      const body = (await res.json()) as Record<string, unknown>;
      return body.state === 'completed' ? body : undefined;
    },
    { timeoutMs, what: `request ${id} completed` },
  );
}
