import { describe, expect, it } from 'vitest';
import { normalizeNumber, normalizeRecipients } from '../../src/message/recipients.js';

describe('normalizeNumber', () => {
  it.each([
    ['+34600000001', 'ES', '+34600000001'],
    ['600 000 001', 'ES', '+34600000001'],
    ['0034600000001', 'ES', '+34600000001'],
    ['+33 6 12 34 56 78', 'ES', '+33612345678'],
    ['06 12 34 56 78', 'FR', '+33612345678'],
  ])('normalises %s (default %s) to %s', (raw, country, e164) => {
    expect(normalizeNumber(raw, country)).toEqual({ ok: true, e164 });
  });

  it.each([
    ['', 'empty'],
    ['hello', 'not a phone number'],
    ['+34 91 234 56 78', 'a fixed line cannot receive SMS'],
    ['+3460', 'not a valid number for its country'],
    ['+34600000001x', 'contains characters that are not part of a phone number'],
    ['6666666a', 'contains characters that are not part of a phone number'],
  ])('refuses %j with a reason (%s)', (raw, reason) => {
    expect(normalizeNumber(raw, 'ES')).toEqual({ ok: false, reason });
  });

  it('gives the same answer for an E.164 number it has just found valid, whatever the default country', () => {
    // The second time is a lookup (a campaign's enqueue re-validates the numbers its rows gave).
    expect(normalizeNumber('06 12 34 56 79', 'FR')).toEqual({ ok: true, e164: '+33612345679' });
    expect(normalizeNumber(' +33612345679 ', 'ES')).toEqual({ ok: true, e164: '+33612345679' });
    expect(normalizeNumber('0612345679', 'ES')).toEqual({
      ok: false,
      reason: 'not a valid number for its country',
    });
    expect(normalizeNumber('+34 91 234 56 78', 'ES')).toEqual({
      ok: false,
      reason: 'a fixed line cannot receive SMS',
    });
    expect(normalizeNumber('+34912345678', 'ES')).toEqual({
      ok: false,
      reason: 'a fixed line cannot receive SMS',
    });
  });
});

describe('normalizeRecipients', () => {
  it('removes duplicates after normalisation, counts them, and lists invalid numbers with reasons', () => {
    const result = normalizeRecipients(
      ['+34600000001', '600000001', '0034600000001', 'x', '+34600000002'],
      'ES',
    );
    expect(result).toEqual({
      valid: ['+34600000001', '+34600000002'],
      invalid: [{ to: 'x', reason: 'not a phone number' }],
      duplicates: 2,
    });
  });
});
