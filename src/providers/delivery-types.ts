import type { Logger } from 'pino';
import type { Batch, ProviderId } from '../message/types.js';
import type { CallMeter } from './types.js';

/** The real report schedule's unit (30 s); `SMSQ_DLR_POLL_MS` / this scales every step and the horizon. */
export const REAL_POLL_UNIT_MS = 30_000;

/** A provider's report horizon after the send: a validity period plus an hour, scaled like the poll steps. */
export function validityHorizonMs(validityMinutes: number, unitMs: number): number {
  return ((validityMinutes * 60_000 + 3_600_000) * unitMs) / REAL_POLL_UNIT_MS;
}

/** What a provider's report source is built with. */
export interface DeliveryReportDeps {
  logger: Logger;
  /** Total deadline of one provider request, in ms. */
  timeoutMs: number;
  /** The account's allowance, taken behind its sends. */
  meter: CallMeter;
  /** The report schedule's unit (`SMSQ_DLR_POLL_MS`). */
  unitMs: number;
}

/** A final report for one recipient of a batch, as a provider gave it. */
export interface ProviderDeliveryReport {
  /** The recipient's index in its batch (batch order). */
  index: number;
  status: 'delivered' | 'undelivered';
  /** When it happened, by the provider (ms since the epoch); now when the provider says not. */
  at: number;
  /** The provider's most specific code, as a string. */
  code?: string;
  providerId?: string;
}

/** What a report source gets to poll one batch. */
export interface DeliveryPollContext {
  batch: Batch;
  /** The provider ids of the batch's receipt (OVH: one per accepted recipient). */
  providerIds: readonly string[];
  /** The batch's recipients, in batch order. */
  recipients: readonly string[];
  /** Indices (batch order) of the accepted recipients, in order: `providerIds[k]` was returned for the k-th when the provider keeps order. */
  accepted: readonly number[];
  /** Indices of the recipients still pending. */
  pending: ReadonlySet<number>;
  /** When the batch was sent (ms). */
  sentAt: number;
  /** The source's notes on this batch, kept between polls (e.g. whether the id order was verified). */
  readonly notes: Readonly<Record<string, string>>;
  /** Adds notes (to `notes` at once, and to Redis). */
  setNotes(notes: Record<string, string>): Promise<void>;
  signal: AbortSignal;
}

/** A pushed report (OVH callback), parsed: the provider's SMS id and its final status. */
export interface PushedDeliveryReport {
  providerId: string;
  status: 'delivered' | 'undelivered';
  at: number;
  code?: string;
}

/**
 * Where a provider's delivery reports come from. `poll` runs on the schedule of
 * src/queue/delivery-schedule.ts and makes its provider calls within the provider's allowance,
 * behind sends; it returns final reports only (intermediate states are not recorded).
 */
export interface DeliveryReportSource {
  readonly provider: ProviderId;
  /** After the send, the time (ms) when recipients still pending get `horizonStatus`. */
  readonly horizonMs: number;
  /** `expired`: the provider would have reported a final status by then; `unreported`: it gives none per recipient. */
  readonly horizonStatus: 'expired' | 'unreported';
  /** First poll this long after the send (ms); default: the schedule's first step. */
  readonly firstPollMs?: number;
  poll(ctx: DeliveryPollContext): Promise<ProviderDeliveryReport[]>;
  /** The index, in the batch of `ctx`, of the recipient a pushed report names; undefined when not this batch's. */
  resolvePushed?(ctx: DeliveryPollContext, report: PushedDeliveryReport): Promise<number | undefined>;
  close(): Promise<void>;
}
