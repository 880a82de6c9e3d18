import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { emptyAsUndefined, int, optionalString } from './env-fields.js';
import { parseRoutes, type RouteRule } from './message/routes.js';
import type { ProviderId } from './message/types.js';
import {
  configuredProviderIds,
  PROVIDER_IDS,
  providerConfigsFromEnv,
  providerEnvShape,
  type ProviderConfigs,
} from './providers/index.js';
import { redisAddress } from './redis.js';

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
  /**
   * Redis Cluster seed nodes (`host:port,…`): connect through ioredis Cluster instead of REDIS_URL's
   * host; REDIS_URL still gives the credentials and TLS (`rediss://`). The prefix becomes a hash tag.
   */
  REDIS_CLUSTER_NODES: optionalString,
  /** Sentinels (`host:port,…`) watching REDIS_SENTINEL_MASTER; REDIS_URL gives credentials, TLS and db. */
  REDIS_SENTINELS: optionalString,
  /** The master name the sentinels watch. @defaultValue mymaster */
  REDIS_SENTINEL_MASTER: z.preprocess(emptyAsUndefined, z.string().default('mymaster')),
  /** BullMQ prefix shared by every queue and smsq key (with Redis Cluster it is wrapped in `{…}`, one hash slot). */
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
  /**
   * Batch jobs processed at once per provider, lane and worker process, fixed. Unset: sized from the
   * provider's allowance and its observed latency (allowance × latency, with a margin), up to
   * SMSQ_MAX_INFLIGHT.
   */
  SMSQ_BATCH_CONCURRENCY: z.preprocess(emptyAsUndefined, int(1).optional()),
  /** Upper bound of the batches in flight per provider, lane and worker process, when sized automatically. @defaultValue 64 */
  SMSQ_MAX_INFLIGHT: z.preprocess(emptyAsUndefined, int(1).default(64)),
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
  /**
   * Routing rules, as JSON or `@path/to/routes.json`: an ordered list of
   * `{ "match": { "prefix": "+33" } | { "country": "FR" } | {}, "providers": ["ovh", "descom"] }`;
   * the first rule matching a number gives its providers, in failover order. Unset: every request
   * goes to its `provider` or SMSQ_PROVIDER, as without routing.
   */
  SMSQ_ROUTES: optionalString,
  /**
   * Consecutive transient or ambiguous failures of a provider that open its circuit (its planned
   * batches then fail over). The circuit also opens when half of its last 20 calls within 60 s failed.
   * @defaultValue 5
   */
  SMSQ_CIRCUIT_FAILURES: z.preprocess(emptyAsUndefined, int(1).default(5)),
  /**
   * After a provider's circuit half-opens (a probe succeeded, or it was resumed), how long it must
   * go without a failure before routes send to it again, in ms.
   * @defaultValue 600000
   */
  SMSQ_FAILBACK_MS: z.preprocess(emptyAsUndefined, int(0).default(600_000)),

  /**
   * The delivery-report schedule's unit, in ms: polls at 1, 2, 4, 10, 20 and 60 units after a batch
   * is sent, then every 120 units, and the horizon too are scaled by this / 30000 (the default is
   * the real schedule: 30 s, 1, 2, 5, 10, 30 min, then hourly). Lower it only for tests and demos.
   * @defaultValue 30000
   */
  SMSQ_DLR_POLL_MS: z.preprocess(emptyAsUndefined, int(1).default(30_000)),

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

  /** Webhook target of requests that give no `callbackUrl` (http or https). Unset: only `callbackUrl` requests get webhooks. */
  SMSQ_WEBHOOK_URL: z.preprocess(
    emptyAsUndefined,
    z
      .url()
      .refine((v) => /^https?:\/\//i.test(v), 'must be an http or https URL')
      .optional(),
  ),
  /** Signing secret of every webhook (Standard Webhooks, `whsec_` + base64). Required in production with SMSQ_WEBHOOK_URL. */
  SMSQ_WEBHOOK_SECRET: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]{16,}={0,2}$/, 'expected whsec_ followed by a base64 key')
      .optional(),
  ),
  /** `true`: webhook targets on loopback, private and link-local addresses are allowed (tests, private networks). */
  SMSQ_WEBHOOK_ALLOW_PRIVATE: bool,
  /**
   * At most one `message.delivery` event per request per this many ms (each carries ≤ 500 updates).
   * @defaultValue 2000
   */
  SMSQ_WEBHOOK_COALESCE_MS: z.preprocess(emptyAsUndefined, int(0).default(2_000)),
  /**
   * First retry delay of a failed webhook delivery, in ms; doubles with jitter, at most hourly, for 24 h.
   * @defaultValue 5000
   */
  SMSQ_WEBHOOK_RETRY_MS: z.preprocess(emptyAsUndefined, int(1).default(5_000)),
  /**
   * Deadline of one webhook delivery (connect, answer and body), in ms.
   * @defaultValue 10000
   */
  SMSQ_WEBHOOK_TIMEOUT_MS: z.preprocess(emptyAsUndefined, int(50).default(10_000)),
  /**
   * Webhook deliveries in flight at once per worker process (their own queue: they never hold up sending).
   * @defaultValue 16
   */
  SMSQ_WEBHOOK_CONCURRENCY: z.preprocess(emptyAsUndefined, int(1).default(16)),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  /** Where Redis is: REDIS_URL, or a `redis-cluster://` / `redis-sentinel://` address (src/redis.ts). */
  redisUrl: string;
  /** True when REDIS_URL (or a Cluster or Sentinel set) was set explicitly (so `smsq start` must not start a private Redis). */
  redisUrlExplicit: boolean;
  prefix: string;
  defaultProvider: ProviderId;
  defaultCountry: string;
  ambiguous: 'report' | 'resend';
  attempts: number;
  backoffMs: number;
  providerTimeoutMs: number;
  /** Fixed batch concurrency per provider, lane and process (`SMSQ_BATCH_CONCURRENCY`); unset: sized (see src/queue/inflight.ts). */
  batchConcurrency?: number;
  /** Bound of the sized batch concurrency (`SMSQ_MAX_INFLIGHT`). */
  maxInflight: number;
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
  /** Routing rules (`SMSQ_ROUTES`); empty without routing. */
  routes: RouteRule[];
  /** Circuit breaker: consecutive failures that open it, and the quiet time before failback (ms). */
  circuit: { failures: number; failbackMs: number };
  /** Unit of the delivery-report schedule, in ms (`SMSQ_DLR_POLL_MS`; 30000 is the real schedule). */
  dlrPollMs: number;
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
  /** Producer webhooks (src/webhooks/). */
  webhooks: WebhookConfig;
}

export interface WebhookConfig {
  /** Target of requests without `callbackUrl` (`SMSQ_WEBHOOK_URL`). */
  url?: string;
  /** Signing secret (`SMSQ_WEBHOOK_SECRET`); without it no request gets webhooks. */
  secret?: string;
  /** Targets on private addresses allowed (`SMSQ_WEBHOOK_ALLOW_PRIVATE`). */
  allowPrivate: boolean;
  coalesceMs: number;
  retryMs: number;
  timeoutMs: number;
  concurrency: number;
}

/** The Redis address (see src/redis.ts): REDIS_URL, or a Cluster or Sentinel set built on it. */
function redisTopology(e: Env, problems: string[]): { address: string; cluster: boolean } {
  if (e.REDIS_CLUSTER_NODES && e.REDIS_SENTINELS) {
    problems.push('REDIS_CLUSTER_NODES and REDIS_SENTINELS: set one of them, not both');
    return { address: e.REDIS_URL, cluster: false };
  }
  const [kind, nodes] = e.REDIS_CLUSTER_NODES
    ? (['cluster', e.REDIS_CLUSTER_NODES] as const)
    : e.REDIS_SENTINELS
      ? (['sentinel', e.REDIS_SENTINELS] as const)
      : [];
  if (!kind) return { address: e.REDIS_URL, cluster: false };
  try {
    return {
      address: redisAddress(kind, nodes, e.REDIS_URL, e.REDIS_SENTINEL_MASTER),
      cluster: kind === 'cluster',
    };
  } catch (err) {
    problems.push(
      `${kind === 'cluster' ? 'REDIS_CLUSTER_NODES' : 'REDIS_SENTINELS'}: ${(err as Error).message}`,
    );
    return { address: e.REDIS_URL, cluster: false };
  }
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
  const redis = redisTopology(e, problems);

  const {
    configs: providers,
    defaultProvider,
    problems: providerProblems,
  } = providerConfigsFromEnv(e, e.SMSQ_PROVIDER);
  problems.push(...providerProblems);
  if (Boolean(e.SMSQ_DASHBOARD_USER) !== Boolean(e.SMSQ_DASHBOARD_PASSWORD))
    problems.push('SMSQ_DASHBOARD_USER and SMSQ_DASHBOARD_PASSWORD must be set together');
  if (e.NODE_ENV === 'production' && e.SMSQ_WEBHOOK_URL && !e.SMSQ_WEBHOOK_SECRET)
    problems.push('SMSQ_WEBHOOK_SECRET: required in production when SMSQ_WEBHOOK_URL is set');
  const routes = e.SMSQ_ROUTES
    ? readRoutes(e.SMSQ_ROUTES, configuredProviderIds({ providers }), problems)
    : [];
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);

  return {
    redisUrl: redis.address,
    redisUrlExplicit: Boolean(emptyAsUndefined(env.REDIS_URL)) || redis.address !== e.REDIS_URL,
    prefix: redis.cluster && !/\{[^}]+\}/.test(e.SMSQ_PREFIX) ? `{${e.SMSQ_PREFIX}}` : e.SMSQ_PREFIX,
    defaultProvider,
    defaultCountry: e.SMSQ_DEFAULT_COUNTRY,
    ambiguous: e.SMSQ_AMBIGUOUS,
    attempts: e.SMSQ_ATTEMPTS,
    backoffMs: e.SMSQ_BACKOFF_MS,
    providerTimeoutMs: e.SMSQ_PROVIDER_TIMEOUT_MS,
    ...(e.SMSQ_BATCH_CONCURRENCY !== undefined ? { batchConcurrency: e.SMSQ_BATCH_CONCURRENCY } : {}),
    maxInflight: e.SMSQ_MAX_INFLIGHT,
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
    routes,
    circuit: { failures: e.SMSQ_CIRCUIT_FAILURES, failbackMs: e.SMSQ_FAILBACK_MS },
    dlrPollMs: e.SMSQ_DLR_POLL_MS,
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
    webhooks: {
      url: e.SMSQ_WEBHOOK_URL,
      secret: e.SMSQ_WEBHOOK_SECRET,
      allowPrivate: e.SMSQ_WEBHOOK_ALLOW_PRIVATE,
      coalesceMs: e.SMSQ_WEBHOOK_COALESCE_MS,
      retryMs: e.SMSQ_WEBHOOK_RETRY_MS,
      timeoutMs: e.SMSQ_WEBHOOK_TIMEOUT_MS,
      concurrency: e.SMSQ_WEBHOOK_CONCURRENCY,
    },
  };
}

/** `SMSQ_ROUTES`, inline JSON or `@file.json`, checked against the configured providers. */
function readRoutes(value: string, configured: readonly ProviderId[], problems: string[]): RouteRule[] {
  let text = value;
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8');
    } catch (err) {
      problems.push(`SMSQ_ROUTES: cannot read ${value.slice(1)} (${(err as NodeJS.ErrnoException).code})`);
      return [];
    }
  }
  const parsed = parseRoutes(text, configured);
  problems.push(...parsed.problems);
  return parsed.rules;
}
