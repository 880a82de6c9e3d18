import { timingSafeEqual } from 'node:crypto';
import fastifyFormbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NotFoundError } from '../../errors.js';
import type { ProviderRouteDeps } from '../http-routes.js';
import { parseOvhPushedReport } from './delivery-reports.js';

/** The push route's path; the token is its last segment (never logged: logs show the pattern). */
export const OVH_DLR_ROUTE = '/v1/providers/ovh/dlr/:token';

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `GET|POST /v1/providers/ovh/dlr/:token`: OVH's delivery-report callback. No bearer key: the
 * token (`OVH_DLR_TOKEN`) is the secret; a wrong or unset one answers 404. Parameters come from the
 * query, a form body or JSON, merged (body wins). A final report is queued as a job (durable in
 * Redis) before the 200; a non-final one is answered 200 and dropped; an id smsq never sent is
 * found out by the job, ignored and counted (`smsq_delivery_push_ignored_total`).
 */
export async function ovhDeliveryRoutes(app: FastifyInstance, deps: ProviderRouteDeps): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(fastifyFormbody);
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const token = deps.config.providers.ovh?.dlrToken;
      const given = (request.params as { token?: string }).token ?? '';
      if (!token || !sameToken(given, token)) throw new NotFoundError('Not found');
      const query = (request.query ?? {}) as Record<string, unknown>;
      const body =
        typeof request.body === 'object' && request.body !== null
          ? (request.body as Record<string, unknown>)
          : {};
      const report = parseOvhPushedReport({ ...query, ...body });
      if (report) await deps.pushReport('ovh', report);
      else await deps.countIgnored('ovh');
      return reply.code(200).type('text/plain; charset=utf-8').send('OK');
    };
    scope.get(OVH_DLR_ROUTE, { schema: { hide: true } }, handler);
    scope.post(OVH_DLR_ROUTE, { schema: { hide: true } }, handler);
  });
}
