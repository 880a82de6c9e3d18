import { getSystemErrorName } from 'node:util';
import { SmsqError } from '../../errors.js';
import { neverLeft } from '../transport.js';
import type { OvhExchange } from './wire.js';

/**
 * Why an OVH call failed, as a stable value (the classifier's input, with `status` and `errno`):
 * - `http-status`: OVH answered with a non-200 status (`status` set);
 * - `non-json-body`: the body was not JSON (an HTML 502 from a load balancer); `status` set when the wire showed it;
 * - `time-sync`: `GET /auth/time` failed, so the call was never signed nor sent;
 * - `network`: a socket/DNS/TLS error (`errno` set when known);
 * - `deadline`: our total deadline passed; `aborted`: the caller's signal fired;
 * - `unexpected`: any other shape the client produced.
 */
export type OvhFailureReason =
  'http-status' | 'non-json-body' | 'time-sync' | 'network' | 'deadline' | 'aborted' | 'unexpected';

/** HTTP methods smsq uses against the OVH API. */
export type OvhMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

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
  /** OVH's `errorCode` (`NOT_GRANTED_CALL`, `INVALID_SIGNATURE`, …), read from the raw body. */
  readonly errorCode?: string;
  /** The raw `Retry-After` header of the answer, when there was one. */
  readonly retryAfter?: string;
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
    errorCode?: string;
    retryAfter?: string;
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
    if (fields.errorCode !== undefined) this.errorCode = fields.errorCode;
    if (fields.retryAfter !== undefined) this.retryAfter = fields.retryAfter;
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
  return neverLeft(errno) ? 'before-send' : 'after-send';
}

function maskNumbers(text: string): string {
  return text.replace(NUMBER_LIKE, '[number]');
}

/** `errorCode` of an OVH error body (`{"errorCode":"NOT_GRANTED_CALL",…}`), if it is one. */
function readErrorCode(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && 'errorCode' in parsed) {
      return typeof parsed.errorCode === 'string' ? parsed.errorCode : undefined;
    }
  } catch {
    // Not JSON (an HTML page): no code.
  }
  return undefined;
}

/** What the wire adds to an error: the real status, `errorCode`, `Retry-After`. */
function wireFields(exchange: OvhExchange | undefined): { errorCode?: string; retryAfter?: string } {
  if (!exchange) return {};
  const retryAfter = exchange.headers?.['retry-after'];
  const errorCode = readErrorCode(exchange.body);
  return {
    ...(errorCode !== undefined ? { errorCode } : {}),
    ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
  };
}

/**
 * Normalises a rejection of `requestPromised` (or anything else thrown around it) into an
 * {@link OvhRequestError}. Known shapes: `{error: 404, message}` (HTTP status),
 * `{error: "[OVH] Unable to parse JSON reponse"}`, `{error: "[OVH] Unable to fetch OVH API time"}`,
 * `{error: -111}` (negated errno), `{error: Error("socket hang up") & {code: "ECONNRESET"}}`.
 * `exchange` (what the wire showed, when watched) restores what the client drops: the status of
 * an unparseable body, `errorCode` and `Retry-After`.
 */
export function toOvhRequestError(
  rejection: unknown,
  call: { method: OvhMethod; path: string },
  exchange?: OvhExchange,
): OvhRequestError {
  if (rejection instanceof OvhRequestError) return rejection;
  const base = { ...call, cause: rejection, ...wireFields(exchange) };
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
    // The client loses the status with the body; the wire may still know it. Either way the
    // request reached something that answered.
    const status = exchange?.status;
    return new OvhRequestError({
      ...base,
      reason: 'non-json-body',
      phase: 'after-send',
      ovhError: value,
      ...(status !== undefined ? { status } : {}),
    });
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
