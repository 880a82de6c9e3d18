import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ErrorBody } from './error-handler.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, for scoping idempotency keys: a hash of the API key, never the key. */
    apiKeyScope: string;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Compares a presented secret with every accepted one in constant time: hashing first gives
 * equal lengths (timingSafeEqual requires them) and every candidate is compared, match or not.
 */
export function matchSecret(presented: string, accepted: readonly string[]): number {
  return matchDigest(digest(presented), accepted.map(digest));
}

/** `matchSecret` with the accepted secrets hashed once beforehand (the API keys: every request). */
function matchDigest(hash: Buffer, accepted: readonly Buffer[]): number {
  let found = -1;
  accepted.forEach((secret, i) => {
    if (timingSafeEqual(hash, secret) && found === -1) found = i;
  });
  return found;
}

/** Refuses a production start without API keys (before anything else starts). */
export function assertApiKeysConfigured(config: Config): void {
  if (config.production && config.http.apiKeys.length === 0) {
    throw new ConfigError(
      'Invalid configuration:\nSMSQ_API_KEYS: required when NODE_ENV=production (comma-separated bearer tokens for the HTTP API)',
    );
  }
}

function refuse(reply: FastifyReply, message: string): FastifyReply {
  return reply
    .code(401)
    .header('WWW-Authenticate', 'Bearer realm="smsq"')
    .send({ error: 'SMSQ_UNAUTHORIZED', message } satisfies ErrorBody);
}

/**
 * The bearer-token check for the API routes. With no keys configured (development only, see
 * assertApiKeysConfigured) every request is accepted, after one loud warning at start-up.
 */
export function createApiKeyCheck(config: Config, logger: Logger): onRequestAsyncHookHandler {
  const keys = config.http.apiKeys;
  const keyDigests = keys.map(digest);
  const scopes = keyDigests.map((hash) => `key:${hash.toString('hex').slice(0, 16)}`);
  if (keys.length === 0) {
    logger.warn(
      'SMSQ_API_KEYS is empty: the HTTP API accepts every request WITHOUT authentication. ' +
        'Development only; set SMSQ_API_KEYS (NODE_ENV=production refuses to start without it).',
    );
  }
  return async function checkApiKey(request: FastifyRequest, reply: FastifyReply) {
    if (keys.length === 0) {
      request.apiKeyScope = 'anonymous';
      return;
    }
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) return refuse(reply, 'Missing bearer token: send Authorization: Bearer <key>');
    const index = matchDigest(digest(match[1]!), keyDigests);
    if (index === -1) return refuse(reply, 'Invalid API key');
    request.apiKeyScope = scopes[index]!;
  };
}

/** Basic auth for the dashboard: `undefined` when the credentials match, else the reply sent. */
export function checkBasicAuth(
  request: FastifyRequest,
  reply: FastifyReply,
  credentials: { user: string; password: string },
): FastifyReply | undefined {
  const header = request.headers.authorization;
  const match = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  let ok = false;
  if (match) {
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon !== -1) {
      // Both compared, always, so the time does not tell which one was wrong.
      const userOk = matchSecret(decoded.slice(0, colon), [credentials.user]) === 0;
      const passwordOk = matchSecret(decoded.slice(colon + 1), [credentials.password]) === 0;
      ok = userOk && passwordOk;
    }
  }
  if (ok) return undefined;
  return reply
    .code(401)
    .header('WWW-Authenticate', 'Basic realm="smsq dashboard", charset="UTF-8"')
    .send({ error: 'SMSQ_UNAUTHORIZED', message: 'Dashboard credentials required' } satisfies ErrorBody);
}
