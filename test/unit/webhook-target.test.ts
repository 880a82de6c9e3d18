import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import {
  createWebhookTargetResolver,
  webhookTargetProblem,
  type AddressLookup,
} from '../../src/webhooks/target.js';
import {
  shouldRetryWebhook,
  WEBHOOK_RETRY_CAP_MS,
  webhookRetryBaseMs,
  webhookRetryDelayMs,
} from '../../src/webhooks/retry-policy.js';

/** A resolver with fixed answers: no network in unit tests. */
const dns: Record<string, string[]> = {
  'hooks.example.com': ['93.184.216.34'],
  'dual.example.com': ['93.184.216.34', '::1'],
  'internal.example.com': ['10.0.0.7'],
  'v6only.example.com': ['2606:2800:220:1:248:1893:25c8:1946'],
};
const lookup: AddressLookup = (host) => {
  const found = dns[host];
  if (!found)
    return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
  return Promise.resolve(found);
};

describe('webhookTargetProblem', () => {
  it.each([
    ['https://hooks.example.com/sms'],
    ['http://hooks.example.com:8080/sms?token=x'],
    ['https://v6only.example.com/'],
    ['https://93.184.216.34/'],
  ])('accepts %s', async (url) => {
    expect(await webhookTargetProblem(url, { allowPrivate: false, lookup })).toBeUndefined();
  });

  it.each([
    ['ftp://hooks.example.com/x', /http or https/],
    ['file:///etc/passwd', /http or https/],
    ['http://127.0.0.1:3000/x', /loopback, private or link-local/],
    ['http://10.1.2.3/', /10\.1\.2\.3/],
    ['http://169.254.169.254/latest/meta-data', /169\.254\.169\.254/],
    ['http://[::1]:8080/', /::1/],
    ['http://[::ffff:127.0.0.1]/', /loopback/],
    ['http://internal.example.com/', /10\.0\.0\.7/],
    // One blocked address among several is enough: the connection may pick any of them.
    ['http://dual.example.com/', /::1/],
    ['http://nowhere.example.com/', /does not resolve/],
  ])('refuses %s', async (url, reason) => {
    expect(await webhookTargetProblem(url, { allowPrivate: false, lookup })).toMatch(reason);
  });

  it('with private targets allowed, checks only the scheme', async () => {
    expect(
      await webhookTargetProblem('http://127.0.0.1:9/x', { allowPrivate: true, lookup }),
    ).toBeUndefined();
    expect(await webhookTargetProblem('ftp://127.0.0.1/', { allowPrivate: true, lookup })).toMatch(/http/);
  });
});

describe('createWebhookTargetResolver', () => {
  it('stores the callbackUrl, else the default URL', async () => {
    const resolve = createWebhookTargetResolver({
      defaultUrl: 'https://default.example.com/h',
      signing: true,
      allowPrivate: false,
      lookup,
    });
    expect(await resolve('https://hooks.example.com/a')).toBe('https://hooks.example.com/a');
    expect(await resolve(undefined)).toBe('https://default.example.com/h');
  });

  it('refuses a callbackUrl with an issue on callbackUrl when no secret signs webhooks', async () => {
    const resolve = createWebhookTargetResolver({
      defaultUrl: 'https://d.example.com',
      signing: false,
      allowPrivate: false,
      lookup,
    });
    const err = await resolve('https://hooks.example.com/a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).issues).toEqual([
      { path: 'callbackUrl', message: expect.stringMatching(/SMSQ_WEBHOOK_SECRET/) },
    ]);
    expect(await resolve(undefined)).toBeUndefined();
  });

  it('refuses a private callbackUrl with an issue on callbackUrl', async () => {
    const resolve = createWebhookTargetResolver({ signing: true, allowPrivate: false, lookup });
    const err = (await resolve('http://10.0.0.1/').catch((e: unknown) => e)) as InputError;
    expect(err.issues[0]?.path).toBe('callbackUrl');
  });
});

describe('webhook retry policy', () => {
  it('doubles from the first delay and caps at an hour', () => {
    expect([1, 2, 3, 4].map((n) => webhookRetryBaseMs(n, 5_000))).toEqual([5_000, 10_000, 20_000, 40_000]);
    expect(webhookRetryBaseMs(11, 5_000)).toBe(WEBHOOK_RETRY_CAP_MS);
    expect(webhookRetryBaseMs(500, 5_000)).toBe(WEBHOOK_RETRY_CAP_MS);
  });

  it('jitters within ±20 % and never above the cap', () => {
    expect(webhookRetryDelayMs(1, 5_000, () => 0)).toBe(4_000);
    expect(webhookRetryDelayMs(1, 5_000, () => 1)).toBe(6_000);
    expect(webhookRetryDelayMs(20, 5_000, () => 1)).toBe(WEBHOOK_RETRY_CAP_MS);
  });

  it('retries until the next attempt would fall past 24 h, which is about 33 attempts at the defaults', () => {
    let elapsed = 0;
    let attempt = 1;
    while (shouldRetryWebhook(attempt, elapsed, 5_000)) {
      elapsed += webhookRetryBaseMs(attempt, 5_000);
      attempt += 1;
    }
    expect(elapsed).toBeLessThanOrEqual(24 * 3_600_000);
    expect(elapsed).toBeGreaterThan(22 * 3_600_000);
    expect(attempt).toBeGreaterThan(25);
    expect(attempt).toBeLessThan(40);
  });
});
