import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decide, OTHERWISE, statusKeys, type Decision } from '../../src/providers/decisions.js';
import { PROVIDER_MODULES } from '../../src/providers/index.js';

const tables = PROVIDER_MODULES.map((m) => [m.id, m.decisions] as const);

/** A row as the README writes it: provider, when, kind, code, may have acted, note, why. */
function readmeRow(provider: string, d: Decision): string[] {
  const notes = [
    ...(d.retryAfterDefaultMs !== undefined ? [`Retry-After, else ${d.retryAfterDefaultMs} ms`] : []),
    ...(d.failAfterRepeats !== undefined ? [`fails after ${d.failAfterRepeats} pauses`] : []),
  ];
  return [
    provider,
    `\`${d.when}\``,
    `\`${d.kind}\``,
    `\`${d.code}\``,
    d.mayHaveLeft ? 'yes' : 'no',
    notes.join('; '),
    d.why,
  ];
}

/** The rows of the first Markdown table after `heading` in the README, cells trimmed. */
function readmeTable(heading: string): string[][] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README has no "${heading}"`);
  const lines = readme.slice(start).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split(' | ')
        .map((c) => c.trim().replace(/\\\|/g, '|')),
    );
  }
  return rows;
}

describe.each(tables)('the %s decision table', (_id, table) => {
  it('names each observation once and has a last resort', () => {
    const keys = table.map((r) => r.when);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toContain(OTHERWISE);
  });

  it('retries without ambiguity only what provably did not act, and never-left is such a retry', () => {
    for (const row of table) {
      const safe = row.kind === 'transient' || row.kind === 'rate-limited';
      if (safe || row.kind === 'account' || row.kind === 'permanent')
        expect(row.mayHaveLeft, row.when).toBe(false);
      else expect(row.mayHaveLeft, row.when).toBe(true);
    }
    expect(decide(table, ['never-left']).kind).toBe('transient');
    expect(decide(table, [OTHERWISE]).kind).toBe('ambiguous');
  });

  it('waits on every rate-limit row with a default delay', () => {
    for (const row of table.filter((r) => r.kind === 'rate-limited')) {
      expect(row.code).toBe('SMSQ_PROVIDER_RATE_LIMITED');
      expect(row.retryAfterDefaultMs).toBeGreaterThan(0);
    }
  });

  it('decides every HTTP status from 100 to 599', () => {
    for (let status = 100; status < 600; status++) expect(decide(table, statusKeys(status))).toBeDefined();
  });
});

describe('the README', () => {
  it('lists every row of every provider decision table, in order, as the tables say', () => {
    const expected = tables.flatMap(([id, table]) => table.map((d) => readmeRow(id, d)));
    const actual = readmeTable('### Provider decision tables');
    // On a mismatch, the expected Markdown rows are in the diff: paste them into the README.
    expect(actual.map((r) => `| ${r.join(' | ')} |`)).toEqual(expected.map((r) => `| ${r.join(' | ')} |`));
  });
});
