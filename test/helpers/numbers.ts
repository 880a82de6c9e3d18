/** Distinct valid Spanish mobile numbers in E.164: +34600000000, +34600000001, … */
export function spanishMobiles(count: number, offset = 0): string[] {
  return Array.from({ length: count }, (_, i) => `+3460${String(offset + i).padStart(7, '0')}`);
}
