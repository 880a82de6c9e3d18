import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envSchema, loadConfig } from '../../src/config.js';

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
