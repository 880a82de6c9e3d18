import { timingSafeEqual } from 'node:crypto';
import type { ProviderHttpRoute } from '../module.js';
import { parseOvhPushedReport } from './delivery-reports.js';
import type { OvhConfig } from './env.js';

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
export function ovhDeliveryRoute(config: OvhConfig): ProviderHttpRoute {
  return {
    methods: ['GET', 'POST'],
    url: '/dlr/:token',
    async handle(req, ctx) {
      const token = config.dlrToken;
      if (!token || !sameToken(req.params.token ?? '', token)) return { status: 404 };
      const report = parseOvhPushedReport({ ...req.query, ...req.body });
      if (report) await ctx.pushReport(report);
      else await ctx.countIgnored();
      return { status: 200, text: 'OK' };
    },
  };
}
