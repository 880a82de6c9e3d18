import type { FastifyPluginCallbackZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { QueueContext } from '../../queue/context.js';
import type { SmsqWorkers } from '../../queue/workers.js';
import { withDeadline } from '../redis-guard.js';

export interface HealthRouteOptions {
  context: QueueContext;
  /** The workers of this process, when it runs them: readiness then requires them running. */
  workers?: SmsqWorkers;
}

const readySchema = z.object({
  status: z.enum(['ready', 'not-ready']),
  redis: z.enum(['ok', 'unreachable']),
  workers: z.enum(['running', 'stopped', 'not-run-here']),
});

/** `/healthz`: the process answers. `/readyz`: Redis answers, and this process's workers run. */
export const healthRoutes: FastifyPluginCallbackZod<HealthRouteOptions> = (
  app,
  { context, workers },
  done,
) => {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: the process answers',
        tags: ['operations'],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: Redis answers and the workers of this process run',
        tags: ['operations'],
        response: { 200: readySchema, 503: readySchema },
      },
    },
    async (_request, reply) => {
      const redisOk = await context
        .ready()
        .then(() => withDeadline(context.redis.ping(), 1_000))
        .then(
          () => true,
          () => false,
        );
      const workersState = !workers ? 'not-run-here' : workers.running() ? 'running' : 'stopped';
      const ready = redisOk && workersState !== 'stopped';
      return reply.code(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not-ready',
        redis: redisOk ? 'ok' : 'unreachable',
        workers: workersState,
      });
    },
  );
  done();
};
