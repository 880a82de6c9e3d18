import pLimit from 'p-limit';
import type { OvhConfig } from '../../config.js';
import {
  AccountError,
  AmbiguousError,
  PermanentError,
  TransientError,
  type DeliveryError,
} from '../../errors.js';
import type { Logger } from '../../logger.js';
import { batchRecipients, type Batch, type BatchReceipt } from '../../message/types.js';
import type { SmsProvider } from '../types.js';
import { classifyOvhReadError, classifyOvhSendError, toDeliveryError } from './classify.js';
import { createOvhClient, type OvhMethod } from './client.js';
import { OvhRequestError, toOvhRequestError } from './errors.js';

/** OVH's tag limit ("a maximum chain of 20 characters"); a longer tag could not be looked up. */
const OVH_TAG_MAX_LENGTH = 20;
/** Above this many ids, a lookup records the estimate instead of one GET per SMS. */
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

/** Dependencies of {@link createOvhProvider}. */
export interface OvhProviderDeps {
  /** Total deadline of one OVH call, in ms (`SMSQ_PROVIDER_TIMEOUT_MS`). */
  timeoutMs: number;
  logger: Logger;
}

const asOvhError = (err: unknown, method: OvhMethod, path: string): OvhRequestError =>
  err instanceof OvhRequestError ? err : toOvhRequestError(err, { method, path });

/**
 * OVHcloud SMS through the official `ovh` client: one `POST /sms/{serviceName}/jobs` per batch,
 * looked up by its `tag` after an ambiguous send.
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
    try {
      return await client.request<T>('GET', path, params, { signal });
    } catch (err) {
      const ovhErr = asOvhError(err, 'GET', path);
      throw toDeliveryError(classifyOvhReadError(ovhErr), ovhErr);
    }
  }

  async function discoverServiceName(signal: AbortSignal): Promise<string> {
    const names = await read<unknown>('/sms', undefined, signal);
    const list = Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
    if (list.length !== 1 || list[0] === undefined) {
      // A configuration problem, not the batch's: pause the provider and keep the jobs.
      throw new AccountError(
        `OVH account has ${list.length} SMS services${list.length > 1 ? ` (${list.join(', ')})` : ''}; set OVH_SERVICE_NAME`,
        { code: 'SMSQ_OVH_SERVICE_NAME' },
      );
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
      throw new PermanentError(`OVH batch ${batch.id} must hold exactly one message with recipients`, {
        code: 'SMSQ_OVH_BATCH_SHAPE',
      });
    }
    if (batch.tag.length === 0 || batch.tag.length > OVH_TAG_MAX_LENGTH) {
      // OVH would cut or refuse it, and a batch we cannot find by tag could be sent twice.
      throw new PermanentError(`OVH batch ${batch.id} needs a tag of 1 to 20 characters`, {
        code: 'SMSQ_OVH_BAD_TAG',
      });
    }
    const sender = batch.sender ?? cfg.sender;
    return {
      message: message.text,
      receivers: [...message.to],
      tag: batch.tag,
      noStopClause: cfg.noStopClause,
      priority: 'high',
      // Only `sender`, never `senderForResponse`: that one wins and sends from a short code.
      ...(sender ? { sender } : {}),
    };
  }

  /** An OVH 400 on send: OVH has no "out of credit" error, so the account's credit decides. */
  async function decideBadRequest(
    service: string,
    sendErr: OvhRequestError,
    signal: AbortSignal,
  ): Promise<DeliveryError> {
    let account: SmsAccount | null;
    try {
      account = await client.request<SmsAccount | null>('GET', service, undefined, { signal });
    } catch (err) {
      const checkErr = asOvhError(err, 'GET', service);
      if (classifyOvhReadError(checkErr) === 'account') {
        // The credit check is refused too (400/401/403): signature or credentials, for every call.
        return new AccountError(
          'OVH refused the send (400) and the credit check too: check the OVH keys and clock',
          {
            code: 'SMSQ_OVH_CREDENTIALS',
            cause: checkErr,
          },
        );
      }
      // A 400 means OVH did not create the job: retrying is safe and re-checks the credit.
      return new TransientError('OVH refused the send (400) and the credit check failed; will check again', {
        cause: checkErr,
      });
    }
    const creditsLeft = account?.creditsLeft;
    if (typeof creditsLeft === 'number' && creditsLeft <= 0) {
      log.warn({ creditsLeft }, 'OVH refused a batch and the account has no credit left');
      return new AccountError(`OVH account has no credit left (creditsLeft ${creditsLeft})`, {
        code: 'SMSQ_OVH_NO_CREDIT',
        cause: sendErr,
      });
    }
    return new PermanentError('OVH refused the batch (400) with credit left', { cause: sendErr });
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

  async function outgoingDetails(
    service: string,
    ids: number[],
    signal: AbortSignal,
  ): Promise<SmsOutgoing[] | undefined> {
    const limit = pLimit(LOOKUP_DETAILS_CONCURRENCY);
    try {
      return await Promise.all(
        ids.map((id) => limit(() => read<SmsOutgoing>(`${service}/outgoing/${id}`, undefined, signal))),
      );
    } catch (err) {
      if (signal.aborted) throw err;
      log.warn({ err, ids: ids.length }, 'could not read OVH outgoing records; recording the estimate');
      return undefined;
    }
  }

  const provider: SmsProvider = {
    id: 'ovh',
    limits: { maxMessagesPerRequest: 1, maxRecipientsPerMessage: cfg.batchSize },

    async send(batch, { signal }) {
      const params = jobParams(batch);
      const service = await servicePath(signal);
      const path = `${service}/jobs`;
      let report: SmsSendingReport | null;
      try {
        report = await client.request<SmsSendingReport | null>('POST', path, params, { signal });
      } catch (err) {
        const ovhErr = asOvhError(err, 'POST', path);
        const cls = classifyOvhSendError(ovhErr);
        throw cls === 'check-credit'
          ? await decideBadRequest(service, ovhErr, signal)
          : toDeliveryError(cls, ovhErr);
      }
      if (report && typeof report === 'object' && Array.isArray(report.ids)) {
        log.debug(
          { tag: batch.tag, ids: report.ids.length, credits: report.totalCreditsRemoved },
          'OVH accepted a batch',
        );
        return receiptOf(report);
      }
      // 200 without a report: the job exists but we cannot read what OVH did; find it by tag.
      const found = await provider.lookup?.(batch, { signal, sendingSince: 0 });
      if (found) return found;
      throw new AmbiguousError(`OVH answered 200 without a sending report for batch ${batch.id}`);
    },

    async lookup(batch, { signal }) {
      const service = await servicePath(signal);
      const ids = await read<unknown>(`${service}/outgoing`, { tag: batch.tag }, signal);
      const numericIds = Array.isArray(ids) ? ids.filter((id): id is number => typeof id === 'number') : [];
      // Only sent SMS are listed here: a deferred one waits in /jobs, which has no tag to search by.
      if (numericIds.length === 0) return undefined;
      const providerIds = numericIds.map(String);
      const details =
        numericIds.length <= LOOKUP_DETAILS_MAX_IDS
          ? await outgoingDetails(service, numericIds, signal)
          : undefined;
      log.info(
        { tag: batch.tag, ids: numericIds.length, estimated: !details },
        'found an OVH batch by its tag',
      );
      if (details) {
        // OVH keeps no outgoing record for an invalid receiver: a recipient of the batch without
        // one was refused (as invalidReceivers would have said), so every recipient gets an outcome.
        const found = new Set(details.map((d) => d.receiver));
        return {
          providerIds,
          accepted: [...found],
          invalid: batchRecipients(batch).filter((n) => !found.has(n)),
          creditsCharged: details.reduce((sum, d) => sum + (Number.isFinite(d.credits) ? d.credits : 0), 0),
        };
      }
      return {
        providerIds,
        accepted: batchRecipients(batch),
        invalid: [],
        creditsCharged: batch.estimatedCredits,
        creditsEstimated: true,
      };
    },

    async probe({ signal }) {
      // A paused provider may be paused by clock skew (400 on every signed call): sync again first.
      client.resyncTime();
      try {
        const account = await read<SmsAccount | null>(await servicePath(signal), undefined, signal);
        return typeof account?.creditsLeft === 'number' && account.creditsLeft > 0;
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
