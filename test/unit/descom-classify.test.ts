import { describe, expect, it } from 'vitest';
import {
  AccountError,
  AmbiguousError,
  PermanentError,
  RateLimitedError,
  TransientError,
} from '../../src/errors.js';
import {
  classifyDescomNetworkError,
  classifyDescomStatus,
  parseRetryAfterMs,
} from '../../src/providers/descom/classify.js';

function errorWithCode(code: string, message = 'boom'): Error {
  return Object.assign(new Error(message), { code });
}

describe('classifyDescomStatus', () => {
  it.each([200, 201, 204, 299])('treats %i as success (undefined)', (status) => {
    expect(classifyDescomStatus(status)).toBeUndefined();
  });

  it.each([
    [401, AccountError, 'SMSQ_DESCOM_UNAUTHORIZED'],
    [402, AccountError, 'SMSQ_DESCOM_NO_CREDIT'],
    [422, PermanentError, 'SMSQ_DESCOM_INVALID'],
    [429, RateLimitedError, 'SMSQ_PROVIDER_RATE_LIMITED'],
    [503, TransientError, 'SMSQ_DESCOM_UNAVAILABLE'],
    [408, AmbiguousError, 'SMSQ_DESCOM_SERVER_ERROR'],
    [500, AmbiguousError, 'SMSQ_DESCOM_SERVER_ERROR'],
    [502, AmbiguousError, 'SMSQ_DESCOM_SERVER_ERROR'],
    [504, AmbiguousError, 'SMSQ_DESCOM_SERVER_ERROR'],
    [599, AmbiguousError, 'SMSQ_DESCOM_SERVER_ERROR'],
    [400, PermanentError, 'SMSQ_DESCOM_REJECTED'],
    [403, PermanentError, 'SMSQ_DESCOM_REJECTED'],
    [404, PermanentError, 'SMSQ_DESCOM_REJECTED'],
    [413, PermanentError, 'SMSQ_DESCOM_REJECTED'],
    [301, AccountError, 'SMSQ_DESCOM_UNEXPECTED_STATUS'],
  ])('maps %i to %o with code %s', (status, cls, code) => {
    const error = classifyDescomStatus(status);
    expect(error).toBeInstanceOf(cls);
    expect(error?.code).toBe(code);
  });

  it('honours Retry-After on a 429', () => {
    const error = classifyDescomStatus(429, '2');
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(2_000);
  });
});

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2025-03-01T10:00:00Z');

  it.each([
    ['delta-seconds', '2', 2_000],
    ['zero seconds, clamped up to 100 ms', '0', 100],
    ['a huge delay, clamped down to 10 min', '86400', 600_000],
    ['padding around the value', ' 5 ', 5_000],
    ['an IMF-fixdate 30 s ahead', 'Sat, 01 Mar 2025 10:00:30 GMT', 30_000],
    ['an RFC 850 date 3 s ahead', 'Saturday, 01-Mar-25 10:00:03 GMT', 3_000],
    ['an HTTP-date in the past, clamped up to 100 ms', 'Sat, 01 Mar 2025 09:00:00 GMT', 100],
    ['no header: the 1 s default', undefined, 1_000],
    ['an empty header: the default', '', 1_000],
    ['garbage: the default', 'soon', 1_000],
    ['a decimal (not delta-seconds): the default', '1.5', 1_000],
    ['a negative number: the default', '-3', 1_000],
    ['a day name that is not a date: the default', 'Monday maybe', 1_000],
  ])('reads %s', (_label, header, expected) => {
    expect(parseRetryAfterMs(header, now)).toBe(expected);
  });
});

describe('classifyDescomNetworkError', () => {
  it.each([
    ['ECONNREFUSED', TransientError],
    ['ENOTFOUND', TransientError],
    ['EAI_AGAIN', TransientError],
    ['UND_ERR_CONNECT_TIMEOUT', TransientError],
    ['EHOSTUNREACH', TransientError],
    ['ENETUNREACH', TransientError],
    ['UND_ERR_CLOSED', TransientError],
    ['CERT_HAS_EXPIRED', TransientError],
    ['UND_ERR_HEADERS_TIMEOUT', AmbiguousError],
    ['UND_ERR_BODY_TIMEOUT', AmbiguousError],
    ['UND_ERR_SOCKET', AmbiguousError],
    ['ECONNRESET', AmbiguousError],
    ['EPIPE', AmbiguousError],
    ['ETIMEDOUT', AmbiguousError],
    ['UND_ERR_ABORTED', AmbiguousError],
    ['SOMETHING_NEW', AmbiguousError],
  ])('classifies err.code %s as %o', (code, cls) => {
    const cause = errorWithCode(code);
    const error = classifyDescomNetworkError(cause);
    expect(error).toBeInstanceOf(cls);
    expect(error.cause).toBe(cause);
  });

  it.each([
    ['TimeoutError', 'SMSQ_DESCOM_TIMEOUT'],
    ['AbortError', 'SMSQ_DESCOM_ABORTED'],
  ])('classifies an AbortSignal reason named %s as ambiguous (%s)', (name, code) => {
    const cause = new DOMException('stopped', name);
    const error = classifyDescomNetworkError(cause);
    expect(error).toBeInstanceOf(AmbiguousError);
    expect(error.code).toBe(code);
    expect(error.cause).toBe(cause);
  });

  it('classifies a real AbortSignal.timeout() reason as ambiguous', () => {
    const signal = AbortSignal.abort(new DOMException('deadline', 'TimeoutError'));
    expect(classifyDescomNetworkError(signal.reason)).toBeInstanceOf(AmbiguousError);
  });

  it('ignores the message text: "connection refused" without a code is ambiguous', () => {
    expect(classifyDescomNetworkError(new Error('connect ECONNREFUSED 127.0.0.1:1'))).toBeInstanceOf(
      AmbiguousError,
    );
  });

  it('treats a happy-eyeballs AggregateError whose attempts were all refused as transient', () => {
    const err = new AggregateError(
      [errorWithCode('ECONNREFUSED'), errorWithCode('ENETUNREACH')],
      'all failed',
    );
    expect(classifyDescomNetworkError(err)).toBeInstanceOf(TransientError);
  });

  it('treats an AggregateError with one ambiguous attempt as ambiguous', () => {
    const err = new AggregateError([errorWithCode('ECONNREFUSED'), errorWithCode('ECONNRESET')], 'mixed');
    expect(classifyDescomNetworkError(err)).toBeInstanceOf(AmbiguousError);
  });

  it.each([['a string'], [undefined], [{ code: 42 }]])(
    'treats a non-error thrown value (%o) as ambiguous',
    (value) => {
      const error = classifyDescomNetworkError(value);
      expect(error).toBeInstanceOf(AmbiguousError);
      expect(error.cause).toBe(value);
    },
  );
});
