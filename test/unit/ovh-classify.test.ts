import { describe, expect, it } from 'vitest';
import {
  AccountError,
  AmbiguousError,
  PermanentError,
  RateLimitedError,
  TransientError,
} from '../../src/errors.js';
import type { DecisionKind } from '../../src/providers/decisions.js';
import {
  decideOvhRead,
  decideOvhSend,
  OVH_RATE_LIMIT_DEFAULT_MS,
  ovhDecision,
  ovhError,
} from '../../src/providers/ovh/classify.js';
import { parseOvhEndpoint } from '../../src/providers/ovh/client.js';
import { OvhRequestError, toOvhRequestError } from '../../src/providers/ovh/errors.js';

const call = { method: 'POST', path: '/sms/sms-x-1/jobs' } as const;
const errWithCode = (message: string, code: string, errno?: number) =>
  Object.assign(new Error(message), { code, errno });
const ourError = (reason: 'deadline' | 'aborted', phase: 'before-send' | 'after-send') =>
  new OvhRequestError({ reason, phase, ovhError: reason, ...call });

/**
 * [what the `ovh` client rejected with, kind for a send, kind for a GET]. `credit check`: a send's
 * 400 is decided by the account's credit (see the provider tests), not by the status alone.
 */
const CASES: [name: string, rejection: unknown, send: DecisionKind | 'credit check', read: DecisionKind][] = [
  [
    'HTTP 400 (business or signature)',
    { error: 400, message: 'Invalid signature' },
    'credit check',
    'account',
  ],
  ['HTTP 401', { error: 401, message: 'Unauthorized' }, 'account', 'account'],
  [
    'HTTP 403 INVALID_CREDENTIAL',
    { error: 403, message: 'This credential is not valid' },
    'account',
    'account',
  ],
  [
    'HTTP 404 unknown service',
    { error: 404, message: 'This service does not exist' },
    'permanent',
    'permanent',
  ],
  ['HTTP 409', { error: 409, message: 'Conflict' }, 'permanent', 'permanent'],
  ['HTTP 422 (other 4xx)', { error: 422, message: 'Unprocessable' }, 'permanent', 'permanent'],
  ['HTTP 460 (other 4xx)', { error: 460, message: null }, 'permanent', 'permanent'],
  ['HTTP 408 from the front', { error: 408, message: null }, 'ambiguous', 'transient'],
  ['HTTP 429', { error: 429, message: 'Too many requests' }, 'rate-limited', 'rate-limited'],
  ['HTTP 500', { error: 500, message: 'Internal server error' }, 'ambiguous', 'transient'],
  ['HTTP 503', { error: 503, message: null }, 'ambiguous', 'transient'],
  // OVH answered success: the job exists, only the report is lost (a GET is read again).
  ['HTTP 204 (ovh@2 rejects it, body lost)', { error: 204, message: null }, 'sent', 'transient'],
  // Without the wire's status, a body we cannot parse may be a proxy's page: OVH may have acted.
  [
    'non-JSON body, status unknown',
    { error: '[OVH] Unable to parse JSON reponse' },
    'ambiguous',
    'transient',
  ],
  ['time sync failed', { error: '[OVH] Unable to fetch OVH API time' }, 'transient', 'transient'],
  ['errno -111 ECONNREFUSED', { error: -111 }, 'transient', 'transient'],
  ['errno -3008 ENOTFOUND', { error: -3008 }, 'transient', 'transient'],
  ['errno -3001 EAI_AGAIN', { error: -3001 }, 'transient', 'transient'],
  ['errno -113 EHOSTUNREACH', { error: -113 }, 'transient', 'transient'],
  ['errno -104 ECONNRESET', { error: -104 }, 'ambiguous', 'transient'],
  ['errno -32 EPIPE', { error: -32 }, 'ambiguous', 'transient'],
  ['errno -110 ETIMEDOUT', { error: -110 }, 'ambiguous', 'transient'],
  [
    'Error socket hang up (ECONNRESET)',
    { error: errWithCode('socket hang up', 'ECONNRESET') },
    'ambiguous',
    'transient',
  ],
  [
    'Error ENOTFOUND',
    { error: errWithCode('getaddrinfo ENOTFOUND x', 'ENOTFOUND', -3008) },
    'transient',
    'transient',
  ],
  [
    'Error self-signed certificate',
    { error: errWithCode('self-signed', 'DEPTH_ZERO_SELF_SIGNED_CERT') },
    'transient',
    'transient',
  ],
  ['unknown string', { error: 'something else' }, 'ambiguous', 'transient'],
  ['not even an object', 'boom', 'ambiguous', 'transient'],
  ['our deadline before the request left', ourError('deadline', 'before-send'), 'transient', 'transient'],
  ['our deadline after the request left', ourError('deadline', 'after-send'), 'ambiguous', 'transient'],
  ['caller abort after the request left', ourError('aborted', 'after-send'), 'ambiguous', 'transient'],
];

describe('decideOvhSend', () => {
  it.each(CASES.filter(([, , send]) => send !== 'credit check'))('%s → %s', (_name, rejection, send) => {
    expect(decideOvhSend(toOvhRequestError(rejection, call)).kind).toBe(send);
  });
});

describe('decideOvhRead', () => {
  it.each(CASES)('%s → %s for a GET', (_name, rejection, _send, read) => {
    expect(decideOvhRead(toOvhRequestError(rejection, { method: 'GET', path: '/sms' })).kind).toBe(read);
  });
});

describe('toOvhRequestError', () => {
  it.each([
    [
      { error: 404, message: 'This service does not exist' },
      { status: 404, reason: 'http-status', phase: 'after-send', ovhError: '404' },
    ],
    [{ error: '[OVH] Unable to parse JSON reponse' }, { reason: 'non-json-body', phase: 'after-send' }],
    [{ error: '[OVH] Unable to fetch OVH API time' }, { reason: 'time-sync', phase: 'before-send' }],
    [{ error: -111 }, { errno: 'ECONNREFUSED', reason: 'network', phase: 'before-send', ovhError: '-111' }],
    [{ error: -3008 }, { errno: 'ENOTFOUND', reason: 'network', phase: 'before-send' }],
    [
      { error: errWithCode('socket hang up', 'ECONNRESET') },
      { errno: 'ECONNRESET', reason: 'network', phase: 'after-send', ovhError: 'socket hang up' },
    ],
  ])('normalises %j', (rejection, expected) => {
    const err = toOvhRequestError(rejection, call);
    expect(err).toBeInstanceOf(OvhRequestError);
    expect(err).toMatchObject({ code: 'SMSQ_OVH_REQUEST', ...expected });
    expect(err.cause).toBe(rejection);
  });

  it('takes the status of an unparseable body from the wire: a 200 is accepted, an HTML 502 stays ambiguous', () => {
    const parseFailed = { error: '[OVH] Unable to parse JSON reponse' };
    const ok = toOvhRequestError(parseFailed, call, { status: 200, headers: {}, body: '{"ids":[1' });
    expect(ok).toMatchObject({ status: 200, reason: 'non-json-body' });
    expect(decideOvhSend(ok).kind).toBe('sent');
    const html = toOvhRequestError(parseFailed, call, { status: 502, headers: {}, body: '<html>' });
    expect(decideOvhSend(html).kind).toBe('ambiguous');
  });

  it('reads errorCode from the raw body and Retry-After from the headers', () => {
    const err = toOvhRequestError({ error: 429, message: 'slow down' }, call, {
      status: 429,
      headers: { 'retry-after': '7' },
      body: '{"errorCode":"QUERY_LIMIT","message":"slow down"}',
    });
    expect(err).toMatchObject({ errorCode: 'QUERY_LIMIT', retryAfter: '7' });
    expect(ovhError(decideOvhSend(err), err)).toMatchObject({ retryAfterMs: 7_000 });
  });

  it('turns a 403 NOT_GRANTED_CALL into an account error that fails after repeats', () => {
    const err = toOvhRequestError({ error: 403, message: 'This call has not been granted' }, call, {
      status: 403,
      headers: {},
      body: '{"errorCode":"NOT_GRANTED_CALL","httpCode":"403 Forbidden","message":"This call has not been granted"}',
    });
    const delivery = ovhError(decideOvhSend(err), err);
    expect(delivery).toBeInstanceOf(AccountError);
    expect(delivery).toMatchObject({ code: 'SMSQ_OVH_NOT_GRANTED', failAfterRepeats: 3 });
  });

  it('masks number-like runs in OVH messages', () => {
    const err = toOvhRequestError({ error: 400, message: 'Receiver +34 600 000 001 is blocked' }, call);
    expect(err.ovhMessage).toBe('Receiver [number] is blocked');
    expect(err.message).not.toContain('600');
  });
});

describe('ovhError', () => {
  const source = toOvhRequestError({ error: 500, message: 'x' }, call);
  it.each([
    ['never-left', TransientError, 'SMSQ_OVH_UNREACHABLE'],
    ['HTTP 429', RateLimitedError, 'SMSQ_PROVIDER_RATE_LIMITED'],
    ['HTTP 404', PermanentError, 'SMSQ_OVH_NOT_FOUND'],
    ['HTTP 5xx', AmbiguousError, 'SMSQ_OVH_SERVER_ERROR'],
    ['HTTP 401', AccountError, 'SMSQ_OVH_UNAUTHORIZED'],
  ] as const)('%s → %o with code %s, keeping the OVH error as cause', (when, Class, code) => {
    const err = ovhError(ovhDecision(when), source);
    expect(err).toBeInstanceOf(Class);
    expect(err.code).toBe(code);
    expect(err.cause).toBe(source);
  });

  it('waits the default delay on 429 (the client drops Retry-After)', () => {
    const err = ovhError(ovhDecision('HTTP 429'), source) as RateLimitedError;
    expect(err.retryAfterMs).toBe(OVH_RATE_LIMIT_DEFAULT_MS);
  });
});

describe('parseOvhEndpoint', () => {
  it.each([
    ['ovh-eu', { endpoint: 'ovh-eu' }],
    ['ovh-ca', { endpoint: 'ovh-ca' }],
    ['ovh-us', { endpoint: 'ovh-us' }],
    ['https://127.0.0.1:8443/1.0', { host: '127.0.0.1', port: 8443, basePath: '/1.0' }],
    ['https://api.example.test/v1.0/', { host: 'api.example.test', port: 443, basePath: '/v1.0' }],
    ['https://api.example.test', { host: 'api.example.test', port: 443, basePath: '/1.0' }],
  ])('%s → %j (never endpoint and host together)', (input, expected) => {
    expect(parseOvhEndpoint(input)).toStrictEqual(expected);
  });

  it.each(['http://127.0.0.1:8080/1.0', 'kimsufi-eu', 'https://h/1.0?x=1'])('refuses %s', (input) => {
    expect(() => parseOvhEndpoint(input)).toThrow(/OVH_ENDPOINT/);
  });
});
