import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Job, Queue } from 'bullmq';
import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { checkBasicAuth } from './auth.js';
import type { ErrorBody } from './error-handler.js';
import { maskJobData, maskString } from './mask.js';

export const DASHBOARD_PATH = '/admin/queues';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

export type DashboardAccess =
  | { enabled: true; credentials: { user: string; password: string } }
  | { enabled: true; credentials: undefined; warning: string }
  | { enabled: false; reason: string };

/**
 * Who may see the dashboard. With SMSQ_DASHBOARD_USER/_PASSWORD: anyone with them. Without:
 * never in production; in development only when the server listens on loopback (so only this
 * machine reaches it), with a warning.
 */
export function dashboardAccess(config: Config): DashboardAccess {
  const { user, password } = config.http.dashboard;
  if (user && password) return { enabled: true, credentials: { user, password } };
  if (config.production) {
    return {
      enabled: false,
      reason: `Dashboard ${DASHBOARD_PATH} disabled: set SMSQ_DASHBOARD_USER and SMSQ_DASHBOARD_PASSWORD to enable it`,
    };
  }
  if (!LOOPBACK_HOSTS.has(config.http.host)) {
    return {
      enabled: false,
      reason:
        `Dashboard ${DASHBOARD_PATH} disabled: no SMSQ_DASHBOARD_USER/SMSQ_DASHBOARD_PASSWORD and HOST=${config.http.host} ` +
        'is not loopback',
    };
  }
  return {
    enabled: true,
    credentials: undefined,
    warning:
      `Dashboard ${DASHBOARD_PATH} open WITHOUT a password (development, loopback only); ` +
      'set SMSQ_DASHBOARD_USER and SMSQ_DASHBOARD_PASSWORD to protect it',
  };
}

/** A job whose JSON has its failure text masked too (a provider's error message may quote numbers). */
function maskJobErrors(job: Job): Job {
  return new Proxy(job, {
    get(target, prop, receiver) {
      if (prop !== 'toJSON') return Reflect.get(target, prop, receiver) as unknown;
      return () => {
        const json = target.toJSON();
        return {
          ...json,
          failedReason:
            typeof json.failedReason === 'string' ? maskString(json.failedReason) : json.failedReason,
          stacktrace: Array.isArray(json.stacktrace)
            ? json.stacktrace.map((line) => maskString(String(line)))
            : json.stacktrace,
        };
      };
    },
  });
}

/** Bull Board's BullMQ adapter, with job data, return values and failure texts masked. */
export class MaskedBullMQAdapter extends BullMQAdapter {
  constructor(queue: Queue, options: { readOnlyMode: boolean }) {
    super(queue, { readOnlyMode: options.readOnlyMode, allowRetries: !options.readOnlyMode });
    this.setFormatter('data', maskJobData);
    this.setFormatter('returnValue', maskJobData);
  }

  override async getJob(id: string): Promise<Job | undefined> {
    const job = await super.getJob(id);
    return job ? maskJobErrors(job) : job;
  }

  override async getJobs(...args: Parameters<BullMQAdapter['getJobs']>): Promise<Job[]> {
    return (await super.getJobs(...args)).map(maskJobErrors);
  }
}

/**
 * Board actions refused even when not read-only: the board shows masked data, so editing it would
 * write the masks back, and an added job would skip every validation of the send path.
 */
const REFUSED_ACTIONS = new Set([
  `PATCH ${DASHBOARD_PATH}/api/queues/:queueName/:jobId/update-data`,
  `POST ${DASHBOARD_PATH}/api/queues/:queueName/add`,
]);

export interface DashboardOptions {
  config: Config;
  logger: Logger;
  queues: readonly Queue[];
}

/** Bull Board at /admin/queues, behind basic auth (see dashboardAccess), numbers and texts masked. */
export const dashboardPlugin: FastifyPluginAsync<DashboardOptions> = async (
  app,
  { config, logger, queues },
) => {
  const log = logger.child({ module: 'dashboard' });
  const access = dashboardAccess(config);
  if (!access.enabled) {
    log.info(access.reason);
    return;
  }
  if (!access.credentials) log.warn(access.warning);

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  const readOnlyMode = config.http.dashboard.readOnly;
  createBullBoard({
    queues: queues.map((queue) => new MaskedBullMQAdapter(queue, { readOnlyMode })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'smsq', hideDocsLink: true } },
  });

  const { credentials } = access;
  if (credentials) {
    app.addHook('onRequest', async (request, reply) => checkBasicAuth(request, reply, credentials));
  }
  app.addHook('onRequest', async (request, reply) => {
    if (REFUSED_ACTIONS.has(`${request.method} ${request.routeOptions.url ?? ''}`)) {
      return reply.code(403).send({
        error: 'SMSQ_FORBIDDEN',
        message: 'The dashboard shows masked data; editing or adding jobs there is disabled',
      } satisfies ErrorBody);
    }
    return undefined;
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
};
