/**
 * What a provider folder exports to the registry (src/providers/index.ts): everything smsq needs to
 * know about a provider, so that adding one is one folder plus one registry line. Nothing outside
 * the folder names the provider, its env keys or its rules (test/unit/architecture.test.ts checks).
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { DecisionTable } from './decisions.js';
import type { DeliveryReportDeps, DeliveryReportSource, PushedDeliveryReport } from './delivery-types.js';
import type { CallMeter, SmsProvider } from './types.js';

/** What every provider's config has, whatever else it holds. */
export interface ProviderConfig {
  /** Calls per second the account allows: the batch queue's limiter and the provider's call meter. */
  ratePerSecond: number;
}

/** What a provider is built with; each takes what it needs and ignores the rest. */
export interface ProviderDeps {
  logger: Logger;
  /** Total deadline of one provider request, in ms (`SMSQ_PROVIDER_TIMEOUT_MS`). */
  timeoutMs: number;
  /**
   * This provider account's call allowance, shared by every process on the same Redis. The
   * provider awaits it before every call except sends, which the batch processor takes from it
   * before marking the call begun (see SmsProvider).
   */
  meter: CallMeter;
}

/** A provider's config read from the environment, with what is wrong with it. */
export interface ProviderEnvResult<Cfg> {
  /** Undefined when the provider is not configured (no credentials) or misconfigured. */
  config?: Cfg;
  /** One line per problem, naming the variables (`DESCOM_USER and DESCOM_PASS must be set together`). */
  problems: string[];
}

/**
 * An HTTP route a provider adds under `/v1/providers/<id>/` (e.g. delivery-report pushes).
 * Framework-free, so the provider folder does not depend on the HTTP layer.
 */
export interface ProviderHttpRoute {
  methods: readonly ('GET' | 'POST' | 'PUT' | 'DELETE')[];
  /** Below `/v1/providers/<id>`, Fastify syntax (`/dlr/:token`). Query, JSON and form bodies are parsed. */
  url: string;
  handle(
    req: { params: Record<string, string>; query: Record<string, unknown>; body: Record<string, unknown> },
    ctx: ProviderRouteContext,
  ): Promise<{ status: number; text?: string }>;
}

/** What the HTTP app gives a provider's routes. */
export interface ProviderRouteContext {
  /** Queues a pushed delivery report durably (resolves once Redis holds it). */
  pushReport(report: PushedDeliveryReport): Promise<void>;
  /** Counts a pushed report that was not queued (no final status). */
  countIgnored(): Promise<void>;
}

/** A CLI command a provider adds as `smsq <id> <name…>` (e.g. `smsq ovh callback set <url>`). */
export interface ProviderCliCommand<Cfg extends ProviderConfig = ProviderConfig> {
  /** Words after `smsq <id>`, e.g. `['callback', 'set']`. */
  name: readonly string[];
  description: string;
  /** Commander argument syntax, e.g. `['<baseUrl>']`, each with its description. */
  args: readonly { name: string; description: string }[];
  /** `config` is undefined when the provider is not configured; what it prints goes to `print`. */
  run(
    args: readonly string[],
    ctx: { config: Cfg | undefined; logger: Logger; timeoutMs: number; print(line: string): void },
  ): Promise<void>;
}

/**
 * One provider, as the registry lists it. `Shape` is its zod env shape, `Cfg` what `fromEnv` makes
 * of it. Loading a module loads only its env schema: `create` imports the client when called.
 */
export interface ProviderModule<
  Id extends string = string,
  Shape extends z.ZodRawShape = z.ZodRawShape,
  Cfg extends ProviderConfig = ProviderConfig,
> {
  readonly id: Id;
  /** One line for the CLI's help and the docs (`Descom SMS (api.descomsms.com)`). */
  readonly description: string;
  /** Its env keys, each with its doc comment and default; merged into the one schema of src/config.ts. */
  readonly envShape: Shape;
  /** The variables that configure it, for "SMSQ_PROVIDER: <id> needs …" (absent: always configured). */
  readonly needs?: string;
  /** True for the provider used when no other is configured (the simulator). */
  readonly fallback?: boolean;
  /** Its decision table: every answer it can get, and what the queue does with it (src/providers/decisions.ts). */
  readonly decisions: DecisionTable;
  /** Paths the logger censors for this provider (its secret headers and fields), in pino syntax. */
  readonly redactPaths: readonly string[];
  /** Its config from the parsed environment; no config and no problem when it is not configured. */
  fromEnv(env: z.output<z.ZodObject<Shape>>): ProviderEnvResult<Cfg>;
  create(config: Cfg, deps: ProviderDeps): Promise<SmsProvider>;
  /** Where its delivery reports come from (polled, and pushed where `httpRoutes` take them), if anywhere. */
  deliveryReports?(config: Cfg, deps: DeliveryReportDeps): Promise<DeliveryReportSource>;
  /** Routes it adds to the HTTP API under `/v1/providers/<id>`, if any (they authenticate their caller themselves). */
  httpRoutes?(config: Cfg): readonly ProviderHttpRoute[];
  /** Commands it adds to the CLI as `smsq <id> …`, if any. */
  readonly cliCommands?: readonly ProviderCliCommand<Cfg>[];
}

/** Types a module literally (its id stays a literal type, its env and config stay its own). */
export function defineProviderModule<
  Id extends string,
  Shape extends z.ZodRawShape,
  Cfg extends ProviderConfig,
>(module: ProviderModule<Id, Shape, Cfg>): ProviderModule<Id, Shape, Cfg> {
  return module;
}
