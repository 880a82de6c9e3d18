/**
 * Minimal typings for `ovh@2.0.3` (the official OVH client ships none; the declaration posted in
 * ovh/node-ovh#41 is wrong: `request()` is callback-based). Only what smsq uses, checked against
 * `node_modules/ovh/lib/ovh.es6.js`.
 */
declare module 'ovh' {
  namespace ovh {
    /** Constructor options. `endpoint` overwrites `host`: pass one or the other, never both. */
    interface OvhParams {
      appKey: string;
      appSecret: string;
      /** Without it requests go out unsigned. */
      consumerKey?: string;
      /** Named API (`ovh-eu`, `ovh-ca`, `ovh-us`, …); an unknown name throws. */
      endpoint?: string;
      /** Default `eu.api.ovh.com`. */
      host?: string;
      /** Default 443. Never part of the signed URL. */
      port?: number;
      /** Default `/1.0`; an empty string also means `/1.0`. */
      basePath?: string;
      /** Idle-socket timeout in ms (`socket.setTimeout`), not a total deadline. */
      timeout?: number;
      /** Seconds to add to the local clock. Read as `params.apiTimeDiff || null`: 0 means "unknown". */
      apiTimeDiff?: number;
      /** Schemas to download and check calls against (extra network I/O). */
      apis?: string[];
      warn?: (...args: unknown[]) => void;
      /** Logs bodies (phone numbers, texts): never enable. */
      debug?: boolean | ((...args: unknown[]) => void);
    }

    /** First callback argument: an HTTP status (> 0), a negated errno (< 0), a `[OVH] …` string, or an Error. */
    type OvhCallbackError = number | string | Error;

    /** What `requestPromised` rejects with: a plain object, not an Error. */
    interface OvhRejection {
      error: OvhCallbackError;
      /** OVH's `message` for an HTTP error; `null`/absent otherwise. */
      message?: string | null;
    }

    type OvhCallback = (err: OvhCallbackError | null, result?: unknown) => void;

    interface OvhClient {
      /** Server clock minus local clock, in seconds; `null` = fetch `/auth/time` before the next call. */
      apiTimeDiff: number | null;
      /** Deletes `{placeholder}` keys and null/undefined values from `params` (mutates it). */
      request(
        method: string,
        path: string,
        params: Record<string, unknown> | undefined,
        callback: OvhCallback,
      ): void;
      request(method: string, path: string, callback: OvhCallback): void;
      /** A Bluebird promise; rejects with {@link OvhRejection}. Mutates `params` like `request`. */
      requestPromised<T = unknown>(
        method: string,
        path: string,
        params?: Record<string, unknown>,
      ): Promise<T>;
      signRequest(method: string, url: string, body: string | null, timestamp: number | string): string;
    }
  }

  /** A factory, not a class. Throws synchronously on bad constructor options only. */
  function ovh(params: ovh.OvhParams): ovh.OvhClient;
  export = ovh;
}
