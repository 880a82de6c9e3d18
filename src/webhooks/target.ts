import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { InputError } from '../errors.js';
import { isBlockedAddress } from './address-policy.js';

/** Every address a host name resolves to (A and AAAA). Injected in tests. */
export type AddressLookup = (host: string) => Promise<string[]>;

/** A name that has not resolved within this long is taken as not resolving (the enqueue waits on it). */
const LOOKUP_DEADLINE_MS = 3_000;

export const lookupAddresses: AddressLookup = async (host) => {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`lookup of ${host} timed out`)), LOOKUP_DEADLINE_MS);
  });
  try {
    const found = await Promise.race([lookup(host, { all: true, verbatim: true }), deadline]);
    return found.map((a) => a.address);
  } finally {
    clearTimeout(timer);
  }
};

export interface TargetCheckOptions {
  /** SMSQ_WEBHOOK_ALLOW_PRIVATE: skip the address check (the scheme is still checked). */
  allowPrivate: boolean;
  lookup?: AddressLookup;
}

/**
 * Why a webhook may not be sent to `url`, or undefined when it may: http(s) only, and (unless
 * private targets are allowed) a host that resolves, and only to public addresses. The same check
 * runs at enqueue (a 400) and before every delivery (DNS can change in between).
 */
export async function webhookTargetProblem(
  url: string,
  opts: TargetCheckOptions,
): Promise<string | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'must be an http or https URL';
  if (opts.allowPrivate) return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await (opts.lookup ?? lookupAddresses)(host);
    } catch {
      addresses = [];
    }
    if (addresses.length === 0) return `host ${host} does not resolve`;
  }
  const blocked = addresses.find(isBlockedAddress);
  if (blocked === undefined) return undefined;
  return `host ${host} is a loopback, private or link-local address (${blocked}); SMSQ_WEBHOOK_ALLOW_PRIVATE=true allows it`;
}

export interface WebhookTargetPolicy extends TargetCheckOptions {
  /** SMSQ_WEBHOOK_URL: the target of requests without `callbackUrl`. */
  defaultUrl?: string;
  /** A signing secret is configured: without one no request gets webhooks. */
  signing: boolean;
}

/**
 * The enqueue-time decision (see `EnqueueDeps.webhookTarget`): the URL to store as the request's
 * `webhookUrl`, or undefined for no webhooks. A bad `callbackUrl` throws an InputError on `callbackUrl`.
 */
export function createWebhookTargetResolver(
  policy: WebhookTargetPolicy,
): (callbackUrl: string | undefined) => Promise<string | undefined> {
  const refuse = (message: string) =>
    new InputError('Invalid send request', [{ path: 'callbackUrl', message }]);
  return async (callbackUrl) => {
    if (callbackUrl === undefined) return policy.signing ? policy.defaultUrl : undefined;
    if (!policy.signing) throw refuse('webhooks are off here: SMSQ_WEBHOOK_SECRET is not set');
    const problem = await webhookTargetProblem(callbackUrl, policy);
    if (problem) throw refuse(problem);
    return callbackUrl;
  };
}

/** The enqueue-time resolver of a process configured by `config.webhooks`. */
export function webhookTargetFromConfig(config: {
  url?: string;
  secret?: string;
  allowPrivate: boolean;
}): (callbackUrl: string | undefined) => Promise<string | undefined> {
  return createWebhookTargetResolver({
    defaultUrl: config.url,
    signing: config.secret !== undefined,
    allowPrivate: config.allowPrivate,
  });
}
