import { createHash, randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { IdempotencyConflictError, InputError } from '../errors.js';
import type { InvalidRecipient } from '../message/recipients.js';
import { prepareRequest, type PreparedRequest, type RequestPriority } from '../message/request.js';
import type { Encoding } from '../message/segments.js';
import type { ProviderId } from '../message/types.js';
import { PROVIDER_IDS } from '../providers/index.js';
import { enqueuingMember, unmarkEnqueuing } from './enqueue-repair.js';
import { jobPriority, laneOf, type SendJobData } from './jobs.js';
import { LANES, SEND_JOB, type Lane } from './names.js';
import type { RecordStore } from './records.js';

/** Idempotency keys are kept this long. */
export const IDEMPOTENCY_TTL_S = 24 * 3600;

/**
 * Options of every send job. The splitter only touches Redis, so its failures are Redis hiccups:
 * retry them patiently rather than leave a request queued forever.
 */
export function sendJobOptions(id: string, sendAt?: string, priority?: RequestPriority) {
  const delay = sendAt ? Math.max(0, Date.parse(sendAt) - Date.now()) : 0;
  return {
    jobId: id,
    ...jobPriority(priority),
    ...(delay > 0 ? { delay } : {}),
    attempts: 20,
    backoff: { type: 'exponential' as const, delay: 1_000, jitter: 0.5 },
    // A completed send job holds the request's summary and its batches' results, which the
    // request and batch records hold too: keep the latest 100 for the dashboard, not a week's.
    removeOnComplete: { count: 100 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}

/**
 * True when a send job of this id is in either lane's queue. A replay checks before adding: the
 * first attempt's job may have been queued before lanes existed (in `send`, whatever its
 * priority), and the same job id in the other lane would be a second send job for the request.
 */
async function sendJobExists(deps: EnqueueDeps, id: string): Promise<boolean> {
  const found = await Promise.all(LANES.map((lane) => deps.sendQueue(lane).getJob(id)));
  return found.some((job) => job !== undefined);
}

/** The 202 answer to a send request. */
export interface AcceptedRequest {
  id: string;
  recipients: number;
  duplicates: number;
  invalid: InvalidRecipient[];
  segments: number;
  encoding: Encoding;
  estimatedCredits: number;
  dryRun?: boolean;
}

export interface EnqueueDeps {
  store: RecordStore;
  /** The send queue of each lane (the request's is `laneOf(priority)`). */
  sendQueue: (lane: Lane) => Queue<SendJobData>;
  defaultCountry: string;
  /** Providers the workers can send through; a request naming another is refused. */
  providers?: readonly ProviderId[];
  /**
   * The request's webhook target from its `callbackUrl` (src/webhooks/target.ts): the URL to
   * store, undefined for none; throws InputError on `callbackUrl`. Without it `callbackUrl` is refused.
   */
  webhookTarget?: (callbackUrl: string | undefined) => Promise<string | undefined>;
}

async function resolveWebhookTarget(deps: EnqueueDeps, callbackUrl: string | undefined) {
  if (deps.webhookTarget) return deps.webhookTarget(callbackUrl);
  if (callbackUrl === undefined) return undefined;
  throw new InputError('Invalid send request', [
    { path: 'callbackUrl', message: 'webhooks are not enabled for this producer' },
  ]);
}

export interface EnqueueOptions {
  idempotencyKey?: string;
  /** Idempotency keys are scoped (the HTTP API scopes them to the API key). */
  scope?: string;
  /** How long the idempotency key is kept, in seconds (default IDEMPOTENCY_TTL_S, 24 h). */
  idempotencyTtlS?: number;
  /**
   * `input` already passed `sendRequestSchemaFor(PROVIDER_IDS)` and is its output (the HTTP
   * route validates its body with that schema): it is not parsed again.
   */
  validated?: boolean;
  /** Every `to` is already an E.164 number `normalizeNumber` accepted (see prepareRequest). */
  normalized?: boolean;
}

/** What an enqueue answers: the 202 body, also as JSON (as stored, sent as it is), and whether it is a replay. */
export interface EnqueueResult {
  accepted: AcceptedRequest;
  acceptedJson: string;
  replayed: boolean;
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** A stable serialisation: same request, same hash, whatever the key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function acceptedBody(id: string, prepared: PreparedRequest): AcceptedRequest {
  return {
    id,
    recipients: prepared.recipients,
    duplicates: prepared.duplicates,
    invalid: prepared.invalid,
    segments: prepared.segments,
    encoding: prepared.encoding,
    estimatedCredits: prepared.estimatedCredits,
  };
}

/**
 * Validates, normalises and enqueues one send request: one request record and one send job, or
 * nothing at all. A repeated idempotency key with the same body returns the original answer.
 *
 * The record and the job are two writes (BullMQ adds jobs with its own scripts), so the enqueue is
 * marked in progress with the record (one script) and unmarked once the job exists: a producer
 * that dies in between leaves a mark, and the workers complete that request with its recipients
 * `failed` and free its idempotency key (see enqueue-repair.ts), so a retry with the same key
 * enqueues afresh. Two round trips to Redis for the answer: the record, then the job.
 */
export async function enqueueRequest(
  deps: EnqueueDeps,
  input: unknown,
  opts: EnqueueOptions = {},
): Promise<EnqueueResult> {
  return enqueueOnce(deps, input, opts, true);
}

async function enqueueOnce(
  deps: EnqueueDeps,
  input: unknown,
  opts: EnqueueOptions,
  mayRetry: boolean,
): Promise<EnqueueResult> {
  const prepared = prepareRequest(input, {
    defaultCountry: deps.defaultCountry,
    providerIds: PROVIDER_IDS,
    validated: opts.validated,
    normalized: opts.normalized,
  });
  const { request } = prepared;
  if (request.provider && deps.providers && !deps.providers.includes(request.provider)) {
    throw new InputError('Invalid send request', [
      { path: 'provider', message: `provider ${request.provider} is not configured` },
    ]);
  }
  const webhookUrl = await resolveWebhookTarget(deps, request.callbackUrl);
  const id = `r${randomUUID().replace(/-/g, '')}`;
  if (request.dryRun) {
    const accepted = { ...acceptedBody(id, prepared), dryRun: true };
    return { accepted, acceptedJson: JSON.stringify(accepted), replayed: false };
  }

  const accepted = acceptedBody(id, prepared);
  const acceptedJson = JSON.stringify(accepted);
  const idempotency = opts.idempotencyKey
    ? {
        hash: sha256(`${opts.scope ?? ''}\u0000${opts.idempotencyKey}`),
        bodyHash: sha256(canonical(request)),
        ttlS: opts.idempotencyTtlS ?? IDEMPOTENCY_TTL_S,
      }
    : undefined;

  const { redis, keys } = deps.store;
  const member = enqueuingMember(id, idempotency?.hash);
  const existing = await deps.store.createRequest(
    {
      id,
      createdAt: new Date().toISOString(),
      provider: request.provider,
      total: prepared.total,
      invalid: prepared.invalid,
      duplicates: prepared.duplicates,
      estimatedCredits: prepared.estimatedCredits,
      accepted: acceptedJson,
      sendAt: request.sendAt,
      expiresAt: request.expiresAt,
      tag: request.tag,
      // Written with the record (one script): a request has webhooks from its first moment or never.
      webhookUrl,
    },
    idempotency,
    member,
  );

  const priority: RequestPriority = request.priority ?? (prepared.recipients === 1 ? 'high' : 'normal');
  const sendQueue = deps.sendQueue(laneOf(priority));
  const jobData: SendJobData = {
    requestId: id,
    priority,
    provider: request.provider,
    ...(request.failover === false ? { failover: false } : {}),
    messages: prepared.messages,
    sender: request.sender,
    sendAt: request.sendAt,
    expiresAt: request.expiresAt,
    window: request.window,
    timezone: request.timezone,
  };

  if (existing !== null && idempotency) {
    // This attempt wrote nothing (not even its mark): its id is not used.
    const [originalId = '', bodyHash] = existing.split('|');
    if (bodyHash !== idempotency.bodyHash) throw new IdempotencyConflictError(opts.idempotencyKey!);
    const original = await deps.store.getRequest(originalId);
    if (!original) throw new IdempotencyConflictError(opts.idempotencyKey!);
    // The first attempt may have died between its record and its job: adding again is a no-op
    // when the job exists (same jobId), and completes the enqueue when it does not. The same body
    // has the same priority, so its job goes to the lane the first attempt's went to.
    if (original.state === 'queued' && !original.planned && !(await sendJobExists(deps, originalId))) {
      await sendQueue.add(
        SEND_JOB,
        { ...jobData, requestId: originalId },
        sendJobOptions(originalId, request.sendAt, priority),
      );
      // The repair may have taken the original between our read and our add (the job it then
      // finds is a no-op): its key is free now, so this retry enqueues afresh, as after a repair.
      if (mayRetry && ((await deps.store.getRequest(originalId))?.unsentFailed ?? 0) > 0) {
        return enqueueOnce(deps, input, opts, false);
      }
    }
    return {
      accepted: JSON.parse(original.accepted) as AcceptedRequest,
      acceptedJson: original.accepted,
      replayed: true,
    };
  }

  try {
    await sendQueue.add(SEND_JOB, jobData, sendJobOptions(id, request.sendAt, priority));
  } catch (err) {
    // Nothing half-enqueued: without its job, the record (and idempotency key) must go too.
    await deps.store.deleteRequest(id, idempotency?.hash).catch(() => undefined);
    await unmarkEnqueuing(redis, keys, member).catch(() => undefined);
    throw err;
  }
  // Best effort, and nothing waits for it: a mark left behind (Redis hiccup, a producer that
  // stops right after answering) is dropped by the sweep, which finds the job.
  void unmarkEnqueuing(redis, keys, member).catch(() => undefined);
  return { accepted, acceptedJson, replayed: false };
}
