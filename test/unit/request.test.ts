import { describe, expect, it } from 'vitest';
import { InputError, TooLargeError } from '../../src/errors.js';
import { prepareRequest } from '../../src/message/request.js';
import { spanishMobiles } from '../helpers/numbers.js';

const opts = { defaultCountry: 'ES' };

function issuesOf(input: unknown) {
  try {
    prepareRequest(input, opts);
  } catch (err) {
    if (err instanceof InputError) return err.issues;
    throw err;
  }
  throw new Error('expected an InputError');
}

describe('prepareRequest', () => {
  it('estimates credits as parts × recipients and reports the encoding', () => {
    const prepared = prepareRequest({ to: ['+34600000001', '+34600000002'], text: 'á'.repeat(71) }, opts);
    expect(prepared).toMatchObject({
      recipients: 2,
      total: 2,
      segments: 2,
      encoding: 'UCS-2',
      estimatedCredits: 4,
    });
  });

  it('names every bad field with its path', () => {
    expect(issuesOf({ to: [], sender: 'WAY-TOO-LONG-SENDER', sendAt: 'tomorrow' })).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'to' }),
        expect.objectContaining({ path: 'sender' }),
        expect.objectContaining({ path: 'sendAt' }),
      ]),
    );
    expect(issuesOf({ to: '+34600000001' })).toEqual([{ path: 'text', message: 'required' }]);
    expect(issuesOf({ to: '+34600000001', text: 'x', bogus: 1 })[0]?.message).toMatch(/bogus/);
  });

  it('refuses a request whose numbers are all invalid, naming each', () => {
    expect(issuesOf({ to: ['nope', '+34600000001x'], text: 'x' })).toEqual([
      { path: 'to.0', message: 'not a phone number' },
      { path: 'to.1', message: 'contains characters that are not part of a phone number' },
    ]);
    expect(
      issuesOf({
        messages: [
          { to: ['+34600000001'], text: 'a' },
          { to: ['bad'], text: 'b' },
        ],
        to: 'x',
      })[0]?.path,
    ).toBe('messages');
  });

  it('accepts a request with some invalid numbers and counts them in the total', () => {
    const prepared = prepareRequest(
      {
        messages: [
          { to: ['+34600000001', 'bad'], text: 'a' },
          { to: '+34600000001', text: 'b' },
        ],
      },
      opts,
    );
    expect(prepared.recipients).toBe(2);
    expect(prepared.total).toBe(3);
    expect(prepared.invalid).toEqual([{ to: 'bad', reason: 'not a phone number' }]);
  });

  it('counts an invalid number repeated in a request once, as it counts a repeated valid one', () => {
    const prepared = prepareRequest(
      {
        messages: [
          { to: ['+34600000001', 'bad', 'bad', '+34600000001'], text: 'a' },
          { to: ['bad', '+34600000002'], text: 'a' },
        ],
      },
      opts,
    );
    expect(prepared.recipients).toBe(2);
    expect(prepared.invalid).toEqual([{ to: 'bad', reason: 'not a phone number' }]);
    expect(prepared.total).toBe(3);
    expect(prepared.duplicates).toBe(3);
  });

  it('refuses more than 10,000 recipients and points to CSV import', () => {
    expect(() => prepareRequest({ to: spanishMobiles(10_001), text: 'x' }, opts)).toThrow(TooLargeError);
    expect(() => prepareRequest({ to: spanishMobiles(10_001), text: 'x' }, opts)).toThrow(/smsq import/);
  });
});
