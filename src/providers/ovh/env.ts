import { z } from 'zod';
import { emptyAsUndefined, int, optionalString } from '../../env-fields.js';
import type { ProviderEnvResult } from '../module.js';

/** OVHcloud SMS's env keys; merged into the one schema of src/config.ts. */
export const ovhEnvShape = {
  /** `ovh-eu`, `ovh-ca`, `ovh-us`, or an `https://host[:port]/basePath` URL. @defaultValue ovh-eu */
  OVH_ENDPOINT: z.preprocess(emptyAsUndefined, z.string().default('ovh-eu')),
  /** OVH application key; set with OVH_APP_SECRET and OVH_CONSUMER_KEY. */
  OVH_APP_KEY: optionalString,
  /** OVH application secret. */
  OVH_APP_SECRET: optionalString,
  /** OVH consumer key. */
  OVH_CONSUMER_KEY: optionalString,
  /** SMS account; unset: discovered with `GET /sms` when the account has exactly one. */
  OVH_SERVICE_NAME: optionalString,
  /** Sender, as registered with OVH. */
  OVH_SENDER: optionalString,
  /** Receivers per OVH job (OVH documents no cap and suggests 500). @defaultValue 500 */
  OVH_BATCH_SIZE: z.preprocess(emptyAsUndefined, int(1).max(500).default(500)),
  /** OVH requests per second (OVH: about 60 per minute per consumer key is safe). @defaultValue 1 */
  OVH_RATE_PER_S: z.preprocess(emptyAsUndefined, int(1).default(1)),
  /**
   * How long an ambiguous OVH batch is looked up (outgoing SMS by tag, pending jobs by receiver and
   * text) before it may be sent again, in ms; the window starts once the provider deadline passed.
   * @defaultValue 120000
   */
  OVH_SETTLE_MS: z.preprocess(emptyAsUndefined, int(0).default(120_000)),
  /** `true`: transactional sends, no STOP mention appended (OVH `noStopClause`). @defaultValue true */
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
};

export type OvhEnv = z.output<z.ZodObject<typeof ovhEnvShape>>;

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

/** OVH is configured when its three keys are: all three, or it is a mistake. */
export function ovhConfigFromEnv(e: OvhEnv): ProviderEnvResult<OvhConfig> {
  const keys = [e.OVH_APP_KEY, e.OVH_APP_SECRET, e.OVH_CONSUMER_KEY];
  if (!keys.some(Boolean)) return { problems: [] };
  if (!e.OVH_APP_KEY || !e.OVH_APP_SECRET || !e.OVH_CONSUMER_KEY)
    return { problems: ['OVH_APP_KEY, OVH_APP_SECRET and OVH_CONSUMER_KEY must be set together'] };
  if (!/^(ovh-eu|ovh-ca|ovh-us|https:\/\/.+)$/.test(e.OVH_ENDPOINT))
    return {
      problems: ['OVH_ENDPOINT: expected ovh-eu, ovh-ca, ovh-us or an https://host[:port]/basePath URL'],
    };
  return {
    config: {
      endpoint: e.OVH_ENDPOINT,
      appKey: e.OVH_APP_KEY,
      appSecret: e.OVH_APP_SECRET,
      consumerKey: e.OVH_CONSUMER_KEY,
      serviceName: e.OVH_SERVICE_NAME,
      sender: e.OVH_SENDER,
      batchSize: e.OVH_BATCH_SIZE,
      ratePerSecond: e.OVH_RATE_PER_S,
      noStopClause: e.OVH_NO_STOP_CLAUSE,
      settleMs: e.OVH_SETTLE_MS,
      validityMinutes: e.OVH_VALIDITY_MINUTES,
      dlrToken: e.OVH_DLR_TOKEN,
    },
    problems: [],
  };
}
