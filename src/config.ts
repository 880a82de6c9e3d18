import { z } from 'zod';
import { ConfigError } from './errors.js';
import { emptyAsUndefined, int, optionalString } from './env-fields.js';
import type { ProviderId } from './message/types.js';
import {
  PROVIDER_IDS,
  providerConfigsFromEnv,
  providerEnvShape,
  type ProviderConfigs,
} from './providers/index.js';

const bool = z.preprocess(
  emptyAsUndefined,
  z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .transform((v) => v === 'true' || v === '1'),
);
const csvList = z.preprocess(
  emptyAsUndefined,
  z
    .string()
    .optional()
    .transform((v) =>
      v
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [],
    ),
);

/**
 * The one schema over the environment. Every key with its default; secrets have none.
 * `.env.example` lists every key.
 */
export const envSchema = z.object({
  /** Redis for queues, batch states and the ledger. */
  REDIS_URL: z.preprocess(emptyAsUndefined, z.url().default('redis://127.0.0.1:6379')),
  /** BullMQ prefix shared by every queue and smsq key; use a hash tag (`{smsq}`) with Redis Cluster. */
  SMSQ_PREFIX: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[\w{}.-]+$/)
      .default('smsq'),
  ),
  /** Provider for requests that name none; defaults to the first with credentials, else `simulator`. */
  SMSQ_PROVIDER: z.preprocess(emptyAsUndefined, z.enum(PROVIDER_IDS).optional()),
  /** Country for numbers written without a country code (ISO 3166-1 alpha-2). */
  SMSQ_DEFAULT_COUNTRY: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[A-Z]{2}$/)
      .default('ES'),
  ),
  /** `report`: an ambiguous Descom send is recorded `unknown` and not resent; `resend`: it is sent again. */
  SMSQ_AMBIGUOUS: z.preprocess(emptyAsUndefined, z.enum(['report', 'resend']).default('report')),
  /** Attempts per batch for transient failures (rate-limit waits use none). */
  SMSQ_ATTEMPTS: z.preprocess(emptyAsUndefined, int(1).default(8)),
  /** First retry delay in ms; doubles each attempt, with jitter. */
  SMSQ_BACKOFF_MS: z.preprocess(emptyAsUndefined, int(1).default(2_000)),
  /** Total deadline of one provider request, in ms. */
  SMSQ_PROVIDER_TIMEOUT_MS: z.preprocess(emptyAsUndefined, int(100).default(30_000)),
  /** Batch jobs processed at once per provider, per worker process. */
  SMSQ_BATCH_CONCURRENCY: z.preprocess(emptyAsUndefined, int(1).default(8)),
  /** How often a paused provider is probed for credit/credentials, in ms. */
  SMSQ_PROBE_INTERVAL_MS: z.preprocess(emptyAsUndefined, int(100).default(60_000)),
  /** How long request and batch records are kept after completion, in seconds (the ledger is kept longer). */
  SMSQ_RECORD_TTL_S: z.preprocess(emptyAsUndefined, int(60).default(30 * 24 * 3600)),
  /**
   * How long ledger entries are kept, in days: the workers trim older ones from the stream at
   * start and every hour (export them first, e.g. with `smsq ledger --follow`). 0 keeps them forever.
   * @defaultValue 90
   */
  SMSQ_LEDGER_RETENTION_DAYS: z.preprocess(emptyAsUndefined, int(0).default(90)),
  /** Grace period for active batches on SIGTERM before provider calls are aborted, in ms. */
  SMSQ_SHUTDOWN_TIMEOUT_MS: z.preprocess(emptyAsUndefined, int(0).default(25_000)),
  /** Lock duration of active jobs, in ms: a dead worker's batch is picked up within about twice this. */
  SMSQ_LOCK_DURATION_MS: z.preprocess(emptyAsUndefined, int(1_000).default(20_000)),
  /**
   * An enqueue that wrote its request record but, this long after, still no send job (its producer
   * died in between) is repaired by the workers: the request is completed with its recipients
   * `failed` and its idempotency key freed. In ms; the workers look every tenth of it (at most 30 s).
   * @defaultValue 300000
   */
  SMSQ_ENQUEUE_REPAIR_AFTER_MS: z.preprocess(emptyAsUndefined, int(500).default(300_000)),
  /**
   * Replicas that must acknowledge the `sending` write (Redis `WAIT`) before a provider call;
   * a call is refused when fewer answer in time.
   * @defaultValue 0
   */
  SMSQ_REDIS_MIN_REPLICAS: z.preprocess(emptyAsUndefined, int(0).default(0)),
  /**
   * Refuse to start on a Redis that can lose an acknowledged `sending` write (AOF off, or
   * `appendfsync everysec` without WAITAOF). Unset: true with NODE_ENV=production, else false.
   */
  SMSQ_REQUIRE_DURABLE_REDIS: z.preprocess(emptyAsUndefined, z.enum(['true', 'false', '1', '0']).optional()),

  /** Every provider's own keys (src/providers/<id>/env.ts): DESCOM_*, OVH_*, SIMULATOR_*. */
  ...providerEnvShape,

  /**
   * Directory campaign and import CSV files must be in. Unset: any absolute path the workers can
   * read (set it wherever API callers are not trusted with the server's files).
   */
  SMSQ_CSV_DIR: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .refine((v) => v.startsWith('/'), 'must be an absolute path')
      .optional(),
  ),
  SMSQ_API_KEYS: csvList,
  SMSQ_DASHBOARD_USER: optionalString,
  SMSQ_DASHBOARD_PASSWORD: optionalString,
  SMSQ_DASHBOARD_READONLY: bool,
  PORT: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(0).max(65_535).default(3000)),
  HOST: z.preprocess(emptyAsUndefined, z.string().default('127.0.0.1')),
  LOG_LEVEL: z.preprocess(
    emptyAsUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  NODE_ENV: z.preprocess(emptyAsUndefined, z.string().default('development')),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  redisUrl: string;
  /** True when REDIS_URL was set explicitly (so `smsq start` must not start a private Redis). */
  redisUrlExplicit: boolean;
  prefix: string;
  defaultProvider: ProviderId;
  defaultCountry: string;
  ambiguous: 'report' | 'resend';
  attempts: number;
  backoffMs: number;
  providerTimeoutMs: number;
  batchConcurrency: number;
  probeIntervalMs: number;
  recordTtlS: number;
  /** Days ledger entries are kept before the workers trim them; 0: forever (`SMSQ_LEDGER_RETENTION_DAYS`). */
  ledgerRetentionDays: number;
  shutdownTimeoutMs: number;
  lockDurationMs: number;
  /** Age after which an interrupted enqueue is repaired, in ms (`SMSQ_ENQUEUE_REPAIR_AFTER_MS`). */
  enqueueRepairAfterMs: number;
  /** Replicas that must acknowledge the `sending` write before a provider call (`SMSQ_REDIS_MIN_REPLICAS`). */
  redisMinReplicas: number;
  /** Refuse to start on a Redis that can lose an acknowledged write (`SMSQ_REQUIRE_DURABLE_REDIS`). */
  requireDurableRedis: boolean;
  /** CSV files of campaigns and imports must be below this directory, when set. */
  csvDir?: string;
  /** Each configured provider's own config, by id (see src/providers/index.ts). */
  providers: ProviderConfigs;
  http: {
    port: number;
    host: string;
    apiKeys: string[];
    dashboard: { user?: string; password?: string; readOnly: boolean };
  };
  logLevel: Env['LOG_LEVEL'];
  production: boolean;
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`)
    .join('\n');
}

/** Parses the environment once. Throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`Invalid configuration:\n${formatIssues(parsed.error)}`);
  const e = parsed.data;
  const problems: string[] = [];

  const {
    configs: providers,
    defaultProvider,
    problems: providerProblems,
  } = providerConfigsFromEnv(e, e.SMSQ_PROVIDER);
  problems.push(...providerProblems);
  if (Boolean(e.SMSQ_DASHBOARD_USER) !== Boolean(e.SMSQ_DASHBOARD_PASSWORD))
    problems.push('SMSQ_DASHBOARD_USER and SMSQ_DASHBOARD_PASSWORD must be set together');
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);

  return {
    redisUrl: e.REDIS_URL,
    redisUrlExplicit: Boolean(emptyAsUndefined(env.REDIS_URL)),
    prefix: e.SMSQ_PREFIX,
    defaultProvider,
    defaultCountry: e.SMSQ_DEFAULT_COUNTRY,
    ambiguous: e.SMSQ_AMBIGUOUS,
    attempts: e.SMSQ_ATTEMPTS,
    backoffMs: e.SMSQ_BACKOFF_MS,
    providerTimeoutMs: e.SMSQ_PROVIDER_TIMEOUT_MS,
    batchConcurrency: e.SMSQ_BATCH_CONCURRENCY,
    probeIntervalMs: e.SMSQ_PROBE_INTERVAL_MS,
    recordTtlS: e.SMSQ_RECORD_TTL_S,
    ledgerRetentionDays: e.SMSQ_LEDGER_RETENTION_DAYS,
    shutdownTimeoutMs: e.SMSQ_SHUTDOWN_TIMEOUT_MS,
    lockDurationMs: e.SMSQ_LOCK_DURATION_MS,
    enqueueRepairAfterMs: e.SMSQ_ENQUEUE_REPAIR_AFTER_MS,
    redisMinReplicas: e.SMSQ_REDIS_MIN_REPLICAS,
    requireDurableRedis:
      e.SMSQ_REQUIRE_DURABLE_REDIS === undefined
        ? e.NODE_ENV === 'production'
        : e.SMSQ_REQUIRE_DURABLE_REDIS === 'true' || e.SMSQ_REQUIRE_DURABLE_REDIS === '1',
    csvDir: e.SMSQ_CSV_DIR?.replace(/\/+$/, ''),
    providers,
    http: {
      port: e.PORT,
      host: e.HOST,
      apiKeys: e.SMSQ_API_KEYS,
      dashboard: {
        user: e.SMSQ_DASHBOARD_USER,
        password: e.SMSQ_DASHBOARD_PASSWORD,
        readOnly: e.SMSQ_DASHBOARD_READONLY,
      },
    },
    logLevel: e.LOG_LEVEL,
    production: e.NODE_ENV === 'production',
  };
}
