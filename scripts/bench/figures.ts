/**
 * The figures of `npm run bench`: each a measured value next to the anchor it is judged against
 * (a ceiling or an allowance measured in the same run, or a fixed target), the ratio of the two,
 * and whether it meets the target.
 */
import { writeFileSync } from 'node:fs';

export interface Figure {
  /** What was measured, e.g. `allowance used, descom 200 ms, 2 processes`. */
  figure: string;
  value: number;
  unit: string;
  /** What `value` is compared with (null when the figure stands alone against a fixed target). */
  anchor: { name: string; value: number; unit: string } | null;
  /** value / anchor.value, rounded to 3 decimals (null without an anchor). */
  ratio: number | null;
  /** The target in words, e.g. `0.95 ≤ ratio ≤ 1.00`. */
  target: string;
  pass: boolean;
  /** Other numbers of the same measurement, for reading a failure. */
  details?: Record<string, unknown>;
}

/** A section that could not produce its figures: the error, so the others still print. */
export interface SectionError {
  section: string;
  error: string;
}

export function ratio(value: number, anchor: number): number {
  return anchor === 0 ? Number.NaN : Math.round((value / anchor) * 1000) / 1000;
}

/**
 * A figure judged against a fixed target (no ceiling measured in the run): the target is its
 * anchor, so the ratio says how far off it is. `valid`: the measurement itself went right (every
 * request answered, the run completed); a figure from a broken measurement never passes.
 */
export function targetFigure(
  figure: string,
  value: number,
  unit: string,
  target: { op: '≤' | '<' | '≥'; value: number; note?: string },
  valid: boolean,
  details?: Record<string, unknown>,
): Figure {
  const met =
    target.op === '≤'
      ? value <= target.value
      : target.op === '<'
        ? value < target.value
        : value >= target.value;
  return {
    figure,
    value,
    unit,
    anchor: { name: 'target', value: target.value, unit },
    ratio: ratio(value, target.value),
    target: `${target.op} ${target.value.toLocaleString('en')} ${unit}${target.note ? `, ${target.note}` : ''}`,
    pass: valid && met,
    ...(details !== undefined && { details }),
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[at]!;
}

const num = (n: number) =>
  Number.isInteger(n) ? n.toLocaleString('en') : n.toLocaleString('en', { maximumFractionDigits: 2 });

export function formatFigure(f: Figure): string {
  const anchor = f.anchor
    ? ` / ${f.anchor.name} ${num(f.anchor.value)} ${f.anchor.unit} = ${f.ratio?.toFixed(2)}`
    : '';
  return `${f.pass ? 'PASS' : 'FAIL'}  ${f.figure}: ${num(f.value)} ${f.unit}${anchor}  (target ${f.target})`;
}

export function writeResults(
  path: string,
  run: { quick: boolean; startedAt: string; seconds: number },
  figures: readonly Figure[],
  errors: readonly SectionError[],
): void {
  writeFileSync(path, `${JSON.stringify({ ...run, figures, errors }, null, 2)}\n`);
}
