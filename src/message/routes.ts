import { isSupportedCountry, parsePhoneNumberWithError, type CountryCode } from 'libphonenumber-js/max';
import { z } from 'zod';
import type { OutboundMessage, ProviderId } from './types.js';

/**
 * One routing rule of `SMSQ_ROUTES`: numbers it matches go to `providers[0]`, and fail over to the
 * next ones in order. `match` is a number prefix (`+33`), a country (`FR`, as libphonenumber reads
 * the number), or `{}` (every number).
 */
export interface RouteRule {
  match: { prefix: string } | { country: string } | Record<string, never>;
  providers: ProviderId[];
}

const ruleSchema = z
  .object({
    match: z.union([
      z.object({ prefix: z.string().regex(/^\+\d{1,15}$/, 'a + followed by digits') }).strict(),
      z
        .object({
          country: z
            .string()
            .refine((c) => isSupportedCountry(c), 'an ISO 3166-1 alpha-2 country code (e.g. FR)'),
        })
        .strict(),
      z.object({}).strict(),
    ]),
    providers: z
      .array(z.string().min(1))
      .min(1)
      .refine((list) => new Set(list).size === list.length, 'a provider is listed twice'),
  })
  .strict();

/**
 * Parses `SMSQ_ROUTES` (the JSON text itself; the caller reads `@file.json`). Returns the rules, or
 * the problems, each naming SMSQ_ROUTES and the rule index, e.g. `SMSQ_ROUTES[1].providers.0: …`.
 */
export function parseRoutes(
  text: string,
  configured: readonly ProviderId[],
): { rules: RouteRule[]; problems: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { rules: [], problems: [`SMSQ_ROUTES: not valid JSON (${(err as Error).message})`] };
  }
  if (!Array.isArray(json)) return { rules: [], problems: ['SMSQ_ROUTES: expected a JSON array of rules'] };
  const rules: RouteRule[] = [];
  const problems: string[] = [];
  json.forEach((raw, index) => {
    const parsed = ruleSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const path = issue.path.length > 0 ? `.${issue.path.map(String).join('.')}` : '';
        problems.push(`SMSQ_ROUTES[${index}]${path}: ${issue.message}`);
      }
      return;
    }
    parsed.data.providers.forEach((provider, i) => {
      if (!configured.includes(provider))
        problems.push(
          `SMSQ_ROUTES[${index}].providers.${i}: provider ${provider} is not configured (configured: ${configured.join(', ')})`,
        );
    });
    rules.push(parsed.data);
  });
  return { rules, problems };
}

function countryOf(e164: string): string | undefined {
  try {
    return parsePhoneNumberWithError(e164).country;
  } catch {
    return undefined;
  }
}

function matches(rule: RouteRule, e164: string, country: () => string | undefined): boolean {
  if ('prefix' in rule.match) return e164.startsWith(rule.match.prefix);
  if ('country' in rule.match) return country() === (rule.match.country as CountryCode);
  return true;
}

/**
 * The providers a number goes through, in failover order. Precedence: the request's `provider`
 * (that provider only), then the first matching rule, then `defaultProvider` (also when no rule
 * matches).
 */
export function routeOf(
  e164: string,
  rules: readonly RouteRule[],
  opts: { requestProvider?: ProviderId; defaultProvider: ProviderId },
): ProviderId[] {
  if (opts.requestProvider) return [opts.requestProvider];
  let country: string | undefined | null = null;
  const lazyCountry = () => (country === null ? (country = countryOf(e164)) : country);
  const rule = rules.find((r) => matches(r, e164, lazyCountry));
  return rule ? [...rule.providers] : [opts.defaultProvider];
}

/** A request's messages grouped by route (in first-seen order), each group's recipients in their order. */
export function groupByRoute(
  messages: readonly OutboundMessage[],
  route: (e164: string) => ProviderId[],
): { route: ProviderId[]; messages: OutboundMessage[] }[] {
  const groups = new Map<string, { route: ProviderId[]; byText: Map<string, string[]> }>();
  for (const message of messages) {
    for (const to of message.to) {
      const providers = route(to);
      const key = providers.join(',');
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { route: providers, byText: new Map() }));
      const list = group.byText.get(message.text);
      if (list) list.push(to);
      else group.byText.set(message.text, [to]);
    }
  }
  return [...groups.values()].map((g) => ({
    route: g.route,
    messages: [...g.byText].map(([text, to]) => ({ text, to })),
  }));
}
