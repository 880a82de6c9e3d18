import { describe, expect, it } from 'vitest';
import { ledgerCsvLine } from '../../src/cli/commands/ledger.js';
import { loadConfig } from '../../src/config.js';
import {
  AccountError,
  IdempotencyConflictError,
  InputError,
  NotFoundError,
  TooLargeError,
} from '../../src/errors.js';
import { loggablePath } from '../../src/http/app.js';
import { matchSecret } from '../../src/http/auth.js';
import { dashboardAccess } from '../../src/http/dashboard.js';
import { httpErrorOf } from '../../src/http/error-handler.js';
import {
  compareStreamIds,
  countLedgerEntry,
  createSmsqMetrics,
  mergePrometheusTexts,
} from '../../src/http/metrics.js';
import { createTimedProvider } from '../../src/providers/timed-provider.js';
import type { SmsProvider } from '../../src/providers/types.js';
import type { LedgerEntry } from '../../src/queue/ledger.js';
import { RedisUnavailableError } from '../../src/redis.js';

describe('HTTP error mapping', () => {
  it.each([
    [
      new InputError('Invalid send request', [{ path: 'to.1', message: 'not a phone number' }]),
      400,
      'SMSQ_INVALID_INPUT',
    ],
    [new TooLargeError('too many'), 413, 'SMSQ_TOO_LARGE'],
    [new IdempotencyConflictError('k'), 409, 'SMSQ_IDEMPOTENCY_CONFLICT'],
    [new NotFoundError('nope'), 404, 'SMSQ_NOT_FOUND'],
    [new RedisUnavailableError(), 503, 'SMSQ_REDIS_UNAVAILABLE'],
    [
      Object.assign(new Error('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }),
      413,
      'SMSQ_TOO_LARGE',
    ],
    [
      Object.assign(new Error('Unexpected token "+34600…"'), {
        code: 'FST_ERR_CTP_INVALID_JSON_BODY',
        statusCode: 400,
      }),
      400,
      'SMSQ_BAD_JSON',
    ],
    [new AccountError('no credit'), 500, 'SMSQ_INTERNAL'],
    [new Error('boom'), 500, 'SMSQ_INTERNAL'],
  ])('%s → %i %s', (err, status, code) => {
    const mapped = httpErrorOf(err);
    expect(mapped.status).toBe(status);
    expect(mapped.body.error).toBe(code);
  });

  it('lists every issue of an input error and never echoes a JSON parse message', () => {
    expect(httpErrorOf(new InputError('Invalid', [{ path: 'to.0', message: 'bad' }])).body.issues).toEqual([
      { path: 'to.0', message: 'bad' },
    ]);
    const parse = Object.assign(new Error('Unexpected token in "{"to":"+34600000001"'), {
      code: 'FST_ERR_CTP_INVALID_JSON_BODY',
    });
    expect(JSON.stringify(httpErrorOf(parse).body)).not.toContain('34600000001');
    expect(httpErrorOf(new TooLargeError('x')).body.message).toBe('x');
    expect(
      httpErrorOf(Object.assign(new Error(), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' })).body.message,
    ).toContain('smsq import');
  });
});

describe('loggable request paths', () => {
  it('logs the route pattern, never the number in the URL', () => {
    expect(
      loggablePath({
        url: '/v1/suppressions/+34600000001',
        routeOptions: { url: '/v1/suppressions/:number' },
      }),
    ).toBe('/v1/suppressions/:number');
  });
  it('redacts number-like segments and the query of unmatched URLs', () => {
    expect(loggablePath({ url: '/v2/numbers/%2B34600000001?to=+34600000002' })).toBe(
      '/v2/numbers/[redacted]',
    );
    expect(loggablePath({ url: '/x/600000001/y' })).toBe('/x/[redacted]/y');
    expect(loggablePath({ url: '/nothing/here' })).toBe('/nothing/here');
  });
});

describe('secret comparison', () => {
  it('finds the matching key, whatever the lengths', () => {
    expect(matchSecret('k2', ['k1', 'k2'])).toBe(1);
    expect(matchSecret('k', ['k1', 'k2'])).toBe(-1);
    expect(matchSecret('a-much-longer-presented-key', ['k1'])).toBe(-1);
    expect(matchSecret('', [])).toBe(-1);
  });
});

describe('dashboard access', () => {
  const base = { REDIS_URL: 'redis://127.0.0.1:6379' };
  it('requires credentials in production and is off without them', () => {
    expect(dashboardAccess(loadConfig({ ...base, NODE_ENV: 'production' })).enabled).toBe(false);
    const on = dashboardAccess(
      loadConfig({ ...base, NODE_ENV: 'production', SMSQ_DASHBOARD_USER: 'u', SMSQ_DASHBOARD_PASSWORD: 'p' }),
    );
    expect(on).toEqual({ enabled: true, credentials: { user: 'u', password: 'p' } });
  });
  it('in development without credentials, opens only on loopback, with a warning', () => {
    const local = dashboardAccess(loadConfig({ ...base, HOST: '127.0.0.1' }));
    expect(local.enabled && !local.credentials && local.warning).toContain('WITHOUT a password');
    expect(dashboardAccess(loadConfig({ ...base, HOST: '0.0.0.0' })).enabled).toBe(false);
  });
});

describe('metrics', () => {
  it('merges BullMQ queue exports into one HELP/TYPE per metric', () => {
    const queue = (name: string) =>
      [
        '# HELP bullmq_job_count Number of jobs in the queue by state',
        '# TYPE bullmq_job_count gauge',
        `bullmq_job_count{queue="${name}", state="waiting"} 1`,
        '# HELP bullmq_job_completed_total Total number of completed jobs',
        '# TYPE bullmq_job_completed_total counter',
        `bullmq_job_completed_total{queue="${name}"} 2`,
      ].join('\n');
    const merged = mergePrometheusTexts([queue('send'), queue('batch-simulator')]);
    expect(merged.match(/# TYPE bullmq_job_count gauge/g)).toHaveLength(1);
    expect(merged.split('\n').slice(0, 4)).toEqual([
      '# HELP bullmq_job_count Number of jobs in the queue by state',
      '# TYPE bullmq_job_count gauge',
      'bullmq_job_count{queue="send", state="waiting"} 1',
      'bullmq_job_count{queue="batch-simulator", state="waiting"} 1',
    ]);
  });

  it('counts ledger entries by outcome and credits', async () => {
    const metrics = createSmsqMetrics({ defaultMetrics: false });
    const entry = (over: Partial<LedgerEntry>): LedgerEntry => ({
      entryId: '1-0',
      at: '',
      requestId: 'r',
      batchId: 'b',
      provider: 'ovh',
      state: 'sent',
      recipients: 10,
      accepted: 9,
      invalid: 1,
      segments: 10,
      creditsEstimated: 10,
      creditsCharged: 9,
      creditsChargedIsEstimate: false,
      providerIds: [],
      ...over,
    });
    countLedgerEntry(metrics, entry({}));
    countLedgerEntry(
      metrics,
      entry({ state: 'rejected', recipients: 5, accepted: 0, invalid: 0, creditsCharged: 0 }),
    );
    countLedgerEntry(
      metrics,
      entry({ state: 'unknown', recipients: 3, accepted: 0, invalid: 0, creditsCharged: 3 }),
    );
    const text = await metrics.registry.metrics();
    expect(text).toContain('smsq_recipients_total{provider="ovh",outcome="accepted"} 9');
    expect(text).toContain('smsq_recipients_total{provider="ovh",outcome="invalid"} 1');
    expect(text).toContain('smsq_recipients_total{provider="ovh",outcome="rejected"} 5');
    expect(text).toContain('smsq_recipients_total{provider="ovh",outcome="unknown"} 3');
    expect(text).toContain('smsq_credits_charged_total{provider="ovh"} 12');
  });

  it('orders stream ids numerically', () => {
    expect(compareStreamIds('1700000000000-2', '1700000000000-10')).toBeLessThan(0);
    expect(compareStreamIds('1700000000001-0', '1700000000000-99')).toBeGreaterThan(0);
    expect(compareStreamIds('5-5', '5-5')).toBe(0);
  });

  it('times each send by outcome and passes errors through unchanged', async () => {
    const observed: { provider: string; outcome: string; seconds: number }[] = [];
    const failure = new AccountError('no credit');
    let fail = false;
    const provider: SmsProvider = {
      id: 'simulator',
      limits: { maxMessagesPerRequest: 1, maxRecipientsPerMessage: 1 },
      send: () =>
        fail
          ? Promise.reject(failure)
          : Promise.resolve({ providerIds: [], accepted: [], invalid: [], creditsCharged: 0 }),
      probe: () => Promise.resolve(true),
      close: () => Promise.resolve(),
    };
    const timed = createTimedProvider(provider, (o) => observed.push(o));
    const batch = {
      id: 'b',
      requestId: 'r',
      provider: 'simulator' as const,
      tag: 't',
      messages: [],
      estimatedCredits: 0,
    };
    await timed.send(batch, { signal: new AbortController().signal });
    fail = true;
    await expect(timed.send(batch, { signal: new AbortController().signal })).rejects.toBe(failure);
    expect(observed.map((o) => o.outcome)).toEqual(['ok', 'account']);
    expect(observed.every((o) => o.provider === 'simulator' && o.seconds >= 0)).toBe(true);
    expect('lookup' in timed).toBe(false);
  });
});

describe('ledger CSV', () => {
  it('quotes what needs quoting and neutralises formulas', () => {
    const line = ledgerCsvLine({
      entryId: '1-0',
      at: '2025-01-01T00:00:00.000Z',
      requestId: 'r,1',
      batchId: '=cmd',
      provider: 'descom',
      state: 'sent',
      recipients: 2,
      accepted: 2,
      invalid: 0,
      segments: 2,
      creditsEstimated: 2,
      creditsCharged: 2,
      creditsChargedIsEstimate: false,
      providerIds: ['a', 'b'],
    });
    expect(line).toBe('1-0,2025-01-01T00:00:00.000Z,"r,1",\'=cmd,descom,sent,2,2,0,2,2,2,false,a b,,');
  });
});
