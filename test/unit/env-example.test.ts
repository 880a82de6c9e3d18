import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { envSchema, loadConfig } from '../../src/config.js';
import { PROVIDER_MODULES } from '../../src/providers/index.js';

const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
const entries = Object.fromEntries(
  example
    .split('\n')
    .filter((line) => /^[A-Z_]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
);

describe('.env.example', () => {
  it('lists every variable of the config schema, and no other', () => {
    expect(Object.keys(entries).sort()).toEqual(Object.keys(envSchema.shape).sort());
  });

  it('is a valid configuration as it stands', () => {
    expect(() => loadConfig(entries)).not.toThrow();
  });
});

describe('.env.example and the provider modules', () => {
  it.each(PROVIDER_MODULES.map((m) => [m.id, m] as const))(
    'lists every key of %s, each with the value the schema defaults to',
    (_id, module) => {
      const keys = Object.keys(module.envShape);
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) expect(entries).toHaveProperty(key);
      const schema = z.object(module.envShape);
      const listed = Object.fromEntries(keys.map((key) => [key, entries[key]]));
      expect(schema.parse(listed)).toEqual(schema.parse({}));
    },
  );
});
