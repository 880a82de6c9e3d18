import { getGlobalDispatcher, request } from 'undici';
import type { DescomConfig } from './env.js';
import { TransientError } from '../../errors.js';
import type { Logger } from 'pino';
import {
  validityHorizonMs,
  type DeliveryPollContext,
  type DeliveryReportSource,
  type ProviderDeliveryReport,
} from '../delivery-types.js';
import type { CallMeter } from '../types.js';
import { notifyWhenWritten } from '../written-hook.js';

/** Shipment-level fields kept in the batch's notes (counts and times; never numbers or text). */
const SHIPMENT_FIELDS = ['num_messages', 'num_sms', 'cost_credits', 'status', 'state', 'updated_at'] as const;
/** Arrays of a shipment that could list its recipients, and the fields that could name one and its state. */
const LIST_FIELDS = ['messages', 'recipients', 'sms', 'details', 'destinations'] as const;
const NUMBER_FIELDS = ['to', 'phone', 'number', 'destination', 'msisdn', 'recipient'] as const;
const STATE_FIELDS = ['status', 'state', 'dlr', 'delivery_status'] as const;
/** A listed state: delivered, or a final failure; anything else is not final. */
const DELIVERED = /^(delivered|delivrd|entregado|1)$/i;
const UNDELIVERED = /^(undelivered|undeliv|failed|error|rejected|rejectd|expired|rechazado|fallido|2)$/i;

const digits = (n: string) => n.replace(/\D/g, '');

/**
 * Recipient reports a shipment really lists: an array (one of LIST_FIELDS) of objects naming a
 * number and a recognisable final state. Descom does not document such a list; without one,
 * nothing is reported per recipient and the horizon settles them `unreported`.
 */
export function listedDescomReports(
  payload: unknown,
  ctx: Pick<DeliveryPollContext, 'recipients' | 'pending'>,
  now: number,
): ProviderDeliveryReport[] {
  if (typeof payload !== 'object' || payload === null) return [];
  const reports: ProviderDeliveryReport[] = [];
  for (const field of LIST_FIELDS) {
    const list = (payload as Record<string, unknown>)[field];
    if (!Array.isArray(list)) continue;
    for (const item of list as unknown[]) {
      if (typeof item !== 'object' || item === null) continue;
      const entry = item as Record<string, unknown>;
      const number = NUMBER_FIELDS.map((f) => entry[f]).find(
        (v) => typeof v === 'string' || typeof v === 'number',
      );
      const state = STATE_FIELDS.map((f) => entry[f]).find(
        (v) => typeof v === 'string' || typeof v === 'number',
      );
      if (number === undefined || state === undefined) continue;
      const status = DELIVERED.test(String(state))
        ? 'delivered'
        : UNDELIVERED.test(String(state))
          ? 'undelivered'
          : undefined;
      if (!status) continue;
      // Descom may write national numbers: a recipient matches when its digits end with the listed ones (8+).
      const listed = digits(String(number)).replace(/^00/, '');
      if (listed.length < 8) continue;
      const index = ctx.recipients.findIndex((to) => digits(to).endsWith(listed));
      if (index < 0 || !ctx.pending.has(index)) continue;
      reports.push({ index, status, at: now, code: String(state) });
    }
  }
  return reports;
}

/**
 * Descom delivery reports: `GET /api/shipment/{id}` per batch (its shipment id) on the report
 * schedule. Descom documents this call as giving the shipment's delivery state but documents no
 * per-recipient shape: its shipment-level fields are kept in the batch's notes; recipients are
 * reported only where the payload lists them (see {@link listedDescomReports}), the others end
 * `unreported` at the horizon.
 */
export function createDescomDeliveryReports(
  cfg: DescomConfig,
  deps: { timeoutMs: number; logger: Logger; meter: CallMeter; unitMs: number },
): DeliveryReportSource {
  const base = cfg.url.replace(/\/+$/, '');
  const headers = { 'DSMS-User': cfg.user, 'DSMS-Pass': cfg.pass, 'DSMS-App': 'smsq' };
  const log = deps.logger.child({ module: 'descom-delivery-reports', provider: 'descom' });
  return {
    provider: 'descom',
    horizonMs: validityHorizonMs(2_880, deps.unitMs),
    horizonStatus: 'unreported',

    async poll(ctx) {
      const id = ctx.providerIds[0];
      if (!id || !/^\d+$/.test(id)) return [];
      const grant = await deps.meter(ctx.signal);
      const res = await request(`${base}/shipment/${id}`, {
        dispatcher: notifyWhenWritten(getGlobalDispatcher(), grant.written),
        method: 'GET',
        headers,
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(deps.timeoutMs)]),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200)
        throw new TransientError(`Descom answered ${res.statusCode} to GET /shipment/${id}`);
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch {
        throw new TransientError(`Descom's shipment ${id} is not JSON`);
      }
      const shipment: Record<string, string> = {};
      for (const field of SHIPMENT_FIELDS) {
        const value = (payload as Record<string, unknown> | null)?.[field];
        if (typeof value === 'string' || typeof value === 'number') shipment[field] = String(value);
      }
      await ctx.setNotes({ shipment: JSON.stringify(shipment) });
      const reports = listedDescomReports(payload, ctx, Date.now());
      log.debug({ shipment: id, reports: reports.length }, 'Descom shipment polled');
      return reports;
    },

    close: () => Promise.resolve(),
  };
}
