import { z } from 'zod';

/**
 * Field builders shared by every environment schema (src/config.ts and each provider's env.ts):
 * an empty value reads as unset, numbers are coerced from their text.
 */
export const emptyAsUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
export const optionalString = z.preprocess(emptyAsUndefined, z.string().optional());
export const int = (min: number) => z.coerce.number().int().min(min);
