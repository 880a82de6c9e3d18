/**
 * French public holidays (jours fériés, metropolitan France): eight fixed dates plus three that
 * follow Easter. Alsace-Moselle's extra days (Good Friday, 26 December) are not included.
 */

/** Easter Sunday of a Gregorian year (anonymous Gregorian computus, Meeus/Jones/Butcher): [month 1-12, day]. */
export function easterSunday(year: number): [month: number, day: number] {
  const a = year % 19;
  const b = Math.floor(year / 100);
  const c = year % 100;
  const d = Math.floor(b / 4);
  const e = b % 4;
  const f = Math.floor((b + 8) / 25);
  const g = Math.floor((b - f + 1) / 3);
  const h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4);
  const k = c % 4;
  const l = (32 + 2 * e + 2 * i - h - k) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const n = h + l - 7 * m + 114;
  return [Math.floor(n / 31), (n % 31) + 1];
}

const FIXED = [
  [1, 1], // Jour de l'an
  [5, 1], // Fête du Travail
  [5, 8], // Victoire 1945
  [7, 14], // Fête nationale
  [8, 15], // Assomption
  [11, 1], // Toussaint
  [11, 11], // Armistice
  [12, 25], // Noël
] as const;

/** Days after Easter Sunday: Easter Monday, Ascension, Whit Monday. */
const EASTER_OFFSETS = [1, 39, 50] as const;

const DAY_MS = 86_400_000;
const cache = new Map<number, ReadonlySet<string>>();

function dateKey(month: number, day: number): string {
  return `${month}-${day}`;
}

/** The holidays of `year`, as `month-day` keys (`5-8`). */
export function frenchHolidays(year: number): ReadonlySet<string> {
  let set = cache.get(year);
  if (!set) {
    const keys = new Set<string>(FIXED.map(([m, d]) => dateKey(m, d)));
    const [em, ed] = easterSunday(year);
    const easter = Date.UTC(year, em - 1, ed);
    for (const offset of EASTER_OFFSETS) {
      const date = new Date(easter + offset * DAY_MS);
      keys.add(dateKey(date.getUTCMonth() + 1, date.getUTCDate()));
    }
    set = keys;
    cache.set(year, set);
  }
  return set;
}

/** Whether a calendar date (month 1-12) is a French public holiday. */
export function isFrenchHoliday(year: number, month: number, day: number): boolean {
  return frenchHolidays(year).has(dateKey(month, day));
}
