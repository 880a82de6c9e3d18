import pLimit from 'p-limit';
import type { OvhConfig } from './env.js';
import type { DeliveryError } from '../../errors.js';
import type { Logger } from 'pino';
import { batchRecipients, type Batch, type BatchReceipt } from '../../message/types.js';
import type { CallMeter, SmsProvider } from '../types.js';
import { decideOvhRead, decideOvhSend, ovhDecision, ovhError } from './classify.js';
import { createOvhClient, type OvhMethod } from './client.js';
import { OvhRequestError, toOvhRequestError } from './errors.js';

/** OVH's tag limit ("a maximum chain of 20 characters"); a longer tag could not be looked up. */
const OVH_TAG_MAX_LENGTH = 20;
/** Above this many sent ids, one per recipient, a lookup records the estimate instead of one GET per SMS. */
const LOOKUP_DETAILS_MAX_IDS = 50;
/** Parallel `GET /outgoing/{id}` during a lookup. */
const LOOKUP_DETAILS_CONCURRENCY = 4;

/** `sms.SmsSendingReport`: every field is optional in OVH's schema. */
interface SmsSendingReport {
  ids?: number[];
  validReceivers?: string[];
  invalidReceivers?: string[];
  totalCreditsRemoved?: number;
  tag?: string;
}

/** The part of `sms.Account` smsq reads. */
interface SmsAccount {
  creditsLeft?: number;
}

/** The part of `sms.Outgoing` smsq reads. */
interface SmsOutgoing {
  receiver: string;
  credits: number;
}

/** The part of `sms.Job` (a pending SMS) smsq reads; it has no tag. */
interface SmsJob {
  receiver: string;
  message: string;
  creationDatetime: string;
  credits: number;
}

/** One SMS of a found batch, pending or sent. */
interface FoundSms {
  id: number;
  receiver: string;
  credits: number;
}

/**
 * Margin (ms) when comparing a pending job's `creationDatetime` with the batch's sending time:
 * OVH writes whole seconds and the time offset is rounded to a second.
 */
const CLOCK_MARGIN_MS = 2_000;
/** Pending job details kept between lookups (a job's receiver, text and creation time never change). */
const JOB_CACHE_MAX = 10_000;

/** Dependencies of {@link createOvhProvider}. */
export interface OvhProviderDeps {
  /** Total deadline of one OVH call, in ms (`SMSQ_PROVIDER_TIMEOUT_MS`); the wait for the meter is not part of it. */
  timeoutMs: number;
  logger: Logger;
  /** The account's call allowance, awaited before every OVH call. Default: unmetered. */
  meter?: CallMeter;
}

const asOvhError = (err: unknown, method: OvhMethod, path: string): OvhRequestError =>
  err instanceof OvhRequestError ? err : toOvhRequestError(err, { method, path });

const numericIds = (value: unknown): number[] =>
  Array.isArray(value) ? value.filter((id): id is number => typeof id === 'number') : [];

/** OVH may write a receiver as `0033…`; batches hold E.164 (`+33…`). */
const normaliseReceiver = (receiver: string): string =>
  receiver.startsWith('00') ? `+${receiver.slice(2)}` : receiver;

/** A receipt for a batch OVH accepted without a report we can read: every recipient, estimated credits. */
function estimatedReceipt(batch: Batch, providerIds: string[] = []): BatchReceipt {
  return {
    providerIds,
    accepted: batchRecipients(batch),
    invalid: [],
    creditsCharged: batch.estimatedCredits,
    creditsEstimated: true,
  };
}

/**
 * OVHcloud SMS through the official `ovh` client: one `POST /sms/{serviceName}/jobs` per batch,
 * looked up after an ambiguous send by its `tag` (sent SMS) and by receiver and text (pending jobs).
 */
export function createOvhProvider(cfg: OvhConfig, deps: OvhProviderDeps): SmsProvider {
  const log = deps.logger.child({ module: 'ovh-provider', provider: 'ovh' });
  const client = createOvhClient(cfg, deps);
  let serviceNamePromise: Promise<string> | undefined = cfg.serviceName
    ? Promise.resolve(cfg.serviceName)
    : undefined;

  /** A GET whose failures are classified as reads (never ambiguous). */
  async function read<T>(
    path: string,
    params: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<T> {
    return (await readUnlessMissing<T>(path, params, signal, false)) as T;
  }

  /** {@link read}, with undefined for a 404 when `missingOk` (an SMS record that moved or is gone). */
  async function readUnlessMissing<T>(
    path: string,
    params: Record<string, unknown> | undefined,
    signal: AbortSignal,
    missingOk = true,
  ): Promise<T | undefined> {
    try {
      return await client.request<T>('GET', path, params, { signal });
    } catch (err) {
      const ovhErr = asOvhError(err, 'GET', path);
      if (missingOk && ovhErr.status === 404) return undefined;
      throw ovhError(decideOvhRead(ovhErr), ovhErr);
    }
  }

  async function discoverServiceName(signal: AbortSignal): Promise<string> {
    const names = await read<unknown>('/sms', undefined, signal);
    const list = Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
    if (list.length !== 1 || list[0] === undefined) {
      const services = `${list.length} SMS services${list.length > 1 ? `: ${list.join(', ')}` : ''}`;
      throw ovhError(ovhDecision('service name unknown'), undefined, services);
    }
    log.info({ serviceName: list[0] }, 'discovered the OVH SMS service with GET /sms');
    return list[0];
  }

  /** `cfg.serviceName`, else discovered once (a failed discovery is retried on the next call). */
  async function servicePath(signal: AbortSignal): Promise<string> {
    serviceNamePromise ??= discoverServiceName(signal).catch((err: unknown) => {
      serviceNamePromise = undefined;
      throw err;
    });
    return `/sms/${encodeURIComponent(await serviceNamePromise)}`;
  }

  function jobParams(batch: Batch): Record<string, unknown> {
    const [message, ...others] = batch.messages;
    if (!message || others.length > 0 || message.to.length === 0) {
      throw ovhError(ovhDecision('batch shape'), undefined, `batch ${batch.id}`);
    }
    if (batch.tag.length === 0 || batch.tag.length > OVH_TAG_MAX_LENGTH) {
      throw ovhError(ovhDecision('batch tag'), undefined, `batch ${batch.id}`);
    }
    const sender = batch.sender ?? cfg.sender;
    return {
      message: message.text,
      receivers: [...message.to],
      tag: batch.tag,
      noStopClause: cfg.noStopClause,
      priority: 'high',
      // Minutes OVH keeps trying; delivery reports are awaited until this plus an hour.
      validityPeriod: cfg.validityMinutes ?? 2_880,
      // Only `sender`, never `senderForResponse`: that one wins and sends from a short code.
      ...(sender ? { sender } : {}),
    };
  }

  /** An OVH 400 on send: OVH has no "out of credit" error, so the account's credit decides. */
  async function decideBadRequest(
    service: string,
    batch: Batch,
    sendErr: OvhRequestError,
    signal: AbortSignal,
  ): Promise<DeliveryError> {
    let account: SmsAccount | null;
    try {
      account = await client.request<SmsAccount | null>('GET', service, undefined, { signal });
    } catch (err) {
      const checkErr = asOvhError(err, 'GET', service);
      // Refused too (400/401/403): signature or credentials, for every call. Else it only failed.
      const refused = decideOvhRead(checkErr).kind === 'account';
      return ovhError(
        ovhDecision(refused ? 'HTTP 400, credit check refused' : 'HTTP 400, credit check failed'),
        checkErr,
      );
    }
    const creditsLeft = account?.creditsLeft;
    if (typeof creditsLeft === 'number' && creditsLeft < batch.estimatedCredits) {
      // Not enough for this batch (maybe enough for a smaller one): a top-up fixes it, so pause.
      log.warn(
        { creditsLeft, needed: batch.estimatedCredits },
        'OVH refused a batch and the account has too little credit for it',
      );
      return ovhError(
        ovhDecision('HTTP 400, credit below the estimate'),
        sendErr,
        `creditsLeft ${creditsLeft}, batch needs ${batch.estimatedCredits}`,
      );
    }
    return ovhError(ovhDecision('HTTP 400, credit enough'), sendErr);
  }

  function receiptOf(report: SmsSendingReport): BatchReceipt {
    return {
      providerIds: (report.ids ?? []).map(String),
      accepted: report.validReceivers ?? [],
      // HTTP 200 with invalid receivers is a normal outcome, not an error.
      invalid: report.invalidReceivers ?? [],
      creditsCharged: report.totalCreditsRemoved ?? 0,
    };
  }

  /** The receipt of a 200: its report when readable, else the estimate (OVH accepted; we cannot read what it did). */
  function receiptOfAnswer(batch: Batch, answer: unknown): BatchReceipt {
    const report = answer as SmsSendingReport | null;
    if (report && typeof report === 'object' && Array.isArray(report.ids)) {
      log.debug(
        { tag: batch.tag, ids: report.ids.length, credits: report.totalCreditsRemoved },
        'OVH accepted a batch',
      );
      return receiptOf(report);
    }
    log.warn({ tag: batch.tag }, 'OVH accepted a batch without a readable report; recording the estimate');
    return estimatedReceipt(batch);
  }

  /** Runs `fetch` on every id, a few at a time. */
  function eachLimited<T>(ids: number[], fetch: (id: number) => Promise<T>): Promise<T[]> {
    const limit = pLimit(LOOKUP_DETAILS_CONCURRENCY);
    return Promise.all(ids.map((id) => limit(() => fetch(id))));
  }

  const jobCache = new Map<number, SmsJob>();

  /** `GET /jobs/{id}`; undefined when it is gone (sent meanwhile: `/outgoing` lists it then). */
  async function pendingJob(service: string, id: number, signal: AbortSignal): Promise<SmsJob | undefined> {
    const cached = jobCache.get(id);
    if (cached) return cached;
    const job = await readUnlessMissing<SmsJob>(`${service}/jobs/${id}`, undefined, signal);
    if (!job) return undefined;
    if (jobCache.size >= JOB_CACHE_MAX) {
      const oldest = jobCache.keys().next();
      if (!oldest.done) jobCache.delete(oldest.value);
    }
    jobCache.set(id, job);
    return job;
  }

  /**
   * The batch's SMS still pending: `/jobs` has no tag, so a job is the batch's when its receiver is
   * one of the batch's, its text is the batch's, and it was created after the batch went `sending`
   * (by OVH's clock, brought back to ours).
   */
  async function pendingSmsOf(batch: Batch, service: string, sendingSince: number, signal: AbortSignal) {
    const ids = numericIds(await read<unknown>(`${service}/jobs`, undefined, signal));
    if (ids.length === 0) return [];
    const recipients = new Set(batchRecipients(batch));
    const text = batch.messages[0]?.text;
    const offsetMs = client.timeOffsetMs() ?? 0;
    const jobs = await eachLimited(ids, (id) => pendingJob(service, id, signal));
    const found: FoundSms[] = [];
    jobs.forEach((job, i) => {
      const id = ids[i];
      if (!job || id === undefined) return;
      if (job.message !== text || !recipients.has(normaliseReceiver(job.receiver))) return;
      const created = Date.parse(job.creationDatetime);
      // An unreadable date cannot prove the job older than the batch: count it (never twice first).
      if (Number.isFinite(created) && created - offsetMs < sendingSince - CLOCK_MARGIN_MS) return;
      found.push({ id, receiver: normaliseReceiver(job.receiver), credits: job.credits });
    });
    return found;
  }

  /** `GET /outgoing/{id}` of each id `/outgoing?tag=` just listed. */
  async function outgoingDetails(service: string, ids: number[], signal: AbortSignal): Promise<FoundSms[]> {
    const records = await eachLimited(ids, async (id) => {
      const record = await readUnlessMissing<SmsOutgoing>(`${service}/outgoing/${id}`, undefined, signal);
      // A record listed a moment ago cannot be gone for good: look again rather than guess
      // (counting its receiver invalid would record a sent SMS as refused).
      if (!record) throw ovhError(ovhDecision('GET listed SMS missing'), undefined, `SMS ${id}`);
      return record;
    });
    return records.map((r, i) => ({
      id: ids[i] ?? 0,
      receiver: normaliseReceiver(r.receiver),
      credits: r.credits,
    }));
  }

  const provider: SmsProvider = {
    id: 'ovh',
    limits: { maxMessagesPerRequest: 1, maxRecipientsPerMessage: cfg.batchSize },

    settleMs: cfg.settleMs,

    async send(batch, { signal, onLateReceipt, onWritten }) {
      const params = jobParams(batch);
      const service = await servicePath(signal);
      const path = `${service}/jobs`;
      // Only when the request could not be cut at our deadline: an answer after we gave up.
      const onLate = onLateReceipt
        ? (answer: unknown) => onLateReceipt(receiptOfAnswer(batch, answer))
        : undefined;
      let answer: unknown;
      try {
        answer = await client.request<unknown>('POST', path, params, {
          signal,
          // The batch processor took this call from the allowance before it marked it begun.
          metered: true,
          ...(onWritten ? { onWritten } : {}),
          ...(onLate ? { onLate } : {}),
        });
      } catch (err) {
        const ovhErr = asOvhError(err, 'POST', path);
        // OVH documents no "out of credit" error: its credit decides what a 400 means.
        if (ovhErr.status === 400) throw await decideBadRequest(service, batch, ovhErr, signal);
        const decision = decideOvhSend(ovhErr);
        if (decision.kind === 'sent') {
          // A 2xx the client could not hand us (204, or a 200 it could not parse): OVH acted.
          log.warn(
            { tag: batch.tag, status: ovhErr.status },
            'OVH accepted a batch with an unreadable answer',
          );
          return estimatedReceipt(batch);
        }
        throw ovhError(decision, ovhErr);
      }
      return receiptOfAnswer(batch, answer);
    },

    async lookup(batch, { signal, sendingSince }) {
      const service = await servicePath(signal);
      // Pending first, then sent: a job that leaves /jobs between the two reads is then in /outgoing.
      const pending = await pendingSmsOf(batch, service, sendingSince, signal);
      const pendingIds = new Set(pending.map((p) => p.id));
      const sentIds = numericIds(
        await read<unknown>(`${service}/outgoing`, { tag: batch.tag }, signal),
      ).filter((id) => !pendingIds.has(id));
      if (sentIds.length + pending.length === 0) return undefined;
      const recipients = batchRecipients(batch);
      const providerIds = [...sentIds, ...pendingIds].map(String);
      if (sentIds.length > LOOKUP_DETAILS_MAX_IDS && providerIds.length === recipients.length) {
        // One SMS per recipient: all were accepted. Spare one GET per SMS and estimate the credits.
        log.info(
          { tag: batch.tag, ids: providerIds.length, pending: pending.length },
          'found an OVH batch, every recipient',
        );
        return estimatedReceipt(batch, providerIds);
      }
      const found = [...(await outgoingDetails(service, sentIds, signal)), ...pending];
      log.info({ tag: batch.tag, ids: providerIds.length, pending: pending.length }, 'found an OVH batch');
      // OVH keeps no record for an invalid receiver: a recipient of the batch without one was
      // refused (as invalidReceivers would have said), so every recipient gets an outcome.
      const receivers = new Set(found.map((f) => f.receiver));
      return {
        providerIds,
        accepted: recipients.filter((n) => receivers.has(n)),
        invalid: recipients.filter((n) => !receivers.has(n)),
        creditsCharged: found.reduce((sum, f) => sum + (Number.isFinite(f.credits) ? f.credits : 0), 0),
      };
    },

    async probe({ signal, neededCredits }) {
      // A paused provider may be paused by clock skew (400 on every signed call): sync again first.
      client.resyncTime();
      try {
        const account = await read<SmsAccount | null>(await servicePath(signal), undefined, signal);
        const creditsLeft = account?.creditsLeft;
        return typeof creditsLeft === 'number' && creditsLeft >= (neededCredits ?? 1);
      } catch (err) {
        log.warn({ err }, 'OVH probe failed');
        return false;
      }
    },

    async close() {
      // Nothing to close: the client uses https.globalAgent; calls in flight are abandoned.
    },
  };
  return provider;
}
