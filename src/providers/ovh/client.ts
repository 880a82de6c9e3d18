import ovh from 'ovh';
import type { OvhClient, OvhParams } from 'ovh';
import type { Logger } from 'pino';
import type { OvhConfig } from './env.js';
import { SmsqError } from '../../errors.js';
import { withDeadline } from '../transport.js';
import { NOTHING_COUNTED, UNMETERED, type CallMeter } from '../types.js';
import { OvhRequestError, toOvhRequestError, type OvhMethod, type OvhRequestPhase } from './errors.js';
import { startWatched, type WatchedRequest } from './wire.js';

const NEVER_ABORTED = new AbortController().signal;

export type { OvhMethod } from './errors.js';

/** OVH's named APIs smsq accepts in `OVH_ENDPOINT`. */
export const OVH_NAMED_ENDPOINTS = ['ovh-eu', 'ovh-ca', 'ovh-us'] as const;

/**
 * Where the client connects: a named OVH API, or an explicit host. Never both: the client's
 * `endpoint` option silently overwrites `host`.
 */
export type OvhTarget =
  { endpoint: (typeof OVH_NAMED_ENDPOINTS)[number] } | { host: string; port: number; basePath: string };

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
  /** Total deadline of one call (time sync included), in ms; the wait for the allowance is not part of it. */
  timeoutMs: number;
  logger: Logger;
  /** Awaited before every call (the time sync excepted). Default: unmetered. */
  meter?: CallMeter;
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
    opts?: OvhRequestOptions,
  ): Promise<T>;
  /** Forgets the clock offset so the next call syncs again (after suspected clock skew). */
  resyncTime(): void;
  /** OVH's clock minus ours, in ms, once a call synced time; undefined before. */
  timeOffsetMs(): number | undefined;
}

/** Options of one {@link OvhApiClient.request}. */
export interface OvhRequestOptions {
  signal?: AbortSignal;
  /** The caller already took this call from the allowance (a send: see SmsProvider). */
  metered?: boolean;
  /** With `metered`: called when the request is being written (the caller's CallGrant). */
  onWritten?: () => void;
  /**
   * Called with the result of a call that answered after it was settled as failed: an answer
   * complete just as the deadline fired, or one of a request that could not be watched (and so not
   * destroyed on our deadline, see {@link startWatched}).
   */
  onLate?: (result: unknown) => void;
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
  /** OVH's clock minus ours, in s, from the last time sync. */
  let offsetS: number | undefined;
  const meter = deps.meter ?? UNMETERED;

  async function syncTime(): Promise<OvhClient> {
    const client = ovh({ ...baseParams });
    const path = '/auth/time';
    // `/auth/time` is the one path the client sends without first syncing (and unsigned), so asking
    // this fresh client for it is one plain GET.
    const serverTime = await raceDeadline(client.requestPromised<unknown>('GET', path), deps.timeoutMs).catch(
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
    offsetS = client.apiTimeDiff;
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

  async function request<T>(
    method: OvhMethod,
    path: string,
    params?: Record<string, unknown>,
    opts: OvhRequestOptions = {},
  ): Promise<T> {
    const signal = opts.signal ?? NEVER_ABORTED;
    let grant = NOTHING_COUNTED;
    try {
      if (!opts.metered) grant = await meter(signal);
    } catch (err) {
      // Nothing was signed nor sent: waiting for the allowance failed (aborted, or Redis refused).
      throw new OvhRequestError({
        reason: signal.aborted ? 'aborted' : 'unexpected',
        phase: 'before-send',
        method,
        path,
        ovhError: signal.aborted ? 'aborted' : 'allowance',
        cause: err,
      });
    }
    return callOnce<T>(method, path, params, signal, opts.onLate, opts.onWritten ?? grant.written);
  }

  function callOnce<T>(
    method: OvhMethod,
    path: string,
    params: Record<string, unknown> | undefined,
    signal: AbortSignal,
    onLate: ((result: unknown) => void) | undefined,
    onWritten: () => void,
  ): Promise<T> {
    const started = Date.now();
    return new Promise<T>((resolve, reject) => {
      let phase: OvhRequestPhase = 'before-send';
      let settled = false;
      /** The request on the wire, when we could see it (see {@link startWatched}). */
      let watched: WatchedRequest | undefined;
      // The shared total deadline (src/providers/transport.ts): aborted by the caller or by time.
      const deadline = withDeadline(signal, deps.timeoutMs);
      const bounded = deadline.signal;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        deadline.clear();
        bounded.removeEventListener('abort', onAbort);
        outcome();
      };
      const giveUp = (fields: { reason: 'deadline' | 'aborted'; cause?: unknown }): void =>
        settle(() => {
          // Destroying the request closes its socket: OVH's answer, if any, can no longer reach us,
          // so "we gave up" and "no answer was processed" stay the same fact.
          watched?.request.destroy();
          reject(new OvhRequestError({ ...fields, phase, method, path, ovhError: fields.reason }));
        });
      const onAbort = (): void =>
        giveUp(signal.aborted ? { reason: 'aborted', cause: signal.reason } : { reason: 'deadline' });
      if (bounded.aborted) {
        onAbort();
        return;
      }
      bounded.addEventListener('abort', onAbort, { once: true });

      syncedClient().then(
        (client) => {
          if (settled) return;
          let pending: Promise<T>;
          try {
            // The client deletes keys from the object it is given: hand it a private copy.
            const own = params === undefined ? undefined : structuredClone(params);
            ({ pending, watched } = startWatched(() => client.requestPromised<T>(method, path, own)));
          } catch (err) {
            // Thrown synchronously (uncloneable params, a client bug): nothing went out.
            const ovhError = err instanceof Error ? err.message : String(err);
            const fields = { reason: 'unexpected', phase: 'before-send', ovhError, cause: err } as const;
            settle(() => reject(new OvhRequestError({ ...fields, method, path })));
            return;
          }
          phase = 'after-send';
          // 'finish': the request is written to its socket. Unwatched, we cannot see it: say now.
          if (watched) watched.request.once('finish', onWritten);
          else onWritten();
          pending.then(
            (result) => {
              if (settled) {
                // The answer was complete before our deadline fired but reached us after it (the
                // promise settles a tick later), or the request could not be watched and destroyed.
                // For a POST the SMS went out after we called it ambiguous: the caller must record it.
                log.warn({ method, path, ms: Date.now() - started }, 'OVH answered 200 after we gave up');
                onLate?.(result);
                return;
              }
              log.debug({ method, path, ms: Date.now() - started }, 'OVH call answered');
              settle(() => resolve(result));
            },
            (rejection: unknown) => {
              const err = toOvhRequestError(rejection, { method, path }, watched?.exchange);
              if (settled) {
                if (!watched)
                  log.warn(
                    { method, path, status: err.status, errno: err.errno },
                    'OVH failed after we gave up',
                  );
                return;
              }
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
    timeOffsetMs: () => (offsetS === undefined ? undefined : offsetS * 1_000),
  };
}

/** The time sync's own deadline passed (the request is abandoned, not cancelled). */
class DeadlineReached extends Error {}

/** Rejects with {@link DeadlineReached} after `ms`; the loser keeps running (nothing can cancel it). */
function raceDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineReached(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(promise), deadline]).finally(() => clearTimeout(timer));
}
