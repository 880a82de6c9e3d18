import { getSystemErrorName } from 'node:util';
import ovh from 'ovh';
import type { OvhClient, OvhParams } from 'ovh';
import type { OvhConfig } from '../../config.js';
import { SmsqError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { NEVER_SENT_ERRNOS } from './classify.js';

/** HTTP methods smsq uses against the OVH API. */
export type OvhMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** OVH's named APIs smsq accepts in `OVH_ENDPOINT`. */
export const OVH_NAMED_ENDPOINTS = ['ovh-eu', 'ovh-ca', 'ovh-us'] as const;

/**
 * Where the client connects: a named OVH API, or an explicit host. Never both: the client's
 * `endpoint` option silently overwrites `host`.
 */
export type OvhTarget =
  { endpoint: (typeof OVH_NAMED_ENDPOINTS)[number] } | { host: string; port: number; basePath: string };

/**
 * Why an OVH call failed, as a stable value (the classifier's input, with `status` and `errno`):
 * - `http-status`: OVH answered with a non-200 status (`status` set);
 * - `non-json-body`: the body was not JSON (an HTML 502 from a load balancer); the status is lost;
 * - `time-sync`: `GET /auth/time` failed, so the call was never signed nor sent;
 * - `network`: a socket/DNS/TLS error (`errno` set when known);
 * - `deadline`: our total deadline passed; `aborted`: the caller's signal fired;
 * - `unexpected`: any other shape the client produced.
 */
export type OvhFailureReason =
  'http-status' | 'non-json-body' | 'time-sync' | 'network' | 'deadline' | 'aborted' | 'unexpected';

/** `before-send`: the request certainly did not leave. `after-send`: it may have reached OVH. */
export type OvhRequestPhase = 'before-send' | 'after-send';

/** The client's sentinel strings (constants in its source, not OVH message text). */
const CLIENT_NON_JSON = '[OVH] Unable to parse JSON reponse'; // sic: the typo is in the client
const CLIENT_TIME_SYNC = '[OVH] Unable to fetch OVH API time';

/** Any run of 6+ digits (optionally `+`-prefixed, spaced) in OVH's message: could be a phone number. */
const NUMBER_LIKE = /\+?\d[\d\s.-]{4,}\d/g;

/**
 * One failed OVH call, normalised from whatever the `ovh` client rejected with. The original value
 * is kept as `cause`. Carries no params, so no phone number or text.
 */
export class OvhRequestError extends SmsqError {
  /** HTTP status when OVH answered. */
  readonly status?: number;
  /** Node error code (`ECONNREFUSED`, `ECONNRESET`, `ENOTFOUND`, …) for network failures. */
  readonly errno?: string;
  readonly reason: OvhFailureReason;
  readonly phase: OvhRequestPhase;
  /** The client's `error` value as text (`"404"`, `"[OVH] Unable to parse JSON reponse"`, `"-111"`, `"socket hang up"`). */
  readonly ovhError: string;
  /** OVH's `message` (digits that look like phone numbers masked). */
  readonly ovhMessage?: string;
  readonly method: OvhMethod;
  /** Path below the base path, query included (never holds secrets). */
  readonly path: string;

  constructor(fields: {
    reason: OvhFailureReason;
    phase: OvhRequestPhase;
    method: OvhMethod;
    path: string;
    ovhError: string;
    status?: number;
    errno?: string;
    ovhMessage?: string;
    cause?: unknown;
  }) {
    const detail = fields.status !== undefined ? `HTTP ${fields.status}` : (fields.errno ?? fields.reason);
    const said = fields.ovhMessage ? `: ${fields.ovhMessage}` : '';
    super(
      'SMSQ_OVH_REQUEST',
      `OVH ${fields.method} ${fields.path} failed (${detail}, ${fields.phase})${said}`,
      {
        cause: fields.cause,
      },
    );
    this.reason = fields.reason;
    this.phase = fields.phase;
    this.method = fields.method;
    this.path = fields.path;
    this.ovhError = fields.ovhError;
    if (fields.status !== undefined) this.status = fields.status;
    if (fields.errno !== undefined) this.errno = fields.errno;
    if (fields.ovhMessage !== undefined) this.ovhMessage = fields.ovhMessage;
  }
}

/** Turns a libuv errno (negative, as the client passes `e.errno`) into its code; DNS's EAI_NONAME reads as ENOTFOUND, as in `node:dns`. */
function errnoName(errno: number): string | undefined {
  try {
    const name = getSystemErrorName(errno);
    return name === 'EAI_NONAME' ? 'ENOTFOUND' : name;
  } catch {
    return undefined;
  }
}

function phaseOf(errno: string | undefined): OvhRequestPhase {
  return errno !== undefined && NEVER_SENT_ERRNOS.has(errno) ? 'before-send' : 'after-send';
}

function maskNumbers(text: string): string {
  return text.replace(NUMBER_LIKE, '[number]');
}

/**
 * Normalises a rejection of `requestPromised` (or anything else thrown around it) into an
 * {@link OvhRequestError}. Known shapes: `{error: 404, message}` (HTTP status),
 * `{error: "[OVH] Unable to parse JSON reponse"}`, `{error: "[OVH] Unable to fetch OVH API time"}`,
 * `{error: -111}` (negated errno), `{error: Error("socket hang up") & {code: "ECONNRESET"}}`.
 */
export function toOvhRequestError(
  rejection: unknown,
  call: { method: OvhMethod; path: string },
): OvhRequestError {
  if (rejection instanceof OvhRequestError) return rejection;
  const base = { ...call, cause: rejection };
  const value: unknown =
    typeof rejection === 'object' && rejection !== null && 'error' in rejection ? rejection.error : rejection;
  const message: unknown =
    typeof rejection === 'object' && rejection !== null && 'message' in rejection
      ? rejection.message
      : undefined;

  if (typeof value === 'number' && value > 0) {
    const ovhMessage = typeof message === 'string' ? maskNumbers(message) : undefined;
    return new OvhRequestError({
      ...base,
      reason: 'http-status',
      phase: 'after-send',
      status: value,
      ovhError: String(value),
      ovhMessage,
    });
  }
  if (typeof value === 'number' && value < 0) {
    const errno = errnoName(value);
    return new OvhRequestError({
      ...base,
      reason: 'network',
      phase: phaseOf(errno),
      errno,
      ovhError: String(value),
    });
  }
  if (value === CLIENT_NON_JSON) {
    // The status is lost with the body; the request did reach something that answered.
    return new OvhRequestError({ ...base, reason: 'non-json-body', phase: 'after-send', ovhError: value });
  }
  if (value === CLIENT_TIME_SYNC) {
    return new OvhRequestError({ ...base, reason: 'time-sync', phase: 'before-send', ovhError: value });
  }
  if (value instanceof Error) {
    const { code, errno: rawErrno } = value as NodeJS.ErrnoException;
    const errno =
      typeof code === 'string' ? code : typeof rawErrno === 'number' ? errnoName(rawErrno) : undefined;
    return new OvhRequestError({
      ...base,
      reason: 'network',
      phase: phaseOf(errno),
      errno,
      ovhError: value.message,
    });
  }
  // Unknown shape: assume the worst (it may have been sent).
  return new OvhRequestError({ ...base, reason: 'unexpected', phase: 'after-send', ovhError: String(value) });
}

/** Maps `OVH_ENDPOINT` to client options: `{ endpoint }` for a named API, else `{ host, port, basePath }`. */
export function parseOvhEndpoint(endpoint: string): OvhTarget {
  const named = OVH_NAMED_ENDPOINTS.find((name) => name === endpoint);
  if (named) return { endpoint: named };
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new SmsqError('SMSQ_OVH_ENDPOINT', `OVH_ENDPOINT: not a named API nor a URL: ${endpoint}`);
  }
  // The client speaks https only, and signs "https://" + host + path: anything else cannot work.
  if (url.protocol !== 'https:')
    throw new SmsqError('SMSQ_OVH_ENDPOINT', 'OVH_ENDPOINT: the ovh client speaks https only');
  if (url.search || url.hash || url.username || url.password)
    throw new SmsqError(
      'SMSQ_OVH_ENDPOINT',
      'OVH_ENDPOINT: expected https://host[:port]/basePath, nothing more',
    );
  const basePath = url.pathname.replace(/\/+$/, '');
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : 443,
    // The client reads an empty basePath as its default `/1.0`; say so rather than pretend.
    basePath: basePath === '' ? '/1.0' : basePath,
  };
}

/** Options of {@link createOvhClient}. */
export interface OvhClientDeps {
  /** Total deadline of one call (time sync included), in ms. */
  timeoutMs: number;
  logger: Logger;
}

/** A wrapped `ovh` client: cloned params, total deadline, cancellation, normalised errors, one time sync. */
export interface OvhApiClient {
  /**
   * One OVH API call. `path` is below the base path, with values already substituted and encoded
   * (no `{placeholders}`). `params` become the query (GET/DELETE) or the JSON body (POST/PUT);
   * they are cloned, never mutated. Rejects only with {@link OvhRequestError}.
   */
  request<T>(
    method: OvhMethod,
    path: string,
    params?: Record<string, unknown>,
    opts?: { signal?: AbortSignal },
  ): Promise<T>;
  /** Forgets the clock offset so the next call syncs again (after suspected clock skew). */
  resyncTime(): void;
}

/**
 * Wraps the official `ovh` client (v2.0.3). Time is synced once, lazily, on the first call (shared
 * by concurrent first calls, retried on the next call if it failed) and then reused.
 */
export function createOvhClient(cfg: OvhConfig, deps: OvhClientDeps): OvhApiClient {
  const log = deps.logger.child({ module: 'ovh-client' });
  const target = parseOvhEndpoint(cfg.endpoint);
  const baseParams: OvhParams = {
    ...target,
    appKey: cfg.appKey,
    appSecret: cfg.appSecret,
    consumerKey: cfg.consumerKey,
    // No `timeout`: it is only an idle-socket timeout, and the client adds a 'timeout' listener to
    // the socket on every request without removing it. With Node 20's keep-alive global agent the
    // same socket serves many requests, so listeners (each holding its request) pile up without
    // bound (MaxListenersExceededWarning seen in tests). Our total deadline below replaces it; an
    // abandoned request keeps its socket until OVH or its load balancer answers or closes.
    // `debug` stays off: it console.logs bodies (numbers, texts). `apis` stays empty: no schema downloads.
  };
  let synced: Promise<OvhClient> | undefined;

  async function syncTime(): Promise<OvhClient> {
    const client = ovh({ ...baseParams });
    const path = '/auth/time';
    // `/auth/time` is the one path the client sends without first syncing (and unsigned), so asking
    // this fresh client for it is one plain GET.
    const serverTime = await withDeadline(client.requestPromised<unknown>('GET', path), deps.timeoutMs).catch(
      (err: unknown) => {
        throw new OvhRequestError({
          reason: 'time-sync',
          phase: 'before-send',
          method: 'GET',
          path,
          ovhError:
            err instanceof DeadlineReached
              ? 'deadline'
              : toOvhRequestError(err, { method: 'GET', path }).ovhError,
          cause: err,
        });
      },
    );
    if (typeof serverTime !== 'number' || !Number.isFinite(serverTime)) {
      throw new OvhRequestError({
        reason: 'time-sync',
        phase: 'before-send',
        method: 'GET',
        path,
        ovhError: 'not a number',
      });
    }
    // Same formula as the client's own sync. We set the field ourselves rather than pass
    // `apiTimeDiff` to the constructor: it reads `params.apiTimeDiff || null`, so a true offset of 0
    // (a well-synced host, the common case) would become "unknown" and the client would fetch
    // /auth/time again, inside our first real call and its deadline, and with no error of its own. `request()` tests `this.apiTimeDiff === null`,
    // so storing the number, 0 included, makes the client use it and never sync again. (An offset
    // nudge like Number.MIN_VALUE would also work, but hides the intent.)
    client.apiTimeDiff = serverTime - Math.round(Date.now() / 1000);
    log.info({ apiTimeDiffS: client.apiTimeDiff }, 'synced with OVH API time');
    return client;
  }

  function syncedClient(): Promise<OvhClient> {
    synced ??= syncTime().catch((err: unknown) => {
      synced = undefined; // let the next call try again
      throw err;
    });
    return synced;
  }

  function request<T>(
    method: OvhMethod,
    path: string,
    params?: Record<string, unknown>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<T> {
    const { signal } = opts;
    const started = Date.now();
    return new Promise<T>((resolve, reject) => {
      let phase: OvhRequestPhase = 'before-send';
      let settled = false;
      const fail = (fields: { reason: 'deadline' | 'aborted'; cause?: unknown }): OvhRequestError =>
        new OvhRequestError({ ...fields, phase, method, path, ovhError: fields.reason });
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        outcome();
      };
      // The client has only an idle timeout and no cancellation: we race it and abandon the loser.
      const timer = setTimeout(() => settle(() => reject(fail({ reason: 'deadline' }))), deps.timeoutMs);
      const onAbort = (): void => settle(() => reject(fail({ reason: 'aborted', cause: signal?.reason })));
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });

      syncedClient().then(
        (client) => {
          if (settled) return;
          let pending: Promise<T>;
          try {
            // The client deletes keys from the object it is given: hand it a private copy.
            const own = params === undefined ? undefined : structuredClone(params);
            pending = Promise.resolve(client.requestPromised<T>(method, path, own));
          } catch (err) {
            // Thrown synchronously (uncloneable params, a client bug): nothing went out.
            const ovhError = err instanceof Error ? err.message : String(err);
            const fields = { reason: 'unexpected', phase: 'before-send', ovhError, cause: err } as const;
            settle(() => reject(new OvhRequestError({ ...fields, method, path })));
            return;
          }
          phase = 'after-send';
          pending.then(
            (result) => {
              // A late success matters: for a POST it means the SMS went out after we called it ambiguous.
              if (settled)
                log.warn({ method, path, ms: Date.now() - started }, 'OVH answered 200 after we gave up');
              else log.debug({ method, path, ms: Date.now() - started }, 'OVH call answered');
              settle(() => resolve(result));
            },
            (rejection: unknown) => {
              const err = toOvhRequestError(rejection, { method, path });
              if (settled)
                log.warn(
                  { method, path, status: err.status, errno: err.errno },
                  'OVH failed after we gave up',
                );
              else
                log.debug(
                  { method, path, ms: Date.now() - started, status: err.status, errno: err.errno },
                  'OVH call failed',
                );
              settle(() => reject(err));
            },
          );
        },
        (err: unknown) => settle(() => reject(toOvhRequestError(err, { method, path }))),
      );
    });
  }

  return {
    request,
    resyncTime: () => {
      synced = undefined;
    },
  };
}

/** The time sync's own deadline passed (the request is abandoned, not cancelled). */
class DeadlineReached extends Error {}

/** Rejects with {@link DeadlineReached} after `ms`; the loser keeps running (nothing can cancel it). */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineReached(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(promise), deadline]).finally(() => clearTimeout(timer));
}
