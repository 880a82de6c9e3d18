import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { groupByRoute, parseRoutes, routeOf } from '../../src/message/routes.js';

const both = {
  DESCOM_USER: 'u',
  DESCOM_PASS: 'p',
  OVH_APP_KEY: 'k',
  OVH_APP_SECRET: 's',
  OVH_CONSUMER_KEY: 'c',
  SMSQ_PROVIDER: 'descom',
};

function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('loadConfig accepted the configuration');
}

describe('SMSQ_ROUTES at config load', () => {
  it('parses ordered rules, inline or from @file.json', () => {
    const rules = [
      { match: { prefix: '+33' }, providers: ['ovh', 'descom'] },
      { match: { country: 'ES' }, providers: ['descom', 'ovh'] },
      { match: {}, providers: ['descom'] },
    ];
    expect(loadConfig({ ...both, SMSQ_ROUTES: JSON.stringify(rules) }).routes).toEqual(rules);
    const file = join(mkdtempSync(join(tmpdir(), 'smsq-routes-')), 'routes.json');
    writeFileSync(file, JSON.stringify(rules));
    expect(loadConfig({ ...both, SMSQ_ROUTES: `@${file}` }).routes).toEqual(rules);
    expect(loadConfig(both).routes).toEqual([]);
  });

  it.each([
    ['bad JSON', '[{"match": {}', /SMSQ_ROUTES: not valid JSON/],
    ['not an array', '{"match": {}}', /SMSQ_ROUTES: expected a JSON array/],
    [
      'an unknown provider',
      '[{"match":{},"providers":["descom"]},{"match":{},"providers":["twilio"]}]',
      /SMSQ_ROUTES\[1\]\.providers\.0/,
    ],
    ['an unknown country', '[{"match":{"country":"XX"},"providers":["ovh"]}]', /SMSQ_ROUTES\[0\]\.match/],
    ['a prefix without +', '[{"match":{"prefix":"33"},"providers":["ovh"]}]', /SMSQ_ROUTES\[0\]\.match/],
    ['no providers', '[{"match":{},"providers":[]}]', /SMSQ_ROUTES\[0\]\.providers/],
    ['an unknown key', '[{"match":{},"providers":["ovh"],"weight":2}]', /SMSQ_ROUTES\[0\]/],
    [
      'a missing file',
      '@/nonexistent/routes.json',
      /SMSQ_ROUTES: cannot read \/nonexistent\/routes.json \(ENOENT\)/,
    ],
  ])('refuses %s, naming SMSQ_ROUTES and the rule', (_what, value, message) => {
    expect(configError({ ...both, SMSQ_ROUTES: value })).toMatch(message);
  });

  it('refuses a provider that is not configured, naming the rule index', () => {
    const message = configError({
      DESCOM_USER: 'u',
      DESCOM_PASS: 'p',
      SMSQ_ROUTES:
        '[{"match":{"prefix":"+34"},"providers":["descom"]},{"match":{},"providers":["descom","ovh"]}]',
    });
    expect(message).toContain('SMSQ_ROUTES[1].providers.1: provider ovh is not configured');
  });
});

describe('routeOf', () => {
  const { rules } = parseRoutes(
    JSON.stringify([
      { match: { prefix: '+336' }, providers: ['ovh', 'descom'] },
      { match: { country: 'BE' }, providers: ['ovh'] },
      { match: { country: 'ES' }, providers: ['descom', 'ovh'] },
    ]),
    ['descom', 'ovh', 'simulator'],
  );

  it('takes the first matching rule, by prefix or by country', () => {
    expect(routeOf('+33612345678', rules, { defaultProvider: 'simulator' })).toEqual(['ovh', 'descom']);
    expect(routeOf('+32470123456', rules, { defaultProvider: 'simulator' })).toEqual(['ovh']);
    expect(routeOf('+34600000001', rules, { defaultProvider: 'simulator' })).toEqual(['descom', 'ovh']);
  });

  it("falls back to the default provider when no rule matches, and a request's provider overrides all", () => {
    expect(routeOf('+4915112345678', rules, { defaultProvider: 'simulator' })).toEqual(['simulator']);
    expect(
      routeOf('+33612345678', rules, { defaultProvider: 'simulator', requestProvider: 'descom' }),
    ).toEqual(['descom']);
  });

  it('groups a mixed request by route, every recipient once', () => {
    const groups = groupByRoute(
      [
        { text: 'a', to: ['+33612345678', '+34600000001', '+33612345679'] },
        { text: 'b', to: ['+34600000002'] },
      ],
      (to) => routeOf(to, rules, { defaultProvider: 'simulator' }),
    );
    expect(groups).toEqual([
      { route: ['ovh', 'descom'], messages: [{ text: 'a', to: ['+33612345678', '+33612345679'] }] },
      {
        route: ['descom', 'ovh'],
        messages: [
          { text: 'a', to: ['+34600000001'] },
          { text: 'b', to: ['+34600000002'] },
        ],
      },
    ]);
  });
});
