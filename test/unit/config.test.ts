import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

describe('loadConfig', () => {
  it('defaults to the simulator when no provider credentials are set', () => {
    const config = loadConfig({});
    expect(config.defaultProvider).toBe('simulator');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.redisUrlExplicit).toBe(false);
    expect(config.prefix).toBe('smsq');
  });

  it('picks the configured provider when credentials are set', () => {
    expect(loadConfig({ DESCOM_USER: 'u', DESCOM_PASS: 'p' }).defaultProvider).toBe('descom');
    expect(loadConfig({ OVH_APP_KEY: 'a', OVH_APP_SECRET: 's', OVH_CONSUMER_KEY: 'c' }).defaultProvider).toBe(
      'ovh',
    );
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ REDIS_URL: 'not a url' }, 'REDIS_URL'],
    [{ SMSQ_PROVIDER: 'twilio' }, 'SMSQ_PROVIDER'],
    [{ SMSQ_PROVIDER: 'descom' }, 'SMSQ_PROVIDER'],
    [{ DESCOM_USER: 'u' }, 'DESCOM_PASS'],
    [{ OVH_APP_KEY: 'a' }, 'OVH_APP_SECRET'],
    [
      { OVH_APP_KEY: 'a', OVH_APP_SECRET: 's', OVH_CONSUMER_KEY: 'c', OVH_ENDPOINT: 'http://x' },
      'OVH_ENDPOINT',
    ],
    [{ SMSQ_DEFAULT_COUNTRY: 'spain' }, 'SMSQ_DEFAULT_COUNTRY'],
    [{ SIMULATOR_FAILURE_RATE: '2' }, 'SIMULATOR_FAILURE_RATE'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ])('refuses %j with a message naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud' })).toThrow(
      /PORT[\s\S]*LOG_LEVEL|LOG_LEVEL[\s\S]*PORT/,
    );
  });
});
