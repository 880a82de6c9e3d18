import type { Redis } from 'ioredis';
import { normalizeNumber } from '../message/recipients.js';

/** The opt-out list: a Redis set of E.164 numbers that every send path skips. */
export class SuppressionList {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly defaultCountry: string,
  ) {}

  /** Normalises and adds numbers; returns those that could not be read as phone numbers. */
  async add(
    numbers: readonly string[],
  ): Promise<{ added: number; invalid: { to: string; reason: string }[] }> {
    const valid: string[] = [];
    const invalid: { to: string; reason: string }[] = [];
    for (const raw of numbers) {
      const result = normalizeNumber(raw, this.defaultCountry);
      if (result.ok) valid.push(result.e164);
      else invalid.push({ to: raw, reason: result.reason });
    }
    const added = valid.length > 0 ? await this.redis.sadd(this.key, ...valid) : 0;
    return { added, invalid };
  }

  async remove(number: string): Promise<boolean> {
    const result = normalizeNumber(number, this.defaultCountry);
    if (!result.ok) return false;
    return (await this.redis.srem(this.key, result.e164)) > 0;
  }

  async has(number: string): Promise<boolean> {
    const result = normalizeNumber(number, this.defaultCountry);
    if (!result.ok) return false;
    return (await this.redis.sismember(this.key, result.e164)) === 1;
  }

  /** The subset of `numbers` (E.164) on the list. */
  async filterListed(numbers: readonly string[]): Promise<Set<string>> {
    const listed = new Set<string>();
    const chunk = 1_000;
    for (let i = 0; i < numbers.length; i += chunk) {
      const slice = numbers.slice(i, i + chunk);
      const flags = await this.redis.smismember(this.key, ...slice);
      slice.forEach((n, j) => {
        if (flags[j] === 1) listed.add(n);
      });
    }
    return listed;
  }
}
