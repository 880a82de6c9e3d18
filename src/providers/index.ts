/**
 * What smsq knows about its providers — their ids, env keys, configs, redaction paths, CLI
 * descriptions — derived from the registry (./modules.ts: one line per provider folder), so a new
 * provider is one folder (src/providers/<id>/, exporting a {@link ProviderModule}) plus one line there.
 */
import type { Logger } from 'pino';
import type { ProviderId } from '../message/types.js';
import type { DeliveryReportDeps, DeliveryReportSource } from './delivery-types.js';
import type { ProviderCliCommand, ProviderConfig, ProviderHttpRoute, ProviderModule } from './module.js';
import * as registry from './modules.js';
import { UNMETERED, type CallMeter, type SmsProvider } from './types.js';

export type { SmsProvider, ProviderLimits } from './types.js';
export type { ProviderModule, ProviderConfig, ProviderDeps, ProviderHttpRoute } from './module.js';
export type { DeliveryReportSource, PushedDeliveryReport } from './delivery-types.js';

type RegisteredModule = (typeof registry)[keyof typeof registry];

/**
 * Every provider smsq can send through, in id order (which is also the order of preference for
 * the default provider: the first configured one that is not the fallback).
 */
const MODULES: readonly RegisteredModule[] = Object.values(registry).sort((a, b) => a.id.localeCompare(b.id));

/** The id of a provider of the registry (`descom`, `ovh`, `simulator`). */
export type KnownProviderId = RegisteredModule['id'];

/** The registry's modules, without their own config types (read and built generically). */
export const PROVIDER_MODULES: readonly ProviderModule[] = MODULES;

/** Every provider id, in registry order. */
export const PROVIDER_IDS = MODULES.map((m) => m.id) as [KnownProviderId, ...KnownProviderId[]];

/** Every provider's config, by id; an unconfigured provider has none. */
export type ProviderConfigs = Readonly<Partial<Record<ProviderId, ProviderConfig>>>;

/** The zod shape of every provider's env keys, merged (src/config.ts spreads it into its schema). */
export const providerEnvShape = Object.assign({}, ...MODULES.map((m) => m.envShape)) as UnionToIntersection<
  RegisteredModule['envShape']
>;

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void
  ? I
  : never;

/** The env keys every provider reads (for tools that clear or list them). */
export const PROVIDER_ENV_KEYS: ReadonlySet<string> = new Set(
  PROVIDER_MODULES.flatMap((m) => Object.keys(m.envShape)),
);

/** What the logger censors on behalf of the providers. */
export const PROVIDER_REDACT_PATHS: readonly string[] = [
  ...new Set(PROVIDER_MODULES.flatMap((m) => m.redactPaths)),
];

export function providerModule(id: ProviderId): ProviderModule {
  const found = PROVIDER_MODULES.find((m) => m.id === id);
  if (!found) throw new Error(`Unknown provider ${id}`);
  return found;
}

/**
 * Every provider's config from the parsed environment, the default provider (`chosen`, else the
 * first configured non-fallback module, else the fallback), and every problem found.
 */
export function providerConfigsFromEnv(
  env: Readonly<Record<string, unknown>>,
  chosen: ProviderId | undefined,
): { configs: ProviderConfigs; defaultProvider: ProviderId; problems: string[] } {
  const configs: Partial<Record<ProviderId, ProviderConfig>> = {};
  const problems: string[] = [];
  for (const m of PROVIDER_MODULES) {
    const result = m.fromEnv(env);
    problems.push(...result.problems);
    if (result.config) configs[m.id] = result.config;
  }
  const preferred =
    PROVIDER_MODULES.find((m) => !m.fallback && configs[m.id]) ?? PROVIDER_MODULES.find((m) => m.fallback);
  const defaultProvider = chosen ?? preferred?.id ?? PROVIDER_IDS[0];
  if (!configs[defaultProvider]) {
    problems.push(
      `SMSQ_PROVIDER: ${defaultProvider} needs ${providerModule(defaultProvider).needs ?? 'configuration'}`,
    );
  }
  return { configs, defaultProvider, problems };
}

/** Providers this process can send through: the configured ones, in registry order. */
export function configuredProviderIds(config: { providers: ProviderConfigs }): ProviderId[] {
  return PROVIDER_MODULES.filter((m) => config.providers[m.id]).map((m) => m.id);
}

/** `id  description` lines, for the CLI's help. */
export function describeProviders(): string {
  return PROVIDER_MODULES.map((m) => `${m.id}: ${m.description}`).join('; ');
}

export interface CreateProvidersDeps {
  logger: Logger;
  /** Total deadline of one provider request, in ms. */
  timeoutMs: number;
  /** The call allowance of each provider account. Default: unmetered. */
  meterFor?: (id: ProviderId) => CallMeter;
}

export async function createProvider(
  id: ProviderId,
  configs: ProviderConfigs,
  deps: CreateProvidersDeps,
): Promise<SmsProvider> {
  const module = providerModule(id);
  const config = configs[id];
  if (!config) throw new Error(`Provider ${id} is not configured`);
  const meter = deps.meterFor ? deps.meterFor(id) : UNMETERED;
  return module.create(config, { logger: deps.logger, timeoutMs: deps.timeoutMs, meter });
}

/** Every configured provider's delivery-report source, by id (providers without reports have none). */
export async function createDeliveryReportSources(
  configs: ProviderConfigs,
  deps: Omit<DeliveryReportDeps, 'meter'> & { meterFor: (id: ProviderId) => CallMeter },
): Promise<Map<ProviderId, DeliveryReportSource>> {
  const sources = new Map<ProviderId, DeliveryReportSource>();
  for (const module of PROVIDER_MODULES) {
    const config = configs[module.id];
    if (!config || !module.deliveryReports) continue;
    const { meterFor, ...rest } = deps;
    sources.set(module.id, await module.deliveryReports(config, { ...rest, meter: meterFor(module.id) }));
  }
  return sources;
}

/** Every configured provider's own HTTP routes, with the full path (`/v1/providers/<id>/…`). */
export function providerHttpRoutes(
  configs: ProviderConfigs,
): { provider: ProviderId; path: string; route: ProviderHttpRoute }[] {
  return PROVIDER_MODULES.flatMap((module) => {
    const config = configs[module.id];
    if (!config || !module.httpRoutes) return [];
    return module.httpRoutes(config).map((route) => ({
      provider: module.id,
      path: `/v1/providers/${module.id}${route.url}`,
      route,
    }));
  });
}

/** Every provider's own CLI commands (`smsq <id> …`), configured or not. */
export function providerCliCommands(): { provider: ProviderId; command: ProviderCliCommand }[] {
  return PROVIDER_MODULES.flatMap((module) =>
    (module.cliCommands ?? []).map((command) => ({ provider: module.id, command })),
  );
}

/** Every configured provider, by id. */
export async function createProviders(
  configs: ProviderConfigs,
  deps: CreateProvidersDeps,
): Promise<Map<ProviderId, SmsProvider>> {
  const ids = configuredProviderIds({ providers: configs });
  const providers = await Promise.all(ids.map((id) => createProvider(id, configs, deps)));
  return new Map(ids.map((id, i) => [id, providers[i]!] as const));
}
