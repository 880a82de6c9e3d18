import { parsePhoneNumberWithError, ParseError, type CountryCode } from 'libphonenumber-js/max';

export interface InvalidRecipient {
  to: string;
  reason: string;
}

export interface NormalizedRecipients {
  /** Distinct valid numbers in E.164, in first-seen order. */
  valid: string[];
  invalid: InvalidRecipient[];
  /** How many entries were dropped because they normalised to a number already listed. */
  duplicates: number;
}

const PARSE_REASONS: Record<string, string> = {
  INVALID_COUNTRY: 'no country code and no default country to resolve it',
  NOT_A_NUMBER: 'not a phone number',
  TOO_SHORT: 'too short',
  TOO_LONG: 'too long',
  INVALID_LENGTH: 'invalid length',
};

/** Normalises one number to E.164, or says why it cannot be sent to. */
export function normalizeNumber(
  raw: string,
  defaultCountry: string,
): { ok: true; e164: string } | { ok: false; reason: string } {
  const input = raw.trim();
  if (input === '') return { ok: false, reason: 'empty' };
  // libphonenumber extracts a number from surrounding text; a recipient list should hold numbers only.
  if (/[^\d\s+().-]/.test(input)) {
    return {
      ok: false,
      reason: /\d/.test(input)
        ? 'contains characters that are not part of a phone number'
        : 'not a phone number',
    };
  }
  // Providers and spreadsheets write international numbers as 00<country code>…
  const candidate = input.startsWith('00') ? `+${input.slice(2)}` : input;
  try {
    const parsed = parsePhoneNumberWithError(candidate, defaultCountry as CountryCode);
    // A type is only found for a valid number: isValid() would match the same patterns a second
    // time, so it is asked only when there is no type (the answer for a country without types).
    const type = parsed.getType();
    if (type === undefined && !parsed.isValid())
      return { ok: false, reason: 'not a valid number for its country' };
    if (type === 'FIXED_LINE') return { ok: false, reason: 'a fixed line cannot receive SMS' };
    return { ok: true, e164: parsed.number };
  } catch (err) {
    if (err instanceof ParseError) return { ok: false, reason: PARSE_REASONS[err.message] ?? err.message };
    throw err;
  }
}

/** Normalises a request's recipients: E.164, invalid ones with a reason, duplicates removed and counted. */
export function normalizeRecipients(raw: readonly string[], defaultCountry: string): NormalizedRecipients {
  const seen = new Set<string>();
  const seenInvalid = new Set<string>();
  const valid: string[] = [];
  const invalid: InvalidRecipient[] = [];
  let duplicates = 0;
  for (const to of raw) {
    const result = normalizeNumber(to, defaultCountry);
    if (!result.ok) {
      // The same bad entry twice is one recipient, counted invalid once (and once as a duplicate).
      if (seenInvalid.has(to.trim())) duplicates += 1;
      else {
        seenInvalid.add(to.trim());
        invalid.push({ to, reason: result.reason });
      }
    } else if (seen.has(result.e164)) {
      duplicates += 1;
    } else {
      seen.add(result.e164);
      valid.push(result.e164);
    }
  }
  return { valid, invalid, duplicates };
}

/** Numbers already normalised (E.164, valid): only their duplicates are removed and counted. */
export function distinctNumbers(e164: readonly string[]): NormalizedRecipients {
  const valid = [...new Set(e164)];
  return { valid, invalid: [], duplicates: e164.length - valid.length };
}
