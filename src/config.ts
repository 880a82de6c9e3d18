import { z } from 'zod';
import { ConfigError } from './errors.js';
import { PROVIDER_IDS, type ProviderId } from './message/types.js';

const emptyAsUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalString = z.preprocess(emptyAsUndefined, z.string().optional());
const int = (min: number) => z.coerce.number().int().min(min);
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

  DESCOM_USER: optionalString,
  DESCOM_PASS: optionalString,
  DESCOM_URL: z.preprocess(emptyAsUndefined, z.url().default('https://api.descomsms.com/api')),
  /** Descom requests per second (one queue limiter). */
  DESCOM_RATE_PER_S: z.preprocess(emptyAsUndefined, int(1).default(10)),
  DESCOM_SENDER: optionalString,

  OVH_ENDPOINT: z.preprocess(emptyAsUndefined, z.string().default('ovh-eu')),
  OVH_APP_KEY: optionalString,
  OVH_APP_SECRET: optionalString,
  OVH_CONSUMER_KEY: optionalString,
  OVH_SERVICE_NAME: optionalString,
  OVH_SENDER: optionalString,
  /** Receivers per OVH job (OVH documents no cap and suggests 500). */
  OVH_BATCH_SIZE: z.preprocess(emptyAsUndefined, int(1).max(500).default(500)),
  /** OVH requests per second (OVH: about 60 per minute per consumer key is safe). */
  OVH_RATE_PER_S: z.preprocess(emptyAsUndefined, int(1).default(1)),
  /**
   * How long an ambiguous OVH batch is looked up (outgoing SMS by tag, pending jobs by receiver and
   * text) before it may be sent again, in ms; the window starts once the provider deadline passed.
   * @defaultValue 120000
   */
  OVH_SETTLE_MS: z.preprocess(emptyAsUndefined, int(0).default(120_000)),
  /** `true`: transactional sends, no STOP mention appended (OVH `noStopClause`). */
  OVH_NO_STOP_CLAUSE: z.preprocess(
    emptyAsUndefined,
    z
      .enum(['true', 'false'])
      .default('true')
      .transform((v) => v === 'true'),
  ),
  /**
   * Minutes OVH keeps trying to deliver an SMS (`validityPeriod`, sent with every job). Delivery
   * reports are polled until this plus an hour; recipients still pending then end `expired`.
   * @defaultValue 2880
   */
  OVH_VALIDITY_MINUTES: z.preprocess(emptyAsUndefined, int(1).default(2_880)),
  /**
   * Secret path segment of the OVH delivery-report push (`/v1/providers/ovh/dlr/<token>`); unset:
   * that route answers 404 and reports are only polled. At least 16 characters.
   */
  OVH_DLR_TOKEN: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .min(16)
      .regex(/^[\w-]+$/)
      .optional(),
  ),

  /** Simulated latency per provider request, in ms. */
  SIMULATOR_LATENCY_MS: z.preprocess(emptyAsUndefined, int(0).default(50)),
  /** Fraction (0..1) of simulated requests that fail with a transient error. */
  SIMULATOR_FAILURE_RATE: z.preprocess(emptyAsUndefined, z.coerce.number().min(0).max(1).default(0)),
  SIMULATOR_RATE_PER_S: z.preprocess(emptyAsUndefined, int(1).default(1_000)),
  /** Fraction (0..1) of simulated recipients reported delivered; the others are reported undelivered. */
  SIMULATOR_DELIVERED_RATE: z.preprocess(emptyAsUndefined, z.coerce.number().min(0).max(1).default(0.97)),
  /** Time from a simulated send to its delivery reports, in ms. */
  SIMULATOR_DLR_DELAY_MS: z.preprocess(emptyAsUndefined, int(0).default(2_000)),
  /**
   * The delivery-report schedule's unit, in ms: polls at 1, 2, 4, 10, 20 and 60 units after a batch
   * is sent, then every 120 units, and the horizon too are scaled by this / 30000 (the default is
   * the real schedule: 30 s, 1, 2, 5, 10, 30 min, then hourly). Lower it only for tests and demos.
   * @defaultValue 30000
   */
  SMSQ_DLR_POLL_MS: z.preprocess(emptyAsUndefined, int(1).default(30_000)),

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

export interface DescomConfig {
  user: string;
  pass: string;
  url: string;
  sender?: string;
  ratePerSecond: number;
}

export interface OvhConfig {
  endpoint: string;
  appKey: string;
  appSecret: string;
  consumerKey: string;
  serviceName?: string;
  sender?: string;
  batchSize: number;
  ratePerSecond: number;
  noStopClause: boolean;
  /** Settle window of an ambiguous batch's lookups, in ms (`OVH_SETTLE_MS`). */
  settleMs: number;
  /** `validityPeriod` of every job, in minutes (`OVH_VALIDITY_MINUTES`; default 2880). */
  validityMinutes?: number;
  /** Path token of the delivery-report push (`OVH_DLR_TOKEN`); unset: no push route. */
  dlrToken?: string;
}

export interface SimulatorConfig {
  latencyMs: number;
  failureRate: number;
  ratePerSecond: number;
  /** Fraction of recipients reported delivered (`SIMULATOR_DELIVERED_RATE`). */
  deliveredRate: number;
  /** Send → report delay, in ms (`SIMULATOR_DLR_DELAY_MS`). */
  dlrDelayMs: number;
}

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
  /** Unit of the delivery-report schedule, in ms (`SMSQ_DLR_POLL_MS`; 30000 is the real schedule). */
  dlrPollMs: number;
  providers: { descom?: DescomConfig; ovh?: OvhConfig; simulator: SimulatorConfig };
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

  let descom: DescomConfig | undefined;
  if (e.DESCOM_USER || e.DESCOM_PASS) {
    if (!e.DESCOM_USER || !e.DESCOM_PASS) problems.push('DESCOM_USER and DESCOM_PASS must be set together');
    else
      descom = {
        user: e.DESCOM_USER,
        pass: e.DESCOM_PASS,
        url: e.DESCOM_URL.replace(/\/+$/, ''),
        sender: e.DESCOM_SENDER,
        ratePerSecond: e.DESCOM_RATE_PER_S,
      };
  }

  let ovh: OvhConfig | undefined;
  const ovhKeys = [e.OVH_APP_KEY, e.OVH_APP_SECRET, e.OVH_CONSUMER_KEY];
  if (ovhKeys.some(Boolean)) {
    if (!ovhKeys.every(Boolean))
      problems.push('OVH_APP_KEY, OVH_APP_SECRET and OVH_CONSUMER_KEY must be set together');
    else if (!/^(ovh-eu|ovh-ca|ovh-us|https:\/\/.+)$/.test(e.OVH_ENDPOINT))
      problems.push('OVH_ENDPOINT: expected ovh-eu, ovh-ca, ovh-us or an https://host[:port]/basePath URL');
    else
      ovh = {
        endpoint: e.OVH_ENDPOINT,
        appKey: e.OVH_APP_KEY!,
        appSecret: e.OVH_APP_SECRET!,
        consumerKey: e.OVH_CONSUMER_KEY!,
        serviceName: e.OVH_SERVICE_NAME,
        sender: e.OVH_SENDER,
        batchSize: e.OVH_BATCH_SIZE,
        ratePerSecond: e.OVH_RATE_PER_S,
        noStopClause: e.OVH_NO_STOP_CLAUSE,
        settleMs: e.OVH_SETTLE_MS,
        validityMinutes: e.OVH_VALIDITY_MINUTES,
        dlrToken: e.OVH_DLR_TOKEN,
      };
  }

  const defaultProvider: ProviderId = e.SMSQ_PROVIDER ?? (descom ? 'descom' : ovh ? 'ovh' : 'simulator');
  if (defaultProvider === 'descom' && !descom)
    problems.push('SMSQ_PROVIDER: descom needs DESCOM_USER and DESCOM_PASS');
  if (defaultProvider === 'ovh' && !ovh)
    problems.push('SMSQ_PROVIDER: ovh needs OVH_APP_KEY, OVH_APP_SECRET and OVH_CONSUMER_KEY');
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
    dlrPollMs: e.SMSQ_DLR_POLL_MS,
    providers: {
      descom,
      ovh,
      simulator: {
        latencyMs: e.SIMULATOR_LATENCY_MS,
        failureRate: e.SIMULATOR_FAILURE_RATE,
        ratePerSecond: e.SIMULATOR_RATE_PER_S,
        deliveredRate: e.SIMULATOR_DELIVERED_RATE,
        dlrDelayMs: e.SIMULATOR_DLR_DELAY_MS,
      },
    },
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
