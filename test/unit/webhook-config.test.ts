import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

describe('webhook configuration', () => {
  it('defaults: no target, no secret, private targets refused, 2 s window, 5 s first retry, 10 s deadline', () => {
    expect(loadConfig({}).webhooks).toEqual({
      allowPrivate: false,
      coalesceMs: 2_000,
      retryMs: 5_000,
      timeoutMs: 10_000,
      concurrency: 16,
    });
  });

  it('in production, SMSQ_WEBHOOK_URL without SMSQ_WEBHOOK_SECRET stops start-up, naming the secret', () => {
    expect(() =>
      loadConfig({ NODE_ENV: 'production', SMSQ_WEBHOOK_URL: 'https://hooks.example.com/sms' }),
    ).toThrow(/SMSQ_WEBHOOK_SECRET: required in production/);
    expect(
      loadConfig({
        NODE_ENV: 'production',
        SMSQ_WEBHOOK_URL: 'https://hooks.example.com/sms',
        SMSQ_WEBHOOK_SECRET: SECRET,
      }).webhooks,
    ).toMatchObject({ url: 'https://hooks.example.com/sms', secret: SECRET });
  });

  it.each([
    ['SMSQ_WEBHOOK_SECRET', 'not-a-secret'],
    ['SMSQ_WEBHOOK_URL', 'ftp://hooks.example.com/'],
    ['SMSQ_WEBHOOK_URL', 'nope'],
    ['SMSQ_WEBHOOK_ALLOW_PRIVATE', 'yes'],
    ['SMSQ_WEBHOOK_COALESCE_MS', '-1'],
  ])('a bad %s (%s) is a config error naming it', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(key));
  });
});
