/**
 * How a provider's answers become queue decisions: each provider keeps one decision table (data:
 * what was observed → kind, our code, whether the provider may have acted), and this file is the
 * one code that reads them. The README's "Provider decision tables" section is checked against
 * the tables by test/unit/decision-tables.test.ts.
 */
import {
  AccountError,
  AmbiguousError,
  PermanentError,
  RateLimitedError,
  TransientError,
  type DeliveryError,
} from '../errors.js';
import { neverLeft, parseRetryAfterMs } from './transport.js';

/** What the queue does: `sent` is a success, the others are the delivery error classes (src/errors.ts). */
export type DecisionKind = 'sent' | 'transient' | 'ambiguous' | 'rate-limited' | 'account' | 'permanent';

/** One row of a provider's decision table. */
export interface Decision {
  /**
   * What was observed, as a key: `HTTP 402`, `HTTP 403 NOT_GRANTED_CALL`, `HTTP 5xx`, `never-left`
   * (the shared transport list), `code ECONNRESET`, `error TimeoutError`, `network`, `otherwise`,
   * or a provider's own (`HTTP 400, credit enough`). Reads (GET) look for `GET <key>` first.
   */
  when: string;
  kind: DecisionKind;
  /** Our stable code, the error's `code` (rate-limited is always `SMSQ_PROVIDER_RATE_LIMITED`). */
  code: string;
  /** True when the provider may have acted on the request: sending it again could deliver twice. */
  mayHaveLeft: boolean;
  /** Why, in a few words: the error message says it, and so does the README's table. */
  why: string;
  /** rate-limited: the wait when `Retry-After` is absent or unreadable, in ms. */
  retryAfterDefaultMs?: number;
  /** account: after this many pauses for this row, the waiting batches fail (a probe cannot see the fix). */
  failAfterRepeats?: number;
}

/** A provider's decisions. Every table has an `otherwise` row, used when no other key matches. */
export type DecisionTable = readonly Decision[];

/** The key of the last resort: an answer no row names is treated as this row says. */
export const OTHERWISE = 'otherwise';

/** The row of the first key the table has, else its `otherwise` row. */
export function decide(table: DecisionTable, keys: readonly string[]): Decision {
  for (const key of [...keys, OTHERWISE]) {
    const row = table.find((r) => r.when === key);
    if (row) return row;
  }
  throw new Error(`Decision table without an ${OTHERWISE} row (keys ${keys.join(', ')})`);
}

/**
 * The row for a read (a GET: lookup, probe, credit check): a `GET <key>` row when the table has
 * one, else the send's row, where `ambiguous` and `sent` become `transient` — a GET is safe to
 * repeat, and a 2xx we cannot read tells nothing.
 */
export function decideRead(table: DecisionTable, keys: readonly string[]): Decision {
  const own = table.find((r) => keys.some((k) => r.when === `GET ${k}`));
  if (own) return own;
  const row = decide(table, keys);
  return row.kind === 'ambiguous' || row.kind === 'sent'
    ? { ...row, kind: 'transient', mayHaveLeft: false }
    : row;
}

/** Keys of an HTTP status, most specific first: `HTTP 403 NOT_GRANTED_CALL`, `HTTP 403`, `HTTP 4xx`. */
export function statusKeys(status: number, detail?: string): string[] {
  return [
    ...(detail ? [`HTTP ${status} ${detail}`] : []),
    `HTTP ${status}`,
    `HTTP ${Math.floor(status / 100)}xx`,
  ];
}

function readCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  // DOMException carries a numeric legacy `code`; only string codes are Node/undici codes.
  return typeof err.code === 'string' ? err.code : undefined;
}

/** True when every attempt of a happy-eyeballs connect (AggregateError) failed before sending. */
function allAttemptsNeverLeft(err: unknown): boolean {
  if (!(err instanceof AggregateError) || err.errors.length === 0) return false;
  return err.errors.every((inner) => neverLeft(readCode(inner)));
}

/**
 * Keys of an error raised by an HTTP call that got no answer: `never-left` when the shared
 * transport list proves the request never left (so no provider can disagree about a socket
 * error), else `error <name>` (an AbortSignal's reason), `code <err.code>`, and `network`.
 * Never the message text: Node's and undici's messages are not a contract.
 */
export function failureKeys(err: unknown): string[] {
  const code = readCode(err);
  if (neverLeft(code) || (code === undefined && allAttemptsNeverLeft(err))) return ['never-left'];
  return [
    ...(err instanceof Error ? [`error ${err.name}`] : []),
    ...(code !== undefined ? [`code ${code}`] : []),
    'network',
  ];
}

/** The delivery error of a row that is not `sent`, with `message` and the provider's error as `cause`. */
export function errorFor(
  decision: Decision,
  message: string,
  opts: { cause?: unknown; retryAfter?: string | readonly string[]; now?: number } = {},
): DeliveryError {
  const options = { code: decision.code, ...(opts.cause !== undefined ? { cause: opts.cause } : {}) };
  switch (decision.kind) {
    case 'transient':
      return new TransientError(message, options);
    case 'ambiguous':
      return new AmbiguousError(message, options);
    case 'permanent':
      return new PermanentError(message, options);
    case 'account':
      return new AccountError(message, {
        ...options,
        ...(decision.failAfterRepeats !== undefined ? { failAfterRepeats: decision.failAfterRepeats } : {}),
      });
    case 'rate-limited': {
      const ms = parseRetryAfterMs(opts.retryAfter, decision.retryAfterDefaultMs ?? 1_000, opts.now);
      return new RateLimitedError(`${message} (retry in ${ms} ms)`, ms, options);
    }
    case 'sent':
      throw new Error(`${decision.when} is a success, not an error`);
  }
}
