import { describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { classifyDescomNetworkError } from '../../src/providers/descom/classify.js';
import { decideOvhSend } from '../../src/providers/ovh/classify.js';
import { toOvhRequestError } from '../../src/providers/ovh/errors.js';
import {
  NEVER_LEFT_CODES,
  neverLeft,
  parseRetryAfterMs,
  withDeadline,
} from '../../src/providers/transport.js';

const errorWithCode = (code: string) => Object.assign(new Error('boom'), { code });

describe('the never-left list', () => {
  it('counts DNS failures, EAI_FAIL included, as never sent', () => {
    for (const code of ['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL']) expect(neverLeft(code)).toBe(true);
  });

  it.each(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', undefined])(
    'never counts %s (may have been sent) as never sent',
    (code) => {
      expect(neverLeft(code)).toBe(false);
    },
  );

  it.each([...NEVER_LEFT_CODES])('makes both classifiers retry %s without ambiguity', (code) => {
    expect(classifyDescomNetworkError(errorWithCode(code))).toBeInstanceOf(TransientError);
    const ovhErr = toOvhRequestError({ error: errorWithCode(code) }, { method: 'POST', path: '/sms/x/jobs' });
    expect(decideOvhSend(ovhErr).kind).toBe('transient');
  });
});

describe('parseRetryAfterMs (shared)', () => {
  const now = Date.parse('2025-03-01T10:00:00Z');

  it.each([
    ['delta-seconds', '3', 3_000],
    ['an HTTP-date 20 s ahead', 'Sat, 01 Mar 2025 10:00:20 GMT', 20_000],
    ['the first of repeated headers', ['4', '9'], 4_000],
    ['no header: the caller default', undefined, 2_000],
    ['garbage: the caller default', 'later', 2_000],
    ['zero, clamped to 100 ms', '0', 100],
  ] as const)('reads %s', (_label, header, expected) => {
    expect(parseRetryAfterMs(header, 2_000, now)).toBe(expected);
  });
});

describe('withDeadline (the shared total deadline)', () => {
  it('aborts at the deadline with a TimeoutError', async () => {
    const { signal } = withDeadline(new AbortController().signal, 20);
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    expect((signal.reason as DOMException).name).toBe('TimeoutError');
  });

  it('aborts with the caller, keeping its reason', () => {
    const caller = new AbortController();
    const { signal } = withDeadline(caller.signal, 60_000);
    caller.abort(new Error('cancelled'));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('cancelled');
  });

  it('never fires once cleared', async () => {
    const deadline = withDeadline(new AbortController().signal, 10);
    deadline.clear();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(deadline.signal.aborted).toBe(false);
  });
});
