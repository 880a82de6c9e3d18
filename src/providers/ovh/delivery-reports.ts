import pLimit from 'p-limit';
import type { OvhConfig } from './env.js';
import { AccountError, ConfigError } from '../../errors.js';
import type { Logger } from 'pino';
import {
  validityHorizonMs,
  type DeliveryPollContext,
  type DeliveryReportSource,
  type ProviderDeliveryReport,
  type PushedDeliveryReport,
} from '../delivery-types.js';
import type { CallMeter } from '../types.js';
import { createOvhClient, type OvhApiClient } from './client.js';
import { OvhRequestError, toOvhRequestError } from './errors.js';

/** OVH's final `deliveryReceipt` codes (its "DLR ID"): 1 delivered; 2 failed, 16 error/not billed. */
export const OVH_FINAL_RECEIPTS: Readonly<Record<number, 'delivered' | 'undelivered'>> = {
  1: 'delivered',
  2: 'undelivered',
  16: 'undelivered',
};

/**
 * `ptt` codes that are final on their own (a pushed report without a `dlr`): 4 delivered; the
 * others permanent failures (5 undelivered, 8 expired in the SMSC, 20 undeliverable in this form,
 * 23 invalid or barred number, 27 incompatible handset, 28 spam suspicion, 29 content refused,
 * 33 parental lock). Temporary ones (1–3, 21, 24–26, …) are not final: polling settles them.
 */
export const OVH_FINAL_PTTS: Readonly<Record<number, 'delivered' | 'undelivered'>> = {
  4: 'delivered',
  5: 'undelivered',
  8: 'undelivered',
  20: 'undelivered',
  23: 'undelivered',
  27: 'undelivered',
  28: 'undelivered',
  29: 'undelivered',
  33: 'undelivered',
};

/** Parallel `GET /outgoing/{id}` of one poll. */
const DETAILS_CONCURRENCY = 4;

/** Notes kept on a batch: `order` = `kept` (ids are in receiver order) or `lost`; `id:<id>` = index. */
const ORDER_NOTE = 'order';
const idNote = (id: string) => `id:${id}`;

/** The part of `sms.Outgoing` read here. */
interface OutgoingDetail {
  receiver?: string;
  tag?: string;
  deliveryReceipt?: number;
  ptt?: number;
  deliveredAt?: string | null;
}

const normaliseReceiver = (receiver: string): string =>
  receiver.startsWith('00') ? `+${receiver.slice(2)}` : receiver;

function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

/** A time OVH wrote (ISO, `YYYY-MM-DD hh:mm:ss`, or Unix seconds/ms), or undefined. */
function timeOf(value: unknown): number | undefined {
  const n = numberOf(value);
  if (n !== undefined) return n < 1e12 ? n * 1000 : n;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const parsed = Date.parse(value.includes('T') ? value : value.replace(' ', 'T'));
  return Number.isFinite(parsed) ? parsed : undefined;
}

/**
 * A pushed OVH report, from whichever spelling it came in (query, form or JSON): `id`, and `dlr`
 * (or `description`, which OVH's guide names the DLR id) and/or `ptt`, `date`. Undefined when it
 * names no id or no final status (an intermediate report).
 */
export function parseOvhPushedReport(params: Record<string, unknown>): PushedDeliveryReport | undefined {
  const id = numberOf(params.id);
  if (id === undefined) return undefined;
  const dlr = numberOf(params.dlr) ?? numberOf(params.description);
  const ptt = numberOf(params.ptt);
  const status =
    dlr !== undefined ? OVH_FINAL_RECEIPTS[dlr] : ptt !== undefined ? OVH_FINAL_PTTS[ptt] : undefined;
  if (!status) return undefined;
  const code = ptt ?? dlr;
  return {
    providerId: String(id),
    status,
    at: timeOf(params.date) ?? Date.now(),
    ...(code !== undefined ? { code: String(code) } : {}),
  };
}

/** `OVH_SERVICE_NAME`, else the account's only SMS service (`GET /sms`). */
async function resolveServiceName(cfg: OvhConfig, get: (path: string) => Promise<unknown>): Promise<string> {
  if (cfg.serviceName) return cfg.serviceName;
  const names = await get('/sms');
  const list = Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
  if (list.length !== 1 || !list[0])
    throw new AccountError(`OVH account has ${list.length} SMS services; set OVH_SERVICE_NAME`, {
      code: 'SMSQ_OVH_SERVICE_NAME',
    });
  return list[0];
}

/** Dependencies of {@link createOvhDeliveryReports}. */
export interface OvhDeliveryReportsDeps {
  timeoutMs: number;
  logger: Logger;
  /** The account's allowance, behind sends (src/queue/delivery-meter.ts). */
  meter: CallMeter;
  /** The report schedule's unit (`SMSQ_DLR_POLL_MS`). */
  unitMs: number;
  /** Injected client (tests); default: a client of its own on `cfg`. */
  client?: OvhApiClient;
}

/**
 * OVH delivery reports. A poll lists the batch's SMS per final code with
 * `GET /outgoing?tag=<tag>&deliveryReceipt=<code>` (1, 2, 16): three calls per batch, whatever its
 * size. OVH lists ids; the sending report gave one id per valid receiver, in an order OVH does
 * not document, so the first poll that lists ids checks two of them (`GET /outgoing/{id}`: first
 * and last) against the receivers in send order: both match → ids map by position from then on;
 * either differs, or the receipt has no ids (an estimate) → every id is fetched once and its
 * receiver kept in the batch's notes.
 */
export function createOvhDeliveryReports(cfg: OvhConfig, deps: OvhDeliveryReportsDeps): DeliveryReportSource {
  const log = deps.logger.child({ module: 'ovh-delivery-reports', provider: 'ovh' });
  const client =
    deps.client ??
    createOvhClient(cfg, { timeoutMs: deps.timeoutMs, logger: deps.logger, meter: deps.meter });
  let service: Promise<string> | undefined;

  // The client syncs its clock (an unmetered call) before its first call: calls that took their
  // allowance meanwhile would all reach OVH at once after it, a burst past the allowance. So the
  // first call goes alone; the others start once it has answered.
  let firstCall: Promise<void> | undefined;
  async function call<T>(
    method: 'GET' | 'PUT',
    path: string,
    params: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<T> {
    if (firstCall) await firstCall;
    const pending = client.request<T>(method, path, params, { signal });
    firstCall ??= pending.then(
      () => undefined,
      () => {
        firstCall = undefined;
      },
    );
    try {
      return await pending;
    } catch (err) {
      throw err instanceof OvhRequestError ? err : toOvhRequestError(err, { method, path });
    }
  }

  async function servicePath(signal: AbortSignal): Promise<string> {
    service ??= resolveServiceName(cfg, (path) => call<unknown>('GET', path, undefined, signal)).catch(
      (err: unknown) => {
        service = undefined;
        throw err;
      },
    );
    return `/sms/${encodeURIComponent(await service)}`;
  }

  async function detail(path: string, id: string, signal: AbortSignal): Promise<OutgoingDetail | undefined> {
    try {
      return await call<OutgoingDetail>('GET', `${path}/outgoing/${id}`, undefined, signal);
    } catch (err) {
      if (err instanceof OvhRequestError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Indices by number, for the receivers OVH writes back. */
  function indexOfReceiver(ctx: DeliveryPollContext): Map<string, number> {
    return new Map(ctx.recipients.map((to, i) => [to, i] as const));
  }

  /** The index `providerIds[k]` stands for when OVH kept the receivers' order. */
  function positional(ctx: DeliveryPollContext, id: string): number | undefined {
    if (ctx.providerIds.length !== ctx.accepted.length) return undefined;
    const k = ctx.providerIds.indexOf(id);
    return k < 0 ? undefined : ctx.accepted[k];
  }

  /** Checks the id order against two fetched SMS (first and last listed); records the verdict. */
  async function checkOrder(ctx: DeliveryPollContext, path: string, listed: string[]): Promise<boolean> {
    if (ctx.providerIds.length !== ctx.accepted.length || ctx.providerIds.length === 0) {
      await ctx.setNotes({ [ORDER_NOTE]: 'lost' });
      return false;
    }
    // One id for one receiver: nothing to check.
    if (ctx.providerIds.length === 1) {
      await ctx.setNotes({ [ORDER_NOTE]: 'kept' });
      return true;
    }
    const samples = [...new Set([listed[0], listed[listed.length - 1]])].filter(
      (id): id is string => id !== undefined && positional(ctx, id) !== undefined,
    );
    if (samples.length === 0) return false;
    const byReceiver = indexOfReceiver(ctx);
    const notes: Record<string, string> = {};
    let kept = true;
    for (const id of samples) {
      const sms = await detail(path, id, ctx.signal);
      const index = sms?.receiver === undefined ? undefined : byReceiver.get(normaliseReceiver(sms.receiver));
      if (index !== undefined) notes[idNote(id)] = String(index);
      if (index === undefined || index !== positional(ctx, id)) kept = false;
    }
    await ctx.setNotes({ ...notes, [ORDER_NOTE]: kept ? 'kept' : 'lost' });
    if (!kept)
      log.warn({ tag: ctx.batch.tag }, 'OVH ids are not in receiver order for this batch; fetching each id');
    return kept;
  }

  /** The index of an id from what is known without a call (order kept, or fetched before). */
  function knownIndex(ctx: DeliveryPollContext, id: string): number | undefined {
    const noted = ctx.notes[idNote(id)];
    if (noted !== undefined) return Number(noted);
    return ctx.notes[ORDER_NOTE] === 'kept' ? positional(ctx, id) : undefined;
  }

  /** Fetches ids whose receiver is unknown; keeps each one's index in the notes. Returns index and detail by id. */
  async function fetchUnknown(ctx: DeliveryPollContext, path: string, ids: string[]) {
    const byReceiver = indexOfReceiver(ctx);
    const limit = pLimit(DETAILS_CONCURRENCY);
    const found = new Map<string, { index: number; sms: OutgoingDetail }>();
    await Promise.all(
      ids.map((id) =>
        limit(async () => {
          const sms = await detail(path, id, ctx.signal);
          if (!sms?.receiver || (sms.tag !== undefined && sms.tag !== ctx.batch.tag)) return;
          const index = byReceiver.get(normaliseReceiver(sms.receiver));
          if (index !== undefined) found.set(id, { index, sms });
        }),
      ),
    );
    const notes = Object.fromEntries([...found].map(([id, { index }]) => [idNote(id), String(index)]));
    await ctx.setNotes(notes);
    return found;
  }

  return {
    provider: 'ovh',
    horizonMs: validityHorizonMs(cfg.validityMinutes ?? 2_880, deps.unitMs),
    horizonStatus: 'expired',

    async poll(ctx) {
      const path = await servicePath(ctx.signal);
      const reports: ProviderDeliveryReport[] = [];
      const unknown = new Map<string, number>();
      const now = Date.now();
      for (const [code, status] of Object.entries(OVH_FINAL_RECEIPTS)) {
        const answer = await call<unknown>(
          'GET',
          `${path}/outgoing`,
          { tag: ctx.batch.tag, deliveryReceipt: Number(code) },
          ctx.signal,
        );
        const ids = (Array.isArray(answer) ? answer : []).map(String);
        if (ids.length > 0 && ctx.notes[ORDER_NOTE] === undefined) await checkOrder(ctx, path, ids);
        for (const id of ids) {
          const index = knownIndex(ctx, id);
          if (index === undefined) unknown.set(id, Number(code));
          else if (ctx.pending.has(index)) reports.push({ index, status, at: now, code, providerId: id });
        }
      }
      if (unknown.size > 0) {
        const found = await fetchUnknown(ctx, path, [...unknown.keys()]);
        for (const [id, { index, sms }] of found) {
          const receipt = sms.deliveryReceipt ?? unknown.get(id) ?? 0;
          const status = OVH_FINAL_RECEIPTS[receipt] ?? OVH_FINAL_RECEIPTS[unknown.get(id) ?? 0];
          if (!status || !ctx.pending.has(index)) continue;
          reports.push({
            index,
            status,
            at: timeOf(sms.deliveredAt) ?? now,
            code: String(sms.ptt ?? receipt),
            providerId: id,
          });
        }
      }
      return reports;
    },

    async resolvePushed(ctx, report) {
      const known = knownIndex(ctx, report.providerId);
      if (known !== undefined) return known;
      // An id the receipt does not list is another batch's, unless the receipt has no ids at all.
      if (ctx.providerIds.length > 0 && !ctx.providerIds.includes(report.providerId)) return undefined;
      const path = await servicePath(ctx.signal);
      return (await fetchUnknown(ctx, path, [report.providerId])).get(report.providerId)?.index;
    },

    close: () => Promise.resolve(),
  };
}

/**
 * `smsq ovh callback set`: points the account's `callBack` at smsq's push route with
 * `PUT /sms/{sn}`. Returns the URL set.
 */
export async function setOvhCallback(
  cfg: OvhConfig,
  deps: { timeoutMs: number; logger: Logger; meter?: CallMeter; baseUrl: string },
): Promise<string> {
  if (!cfg.dlrToken) throw new ConfigError('OVH_DLR_TOKEN is not set: the push route would answer 404');
  const protocol = URL.canParse(deps.baseUrl) ? new URL(deps.baseUrl).protocol : '';
  if (protocol !== 'https:' && protocol !== 'http:')
    throw new ConfigError(`Not an http(s) base URL: ${deps.baseUrl}`);
  const url = `${deps.baseUrl.replace(/\/+$/, '')}/v1/providers/ovh/dlr/${cfg.dlrToken}`;
  const client = createOvhClient(cfg, {
    timeoutMs: deps.timeoutMs,
    logger: deps.logger,
    ...(deps.meter ? { meter: deps.meter } : {}),
  });
  const signal = AbortSignal.timeout(deps.timeoutMs * 2);
  const name = await resolveServiceName(cfg, (path) =>
    client.request<unknown>('GET', path, undefined, { signal }),
  );
  await client.request('PUT', `/sms/${encodeURIComponent(name)}`, { callBack: url }, { signal });
  return url;
}
