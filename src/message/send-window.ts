import { z } from 'zod';
import { isFrenchHoliday } from './french-holidays.js';

/**
 * Send windows: when a campaign's SMS may go out, in the campaign's time zone. Checked at
 * dispatch (each batch, just before its provider call) so a backlog that runs past the window
 * waits for the next opening instead of sending at night.
 */

/** True when `tz` is an IANA time zone this runtime knows (`Europe/Paris`, `UTC`). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const timeZoneSchema = z
  .string()
  .min(1)
  .refine(isTimeZone, { message: 'not an IANA time zone (e.g. Europe/Paris)' });

const hhmm = z.string().regex(/^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'expected HH:MM (00:00 to 24:00)');

function minutesOf(value: string): number {
  const [h = '0', m = '0'] = value.split(':');
  return Number(h) * 60 + Number(m);
}

/**
 * `{ preset: 'fr-commercial' }`: Monday to Saturday 08:00–20:00, never on a French public holiday
 * (the hours French rules allow for commercial SMS). Or `{ days, from, to }`: ISO weekdays
 * (1 = Monday … 7 = Sunday) and a daily range, `to` exclusive.
 */
export const sendWindowSchema = z.union(
  [
    z.object({ preset: z.literal('fr-commercial') }).strict(),
    z
      .object({
        days: z.array(z.number().int().min(1).max(7)).min(1).max(7),
        from: hhmm,
        to: hhmm,
      })
      .strict()
      .refine((w) => minutesOf(w.from) < minutesOf(w.to), {
        message: 'from must be before to',
        path: ['to'],
      }),
  ],
  { error: 'expected { preset: "fr-commercial" } or { days: [1-7], from: "HH:MM", to: "HH:MM" }' },
);

export type SendWindow = z.infer<typeof sendWindowSchema>;

interface ResolvedWindow {
  days: ReadonlySet<number>;
  fromMinute: number;
  toMinute: number;
  frenchHolidays: boolean;
}

function resolveWindow(window: SendWindow): ResolvedWindow {
  if ('preset' in window) {
    return { days: new Set([1, 2, 3, 4, 5, 6]), fromMinute: 8 * 60, toMinute: 20 * 60, frenchHolidays: true };
  }
  return {
    days: new Set(window.days),
    fromMinute: minutesOf(window.from),
    toMinute: minutesOf(window.to),
    frenchHolidays: false,
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  /** Seconds since local midnight. */
  second: number;
}

function wallClock(tz: string, at: number): WallClock {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(tz).formatToParts(new Date(at))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return {
    year: parts.year ?? 1970,
    month: parts.month ?? 1,
    day: parts.day ?? 1,
    second: (parts.hour ?? 0) * 3600 + (parts.minute ?? 0) * 60 + (parts.second ?? 0),
  };
}

/** The zone's UTC offset at an instant, in ms (to the second). */
function offsetAt(tz: string, at: number): number {
  const w = wallClock(tz, at);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day) + w.second * 1000;
  return asUtc - Math.floor(at / 1000) * 1000;
}

const DAY_MS = 86_400_000;

/**
 * The first instant at which the local time in `tz` reaches the given wall time. When that wall
 * time happens twice (autumn DST change), the first one; when it does not exist (spring DST gap),
 * the end of the gap.
 */
export function zonedTimeToUtc(tz: string, year: number, month: number, day: number, minute: number): number {
  const wanted = Date.UTC(year, month - 1, day, 0, minute);
  const offsets = [
    ...new Set([offsetAt(tz, wanted - DAY_MS), offsetAt(tz, wanted), offsetAt(tz, wanted + DAY_MS)]),
  ];
  const exact = offsets.map((o) => wanted - o).filter((t) => offsetAt(tz, t) === wanted - t);
  if (exact.length > 0) return Math.min(...exact);
  // A skipped wall time: find the transition, the first instant whose local time is past it.
  let lo = wanted - Math.max(...offsets);
  let hi = wanted - Math.min(...offsets);
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (mid + offsetAt(tz, mid) >= wanted) hi = mid;
    else lo = mid;
  }
  return hi;
}

function isoWeekday(year: number, month: number, day: number): number {
  const d = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  return d === 0 ? 7 : d;
}

function isOpenDay(w: ResolvedWindow, year: number, month: number, day: number): boolean {
  if (!w.days.has(isoWeekday(year, month, day))) return false;
  return !(w.frenchHolidays && isFrenchHoliday(year, month, day));
}

/**
 * When the window next opens, as an epoch ms, or `undefined` when it is open at `now`.
 * Pure: the same arguments always give the same answer.
 */
export function nextOpening(window: SendWindow, tz: string, now: number): number | undefined {
  const w = resolveWindow(window);
  const local = wallClock(tz, now);
  const today = isOpenDay(w, local.year, local.month, local.day);
  if (today && local.second >= w.fromMinute * 60 && local.second < w.toMinute * 60) return undefined;
  // Public holidays and Sundays never close more than a few days in a row; two weeks is plenty.
  for (let i = 0; i <= 14; i += 1) {
    const date = new Date(Date.UTC(local.year, local.month - 1, local.day + i));
    const [y, m, d] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
    if (!isOpenDay(w, y, m, d)) continue;
    if (i === 0 && local.second >= w.fromMinute * 60) continue;
    const opening = zonedTimeToUtc(tz, y, m, d, w.fromMinute);
    if (opening > now) return opening;
  }
  throw new Error('send window never opens within 14 days');
}

/** The send window a batch carries (from its request), if any. */
export interface WindowedRecord {
  window?: SendWindow;
  timezone?: string;
  expiresAt?: string;
}

/**
 * The batch processor's `holdUntil` hook: a batch carrying a window that is closed now waits for
 * its next opening — or for its `expiresAt`, if that comes first, so it ends `expired` on time.
 * `clock` reads the wall clock the window is judged by (tests move it; default: the processor's now).
 */
export function createWindowHold(opts: { clock?: () => number } = {}) {
  return function holdUntil(record: WindowedRecord, now: number): number | undefined {
    if (!record.window || !record.timezone) return undefined;
    const wall = opts.clock?.() ?? now;
    const opening = nextOpening(record.window, record.timezone, wall);
    if (opening === undefined) return undefined;
    const until = now + (opening - wall);
    const expiresAt = record.expiresAt ? Date.parse(record.expiresAt) : Number.POSITIVE_INFINITY;
    // Never "now or earlier" while the window is closed: that would send.
    return Math.max(Math.min(until, expiresAt), now + 1);
  };
}

/** The default hook, wired into every batch worker by `startWorkers`. */
export const holdUntilWindow = createWindowHold();
