import { z } from 'zod';
import { emptyAsUndefined, int, optionalString } from '../../env-fields.js';
import type { ProviderEnvResult } from '../module.js';

/** Descom's env keys; merged into the one schema of src/config.ts. */
export const descomEnvShape = {
  /** Descom user (header `DSMS-User`); set with DESCOM_PASS. */
  DESCOM_USER: optionalString,
  /** Descom password (header `DSMS-Pass`); set with DESCOM_USER. */
  DESCOM_PASS: optionalString,
  /** Base URL (http allowed, for tests and proxies). @defaultValue https://api.descomsms.com/api */
  DESCOM_URL: z.preprocess(emptyAsUndefined, z.url().default('https://api.descomsms.com/api')),
  /** Descom requests per second (one queue limiter). @defaultValue 10 */
  DESCOM_RATE_PER_S: z.preprocess(emptyAsUndefined, int(1).default(10)),
  /** Sender name or number, as validated with Descom. */
  DESCOM_SENDER: optionalString,
};

export type DescomEnv = z.output<z.ZodObject<typeof descomEnvShape>>;

export interface DescomConfig {
  user: string;
  pass: string;
  url: string;
  sender?: string;
  ratePerSecond: number;
}

/** Descom is configured when its credentials are: both, or it is a mistake. */
export function descomConfigFromEnv(e: DescomEnv): ProviderEnvResult<DescomConfig> {
  if (!e.DESCOM_USER && !e.DESCOM_PASS) return { problems: [] };
  if (!e.DESCOM_USER || !e.DESCOM_PASS)
    return { problems: ['DESCOM_USER and DESCOM_PASS must be set together'] };
  return {
    config: {
      user: e.DESCOM_USER,
      pass: e.DESCOM_PASS,
      url: e.DESCOM_URL.replace(/\/+$/, ''),
      sender: e.DESCOM_SENDER,
      ratePerSecond: e.DESCOM_RATE_PER_S,
    },
    problems: [],
  };
}
