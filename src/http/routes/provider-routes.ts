import fastifyFormbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import type { ProviderId } from '../../message/types.js';
import {
  providerHttpRoutes,
  type ProviderConfigs,
  type PushedDeliveryReport,
} from '../../providers/index.js';
import { NotFoundError } from '../error-handler.js';

export interface ProviderRoutesOptions {
  providers: ProviderConfigs;
  /** Queues a pushed delivery report durably (resolves once Redis holds it). */
  pushReport(provider: ProviderId, report: PushedDeliveryReport): Promise<void>;
  /** Counts a pushed report that was not queued. */
  countIgnored(provider: ProviderId): Promise<void>;
}

/**
 * The routes provider folders declare (their module's `httpRoutes`, e.g. OVH's delivery-report
 * push), under `/v1/providers/<id>/…`, outside the API-key check: each authenticates its caller
 * itself. Query, JSON and form bodies are parsed; a 404 answer is smsq's usual not-found error.
 * Hidden from the OpenAPI document: providers call them, not producers.
 */
export async function registerProviderRoutes(
  app: FastifyInstance,
  opts: ProviderRoutesOptions,
): Promise<void> {
  const routes = providerHttpRoutes(opts.providers);
  if (routes.length === 0) return;
  await app.register(async (scope) => {
    await scope.register(fastifyFormbody);
    for (const { provider, path, route } of routes) {
      scope.route({
        method: [...route.methods],
        url: path,
        schema: { hide: true },
        handler: async (request, reply) => {
          const asRecord = (v: unknown) =>
            typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
          const answer = await route.handle(
            {
              params: request.params as Record<string, string>,
              query: asRecord(request.query),
              body: asRecord(request.body),
            },
            {
              pushReport: (report) => opts.pushReport(provider, report),
              countIgnored: () => opts.countIgnored(provider),
            },
          );
          if (answer.status === 404) throw new NotFoundError('Not found');
          return reply
            .code(answer.status)
            .type('text/plain; charset=utf-8')
            .send(answer.text ?? '');
        },
      });
    }
  });
}
