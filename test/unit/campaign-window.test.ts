import { describe, expect, it } from 'vitest';
import { easterSunday, frenchHolidays, isFrenchHoliday } from '../../src/message/french-holidays.js';
import {
  createWindowHold,
  nextOpening,
  zonedTimeToUtc,
  type SendWindow,
} from '../../src/message/send-window.js';

const FR: SendWindow = { preset: 'fr-commercial' };
const PARIS = 'Europe/Paris';
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('Easter computus and French public holidays', () => {
  it.each([
    [2000, [4, 23]],
    [2019, [4, 21]],
    [2024, [3, 31]],
    [2025, [4, 20]],
    [2026, [4, 5]],
    [2027, [3, 28]],
    [2038, [4, 25]],
  ])('Easter %i is %j', (year, expected) => {
    expect(easterSunday(year)).toEqual(expected);
  });

  it('lists the eight fixed days and the three that follow Easter', () => {
    // 2025: Easter Monday 21 April, Ascension 29 May, Whit Monday 9 June.
    expect([...frenchHolidays(2025)].sort()).toEqual(
      ['1-1', '4-21', '5-1', '5-8', '5-29', '6-9', '7-14', '8-15', '11-1', '11-11', '12-25'].sort(),
    );
    expect(isFrenchHoliday(2024, 5, 9)).toBe(true); // Ascension 2024
    expect(isFrenchHoliday(2024, 5, 20)).toBe(true); // Whit Monday 2024
    expect(isFrenchHoliday(2025, 4, 22)).toBe(false);
  });
});

describe('nextOpening', () => {
  it('is undefined inside the window', () => {
    expect(nextOpening(FR, PARIS, at('2025-06-10T08:00:00Z'))).toBeUndefined(); // Tue 10:00 CEST
    expect(nextOpening(FR, PARIS, at('2025-06-10T06:00:00Z'))).toBeUndefined(); // Tue 08:00:00 exactly
  });

  it('opens at 08:00 the same day before the window', () => {
    expect(iso(nextOpening(FR, PARIS, at('2025-06-10T05:59:59Z')))).toBe('2025-06-10T06:00:00.000Z');
  });

  it('closes at 20:00 (exclusive) and skips Sunday', () => {
    // Saturday 14 June 2025, 20:00 CEST → Monday 16 June 08:00 CEST.
    expect(iso(nextOpening(FR, PARIS, at('2025-06-14T18:00:00Z')))).toBe('2025-06-16T06:00:00.000Z');
    // Sunday noon → Monday 08:00.
    expect(iso(nextOpening(FR, PARIS, at('2025-06-15T10:00:00Z')))).toBe('2025-06-16T06:00:00.000Z');
    expect(nextOpening(FR, PARIS, at('2025-06-14T17:59:59Z'))).toBeUndefined(); // Saturday 19:59:59
  });

  it('skips a Sunday followed by a public holiday (Easter Monday)', () => {
    // Saturday 19 April 2025 21:00 → Sunday 20 (Easter) → Monday 21 (Easter Monday) → Tuesday 22 08:00.
    expect(iso(nextOpening(FR, PARIS, at('2025-04-19T19:00:00Z')))).toBe('2025-04-22T06:00:00.000Z');
  });

  it('skips a weekday holiday (Ascension, Thursday 29 May 2025)', () => {
    expect(iso(nextOpening(FR, PARIS, at('2025-05-28T19:30:00Z')))).toBe('2025-05-30T06:00:00.000Z');
    expect(iso(nextOpening(FR, PARIS, at('2025-05-29T09:00:00Z')))).toBe('2025-05-30T06:00:00.000Z');
  });

  it('skips Christmas and New Year across a year end', () => {
    // Wednesday 24 December 2025 20:00 CET → Thursday 25 (Noël) → Friday 26 08:00 CET.
    expect(iso(nextOpening(FR, PARIS, at('2025-12-24T19:00:00Z')))).toBe('2025-12-26T07:00:00.000Z');
    // Wednesday 31 December 2025 20:30 → Thursday 1 January 2026 (holiday) → Friday 2 08:00.
    expect(iso(nextOpening(FR, PARIS, at('2025-12-31T19:30:00Z')))).toBe('2026-01-02T07:00:00.000Z');
  });

  it('follows the DST change: 08:00 is 07:00Z before and 06:00Z after', () => {
    // Friday 28 March 2025 21:00 CET → Saturday 29 08:00 CET (UTC+1).
    expect(iso(nextOpening(FR, PARIS, at('2025-03-28T20:00:00Z')))).toBe('2025-03-29T07:00:00.000Z');
    // Saturday 29 March 20:30 CET → Sunday 30 (clocks go forward) → Monday 31 08:00 CEST (UTC+2).
    expect(iso(nextOpening(FR, PARIS, at('2025-03-29T19:30:00Z')))).toBe('2025-03-31T06:00:00.000Z');
    // Autumn: Saturday 25 October 20:30 CEST → Monday 27 08:00 CET.
    expect(iso(nextOpening(FR, PARIS, at('2025-10-25T18:30:00Z')))).toBe('2025-10-27T07:00:00.000Z');
  });

  it('opens at the end of the DST gap when the opening time does not exist', () => {
    const window: SendWindow = { days: [7], from: '02:30', to: '04:00' };
    // Sunday 30 March 2025: 02:00 CET jumps to 03:00 CEST at 01:00Z; 02:30 never happens.
    expect(iso(nextOpening(window, PARIS, at('2025-03-30T00:00:00Z')))).toBe('2025-03-30T01:00:00.000Z');
    expect(iso(zonedTimeToUtc(PARIS, 2025, 3, 30, 150))).toBe('2025-03-30T01:00:00.000Z');
  });

  it('opens at the first of two identical wall times when clocks go back', () => {
    const window: SendWindow = { days: [7], from: '02:30', to: '03:00' };
    // Sunday 26 October 2025: 02:30 happens at 00:30Z (CEST) and again at 01:30Z (CET).
    expect(iso(nextOpening(window, PARIS, at('2025-10-26T00:00:00Z')))).toBe('2025-10-26T00:30:00.000Z');
  });

  it('reads a custom window in its own time zone', () => {
    const window: SendWindow = { days: [1, 2, 3, 4, 5], from: '09:30', to: '17:00' };
    // Friday 6 June 2025 17:00 in New York (EDT, UTC-4) → Monday 9 June 09:30 EDT.
    expect(iso(nextOpening(window, 'America/New_York', at('2025-06-06T21:00:00Z')))).toBe(
      '2025-06-09T13:30:00.000Z',
    );
    expect(nextOpening(window, 'America/New_York', at('2025-06-06T20:59:00Z'))).toBeUndefined();
  });
});

describe('createWindowHold', () => {
  const window: SendWindow = { days: [1, 2, 3, 4, 5, 6, 7], from: '10:00', to: '11:00' };

  it('does not hold a batch without a window, or inside it', () => {
    const hold = createWindowHold();
    expect(hold({}, at('2025-06-10T03:00:00Z'))).toBeUndefined();
    expect(hold({ window, timezone: 'UTC' }, at('2025-06-10T10:30:00Z'))).toBeUndefined();
  });

  it('holds until the next opening, or until expiresAt when that comes first', () => {
    const hold = createWindowHold();
    const now = at('2025-06-10T09:00:00Z');
    expect(iso(hold({ window, timezone: 'UTC' }, now))).toBe('2025-06-10T10:00:00.000Z');
    expect(iso(hold({ window, timezone: 'UTC', expiresAt: '2025-06-10T09:30:00.000Z' }, now))).toBe(
      '2025-06-10T09:30:00.000Z',
    );
  });

  it('judges the window by its clock and answers in the caller’s time', () => {
    const wall = at('2025-06-10T09:59:59Z');
    const hold = createWindowHold({ clock: () => wall });
    expect(hold({ window, timezone: 'UTC' }, 1_000_000)).toBe(1_001_000);
  });
});
