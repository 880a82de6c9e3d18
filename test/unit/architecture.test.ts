import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDER_MODULES } from '../../src/providers/index.js';
import { findCycles, scanImports } from '../helpers/import-graph.js';
import { findProviderNameLeaks, type ProviderNames } from '../helpers/provider-names.js';
import { NOTHING_COUNTED } from '../../src/providers/types.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const src = path.join(repo, 'src');

const namesOf = (modules: readonly { id: string; envShape: object }[]): ProviderNames[] =>
  modules.map((m) => ({ id: m.id, envKeys: Object.keys(m.envShape) }));

describe('providers are self-contained', () => {
  it('names no provider, nor any of its env keys, outside its folder and the registry', () => {
    expect(findProviderNameLeaks(src, namesOf(PROVIDER_MODULES))).toEqual([]);
  });

  it('catches a provider named elsewhere: its id, a name built on it, one of its env keys', () => {
    const leaks = findProviderNameLeaks(
      path.join(repo, 'test/fixtures/architecture-leaks'),
      namesOf(PROVIDER_MODULES),
    );
    expect(leaks.map((l) => `${l.file}:${l.line} ${l.provider} ${l.token}`)).toEqual([
      'queue/leaky.ts:2 ovh ovh',
      'queue/leaky.ts:2 ovh batch-ovh',
      'queue/leaky.ts:3 descom createDescomClient',
      'queue/leaky.ts:4 simulator SIMULATOR_LATENCY_MS',
    ]);
  });
});

/**
 * A copy of src/ with a fourth provider added the documented way: its folder (from
 * test/fixtures/fourth-provider) and one line in src/providers/modules.ts — nothing else.
 */
describe('adding a provider is one folder and one registry line', () => {
  let copy: string;
  let copySrc: string;

  beforeAll(() => {
    // Inside the repository, so the copy resolves the same node_modules.
    copy = mkdtempSync(path.join(repo, '.architecture-'));
    copySrc = path.join(copy, 'src');
    cpSync(src, copySrc, { recursive: true });
    const folder = path.join(copySrc, 'providers/acme');
    mkdirSync(folder);
    for (const file of ['env.ts', 'module.ts', 'provider.ts']) {
      const fixture = readFileSync(path.join(repo, 'test/fixtures/fourth-provider', `${file}.txt`), 'utf8');
      writeFileSync(path.join(folder, file), fixture);
    }
    appendFileSync(
      path.join(copySrc, 'providers/modules.ts'),
      "export { acmeModule } from './acme/module.js';\n",
    );
  });

  afterAll(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it('type-checks', async () => {
    writeFileSync(
      path.join(copy, 'tsconfig.json'),
      // The registry and what derives from it (their import closure), not all of src: seconds, not tens.
      JSON.stringify({
        extends: '../tsconfig.json',
        include: ['src/providers', 'src/config.ts', 'src/logger.ts'],
      }),
    );
    const tsc = path.join(repo, 'node_modules/typescript/bin/tsc');
    await expect(promisify(execFile)(process.execPath, [tsc, '--noEmit', '-p', copy])).resolves.toBeDefined();
  }, 60_000);

  it('is configured, validated, redacted, listed and built from the registry alone', async () => {
    const at = (file: string) => path.join(copySrc, file);
    const { loadConfig, envSchema } = (await import(at('config.ts'))) as typeof import('../../src/config.js');
    const registry = (await import(
      at('providers/index.ts')
    )) as typeof import('../../src/providers/index.js');
    const { REDACT_PATHS, createLogger } = (await import(
      at('logger.ts')
    )) as typeof import('../../src/logger.js');
    const { sendRequestSchemaFor } = (await import(
      at('message/request.ts')
    )) as typeof import('../../src/message/request.js');

    expect(registry.PROVIDER_IDS).toEqual(['acme', 'descom', 'ovh', 'simulator']);
    expect(Object.keys(envSchema.shape)).toEqual(expect.arrayContaining(['ACME_TOKEN', 'ACME_RATE_PER_S']));
    expect(REDACT_PATHS).toContain('*.acmeToken');

    const config = loadConfig({ ACME_TOKEN: 'tok', ACME_RATE_PER_S: '3' });
    expect(config.defaultProvider).toBe('acme');
    expect(registry.configuredProviderIds(config)).toEqual(['acme', 'simulator']);
    expect(config.providers.acme?.ratePerSecond).toBe(3);
    expect(() => loadConfig({ SMSQ_PROVIDER: 'acme' })).toThrow('SMSQ_PROVIDER: acme needs ACME_TOKEN');
    expect(() => loadConfig({ ACME_RATE_PER_S: '0' })).toThrow('ACME_RATE_PER_S');

    expect(
      sendRequestSchemaFor(registry.PROVIDER_IDS).safeParse({
        to: '+34600000000',
        text: 'x',
        provider: 'acme',
      }).success,
    ).toBe(true);

    const metered: string[] = [];
    const providers = await registry.createProviders(config.providers, {
      logger: createLogger('silent'),
      timeoutMs: 1_000,
      meterFor: (id) => () => {
        metered.push(id);
        return Promise.resolve(NOTHING_COUNTED);
      },
    });
    const acme = providers.get('acme');
    expect(acme?.limits.maxRecipientsPerMessage).toBe(7);
    const batch = {
      id: 'b',
      requestId: 'r',
      provider: 'acme',
      tag: 't',
      messages: [{ text: 'x', to: ['+34600000000'] }],
      estimatedCredits: 1,
    };
    await expect(acme?.send(batch, { signal: AbortSignal.timeout(1_000) })).resolves.toMatchObject({
      providerIds: ['acme-3'],
    });
    expect(metered).toEqual([]);
    await expect(acme?.probe({ signal: AbortSignal.timeout(1_000) })).resolves.toBe(true);
    expect(metered).toEqual(['acme']);
  });

  it('still keeps every provider inside its folder, with no import cycle', () => {
    const copied = namesOf([
      ...PROVIDER_MODULES,
      { id: 'acme', envShape: { ACME_TOKEN: 1, ACME_RATE_PER_S: 1 } },
    ]);
    expect(findProviderNameLeaks(copySrc, copied)).toEqual([]);
    expect(findCycles(scanImports(copySrc).edges)).toEqual([]);
  });
});
