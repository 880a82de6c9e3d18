/**
 * Masking of job data for the dashboard: phone numbers keep their first 3 and last 3 characters
 * (`+34*****789`, a fixed 5 stars so the length is not shown either) and message texts become
 * `[N chars]`, wherever they sit in the data.
 */

/** Keys whose string values are message texts. */
const TEXT_KEYS = new Set(['text', 'template']);
/** Keys whose string values are phone numbers, whatever they look like. */
const NUMBER_KEYS = new Set([
  'to',
  'phone',
  'number',
  'numbers',
  'msisdn',
  'receivers',
  'recipients',
  'receiver',
]);

/**
 * An international number inside any string: `+` or `00`, then 8 to 15 digits, optionally grouped
 * by single spaces, dots or dashes (`+34 600 000 001`). Not preceded by a word character or `+`.
 */
const INTERNATIONAL = /(?<![\w+])(?:\+|00)\d(?:[ .-]?\d){7,14}(?!\d)/g;
/** A whole string that is a national number: 9 to 15 digits, optionally grouped (`600 000 001`). */
const NATIONAL = /^\(?\d(?:[ ().-]{0,2}\d){8,14}$/;

export function maskNumber(raw: string): string {
  const compact = raw.replace(/[\s().-]/g, '');
  if (compact.length <= 6) return '*****';
  return `${compact.slice(0, 3)}*****${compact.slice(-3)}`;
}

export function maskText(text: string): string {
  return `[${[...text].length} chars]`;
}

/** Masks every phone number found inside a string (international form anywhere, or the whole string). */
export function maskString(value: string): string {
  if (NATIONAL.test(value.trim())) return maskNumber(value.trim());
  return value.replace(INTERNATIONAL, (found) => maskNumber(found));
}

function maskUnder(key: string | undefined, value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') {
    if (key !== undefined && TEXT_KEYS.has(key)) return maskText(value);
    if (key !== undefined && NUMBER_KEYS.has(key)) return maskNumber(value);
    return maskString(value);
  }
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => maskUnder(key, item, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskUnder(k, v, seen);
  return out;
}

/**
 * Deep copy of `data` with numbers and texts masked: strings under number keys (`to`, `phone`, …,
 * also inside arrays), strings under text keys (`text`, …), and any E.164-looking string anywhere.
 */
export function maskJobData(data: unknown): unknown {
  return maskUnder(undefined, data, new WeakSet());
}
