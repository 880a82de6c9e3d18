/**
 * Descom SMS (api.descomsms.com) over undici: one `POST {base}/sms/send` per batch.
 * API: JSON over HTTPS, credentials in the `DSMS-User`/`DSMS-Pass` headers; see the README.
 */
import { Pool, request, type Dispatcher } from 'undici';
import { z } from 'zod';
import type { DescomConfig } from './env.js';
import type { DeliveryError } from '../../errors.js';
import type { Logger } from 'pino';
import { batchRecipients, type Batch, type BatchReceipt } from '../../message/types.js';
import {
  UNMETERED,
  type CallMeter,
  type ProbeOptions,
  type ProviderLimits,
  type SendOptions,
  type SmsProvider,
} from '../types.js';
import { withDeadline } from '../transport.js';
import { notifyWhenWritten } from '../written-hook.js';
import { classifyDescomNetworkError, classifyDescomStatus, descomError } from './classify.js';

/** Descom's documented caps: ≤ 50 message objects per request, ≤ 100 `to` per message object. */
export const DESCOM_LIMITS: Readonly<ProviderLimits> = Object.freeze({
  maxMessagesPerRequest: 50,
  maxRecipientsPerMessage: 100,
});

/** Upper bound on establishing a connection (TCP + TLS), in ms; the total deadline still applies. */
const MAX_CONNECT_TIMEOUT_MS = 10_000;

/**
 * How long an idle keep-alive socket is kept for reuse, in ms, with or without a server hint.
 * A POST written on a socket the server is closing meets its FIN on the way, never arrives, and
 * fails like a request that may have been performed: an `unknown` batch that was never sent. So
 * the client must always give up an idle socket before the server does. undici keeps one 4 s
 * without a hint and trusts a `Keep-Alive: timeout` hint (minus 2 s); but the shortest common
 * server idle timeouts are 2 s (gunicorn) and 5 s (Node, Apache, lighttpd), often unannounced,
 * and a hint describes the backend, not a load balancer holding our socket. 1 s stays under all
 * of those with a margin for latency; a backlog (DESCOM_RATE_PER_S, default 10/s) still reuses
 * its sockets, and an idle period costs one new handshake.
 */
export const DESCOM_KEEP_ALIVE_MS = 1_000;

export interface DescomProviderDeps {
  /** Total deadline of one Descom request (connect, send, headers, body), in ms. */
  timeoutMs: number;
  logger: Logger;
  /** The account's allowance, awaited before every call but sends (see SmsProvider). Default: unmetered. */
  meter?: CallMeter;
  /** Replaces the provider's own Pool (tests, proxies). The provider never closes an injected dispatcher. */
  dispatcher?: Dispatcher;
}

/** Descom sends numbers as integers or floats; accept a numeric string too rather than lose the figure. */
const numeric = z.union([
  z.number(),
  z
    .string()
    .regex(/^-?\d+(\.\d+)?$/)
    .transform(Number),
]);

/** The fields of a 200 from `/sms/send` we record; the others (num_sms, credits_after…) are not needed. */
const sendAnswerSchema = z.object({
  id: z.union([z.number(), z.string()]).optional(),
  cost_credits: numeric.optional(),
});

const balanceAnswerSchema = z.object({ balance: numeric });

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Reads and discards a body so the keep-alive socket is freed; a failure just loses the socket. */
async function discardBody(res: Dispatcher.ResponseData): Promise<void> {
  try {
    await res.body.dump();
  } catch {
    // The body was destroyed (deadline, reset): undici closes that socket; nothing else to free.
  }
}

/**
 * The body as JSON, or undefined when it cannot be read (cut off, deadline) or parsed. Errors are
 * swallowed, not logged: a SyntaxError's message quotes the body.
 */
async function readJson(res: Dispatcher.ResponseData): Promise<unknown> {
  try {
    return JSON.parse(await res.body.text());
  } catch {
    return undefined;
  }
}

export function createDescomProvider(cfg: DescomConfig, deps: DescomProviderDeps): SmsProvider {
  const log = deps.logger.child({ module: 'descom' });
  const base = cfg.url.replace(/\/+$/, '');
  const sendUrl = `${base}/sms/send`;
  const balanceUrl = `${base}/balance`;
  // Keep-alive Pool on the API's origin. No retry interceptor: POST /sms/send is not idempotent,
  // and only the queue knows whether a retry is safe (see classify.ts).
  const ownsDispatcher = deps.dispatcher === undefined;
  const dispatcher: Dispatcher =
    deps.dispatcher ??
    new Pool(new URL(base).origin, {
      headersTimeout: deps.timeoutMs,
      bodyTimeout: deps.timeoutMs,
      connectTimeout: Math.min(deps.timeoutMs, MAX_CONNECT_TIMEOUT_MS),
      keepAliveTimeout: DESCOM_KEEP_ALIVE_MS,
      keepAliveMaxTimeout: DESCOM_KEEP_ALIVE_MS,
    });
  const authHeaders = { 'DSMS-User': cfg.user, 'DSMS-Pass': cfg.pass, 'DSMS-App': 'smsq' };
  let closed = false;

  /** Runs `call` within the total deadline (src/providers/transport.ts), reading the body included. */
  async function withinDeadline<T>(
    signal: AbortSignal,
    call: (bounded: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const deadline = withDeadline(signal, deps.timeoutMs);
    try {
      return await call(deadline.signal);
    } finally {
      deadline.clear();
    }
  }

  function logFailure(error: DeliveryError, fields: Record<string, unknown>, msg: string): void {
    const level = error.kind === 'permanent' || error.kind === 'account' ? 'error' : 'warn';
    const wait = error.kind === 'rate-limited' ? { retryAfterMs: error.retryAfterMs } : {};
    log[level]({ ...fields, code: error.code, kind: error.kind, ...wait }, msg);
  }

  function assertWithinLimits(batch: Batch): void {
    const tooMany = batch.messages.length > DESCOM_LIMITS.maxMessagesPerRequest;
    const tooWide = batch.messages.some((m) => m.to.length > DESCOM_LIMITS.maxRecipientsPerMessage);
    // Descom would answer 422 anyway; refusing here spares a request and names the real cause (a planning bug).
    if (tooMany || tooWide) throw descomError('over the limits');
  }

  /** The 2xx answer: Descom sent the batch, whatever we manage to read from the body. */
  async function readReceipt(res: Dispatcher.ResponseData, batch: Batch): Promise<BatchReceipt> {
    const parsed = sendAnswerSchema.safeParse(await readJson(res));
    const answer = parsed.success ? parsed.data : undefined;
    const credits = answer?.cost_credits;
    if (credits === undefined) {
      // Still a success: the status says Descom performed the send; resending would deliver twice.
      log.warn(
        { batchId: batch.id, status: res.statusCode },
        'Descom accepted the batch but its answer had no readable cost_credits; recording estimated credits',
      );
    }
    return {
      providerIds: answer?.id === undefined ? [] : [String(answer.id)],
      accepted: batchRecipients(batch),
      invalid: [],
      creditsCharged: credits ?? batch.estimatedCredits,
      ...(credits === undefined && { creditsEstimated: true }),
    };
  }

  async function sendWithin(
    batch: Batch,
    { signal, onWritten }: SendOptions,
    bounded: AbortSignal,
  ): Promise<BatchReceipt> {
    assertWithinLimits(batch);
    if (signal.aborted) {
      // Cancelled before we wrote anything: nothing can have been sent, so a later retry is safe.
      throw descomError('cancelled before the call', signal.reason);
    }
    const sender = batch.sender ?? cfg.sender;
    const body = {
      messages: batch.messages.map((m) => ({
        to: m.to,
        text: m.text,
        ...(sender !== undefined && { senderID: sender }),
      })),
    };
    const fields = {
      batchId: batch.id,
      messageCount: batch.messages.length,
      recipientCount: batchRecipients(batch).length,
    };
    log.debug(fields, 'Sending batch to Descom');

    let res: Dispatcher.ResponseData;
    try {
      res = await request(sendUrl, {
        dispatcher: onWritten ? notifyWhenWritten(dispatcher, onWritten) : dispatcher,
        method: 'POST',
        headers: { ...authHeaders, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        signal: bounded,
      });
    } catch (err) {
      const error = classifyDescomNetworkError(err);
      logFailure(error, { ...fields, err }, 'Descom request failed without an answer');
      throw error;
    }

    const error = classifyDescomStatus(res.statusCode, firstHeader(res.headers['retry-after']));
    if (error) {
      // Always drain: an unread body pins the keep-alive socket and stalls the pool.
      await discardBody(res);
      logFailure(error, { ...fields, status: res.statusCode }, `Descom answered ${res.statusCode}`);
      throw error;
    }
    const receipt = await readReceipt(res, batch);
    log.debug(
      {
        ...fields,
        status: res.statusCode,
        providerIds: receipt.providerIds,
        credits: receipt.creditsCharged,
      },
      'Descom accepted the batch',
    );
    return receipt;
  }

  /** True when the balance covers `neededCredits` (≥ 1 when absent); any refusal or failure is false. */
  async function probeWithin(bounded: AbortSignal, neededCredits: number | undefined): Promise<boolean> {
    // A positive balance below the waiting batch's cost is not enough: resuming would earn the same
    // 402 with one more POST each probe round.
    const needed = Math.max(neededCredits ?? 1, Number.MIN_VALUE);
    try {
      const grant = await (deps.meter ?? UNMETERED)(bounded);
      const res = await request(balanceUrl, {
        dispatcher: notifyWhenWritten(dispatcher, grant.written),
        method: 'GET',
        headers: authHeaders,
        signal: bounded,
      });
      if (res.statusCode < 200 || res.statusCode >= 300) {
        await discardBody(res);
        // 401/402 (and anything else but 2xx) means the account cannot send yet.
        log.info({ status: res.statusCode }, 'Descom balance probe refused');
        return false;
      }
      const answer = balanceAnswerSchema.safeParse(await readJson(res));
      const balance = answer.success ? answer.data.balance : undefined;
      log.info({ balance, neededCredits: needed }, 'Descom balance probed');
      return balance !== undefined && balance >= needed;
    } catch (err) {
      // Unreachable or unreadable: we cannot tell that sending works, so stay paused.
      log.warn({ err }, 'Descom balance probe failed');
      return false;
    }
  }

  return {
    id: 'descom',
    limits: DESCOM_LIMITS,
    send: (batch, opts) => withinDeadline(opts.signal, (bounded) => sendWithin(batch, opts, bounded)),
    // No `lookup`: Descom has no search by tag, so an ambiguous send stays `unknown` (DESIGN.md).
    probe: ({ signal, neededCredits }: ProbeOptions) =>
      withinDeadline(signal, (bounded) => probeWithin(bounded, neededCredits)),
    async close() {
      if (closed || !ownsDispatcher) return;
      closed = true;
      await dispatcher.close();
    },
  };
}
