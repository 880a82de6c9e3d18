import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CampaignSourceError } from '../../src/campaigns/errors.js';
import { detectDelimiter, inTurns, readCsvRows, readRecipientRows } from '../../src/campaigns/rows.js';

const dir = mkdtempSync(join(tmpdir(), 'smsq-csv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function csvFile(content: string | Buffer): string {
  n += 1;
  const path = join(dir, `f${n}.csv`);
  writeFileSync(path, content);
  return path;
}

async function rows(path: string, phoneColumn = 'phone', columns = ['name']) {
  const out: { index: number; phone?: string; values: (string | undefined)[] }[] = [];
  for await (const row of readCsvRows({ path, phoneColumn })) {
    out.push({ index: row.index, phone: row.phone, values: columns.map((c) => row.value(c)) });
  }
  return out;
}

describe('CSV recipients', () => {
  it('drops a UTF-8 BOM before the header', async () => {
    const path = csvFile(
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('phone,name\n+34600000001,Ana\n')]),
    );
    expect(await rows(path)).toEqual([{ index: 1, phone: '+34600000001', values: ['Ana'] }]);
  });

  it('keeps commas, quotes and line breaks inside quoted fields', async () => {
    const path = csvFile(
      'phone,name\r\n+34600000001,"García, Ana"\r\n+34600000002,"Luis\nsegunda línea ""jr"""\r\n',
    );
    expect(await rows(path)).toEqual([
      { index: 1, phone: '+34600000001', values: ['García, Ana'] },
      { index: 2, phone: '+34600000002', values: ['Luis\nsegunda línea "jr"'] },
    ]);
  });

  it('detects a semicolon delimiter from the header', async () => {
    const path = csvFile('nombre;phone;importe\nAna;+34600000001;12,50 €\n');
    const [row] = await rows(path, 'phone', ['nombre', 'importe']);
    expect(row).toEqual({ index: 1, phone: '+34600000001', values: ['Ana', '12,50 €'] });
    expect(detectDelimiter('"a;b",c,d')).toBe(',');
    expect(detectDelimiter('a;b;"c,d,e"')).toBe(';');
  });

  it('skips empty lines (and lines of empty fields) without counting them as rows', async () => {
    const path = csvFile('\nphone,name\n\n+34600000001,Ana\n\n,\n   \n+34600000002,Luis\n\n');
    expect((await rows(path)).map((r) => [r.index, r.phone])).toEqual([
      [1, '+34600000001'],
      [2, '+34600000002'],
    ]);
  });

  it('gives each row its line in the file, past empty lines and quoted line breaks', async () => {
    const path = csvFile('\nphone,name\n+34600000001,Ana\n\n+34600000002,"Luis\njr"\n+34600000003,Eva\n');
    const lines: [number, number | undefined][] = [];
    for await (const row of readCsvRows({ path, phoneColumn: 'phone' })) lines.push([row.index, row.line]);
    expect(lines).toEqual([
      [1, 3],
      [2, 6],
      [3, 7],
    ]);
  });

  it('gives no value for a column a short row lacks', async () => {
    const path = csvFile('phone,name,city\n+34600000001,Ana\n');
    expect(await rows(path, 'phone', ['name', 'city', 'nope'])).toEqual([
      { index: 1, phone: '+34600000001', values: ['Ana', undefined, undefined] },
    ]);
  });

  it('names the phone column when the header lacks it', async () => {
    const path = csvFile('telefono,name\n+34600000001,Ana\n');
    const err = await rows(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CampaignSourceError);
    expect((err as Error).message).toMatch(/no "phone" column \(columns: telefono, name\)/);
    expect(await rows(path, 'telefono')).toHaveLength(1);
  });

  it('fails clearly on a missing file and on an unclosed quote', async () => {
    const missing = await rows(join(dir, 'nope.csv')).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/Cannot read .*nope\.csv \(ENOENT\)/);
    const broken = await rows(csvFile('phone,name\n+34600000001,"Ana\n')).catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(CampaignSourceError);
    expect((broken as Error).message).toMatch(/CSV_QUOTE_NOT_CLOSED/);
  });

  it('reads an inline list as rows, `to` as the phone', async () => {
    const out = [];
    for await (const row of readRecipientRows({ list: [{ to: '+34600000001', name: 'Ana', n: 3 }] })) {
      out.push([row.index, row.phone, row.value('name'), row.value('n'), row.value('x')]);
    }
    expect(out).toEqual([[1, '+34600000001', 'Ana', '3', undefined]]);
  });
});

describe('inTurns', () => {
  /** Turns of the event loop (check phases) taken while `iterate` runs. */
  async function turnsDuring(iterate: () => Promise<void>): Promise<number> {
    let turns = 0;
    let done = false;
    const probe = () => {
      if (done) return;
      turns += 1;
      setImmediate(probe);
    };
    setImmediate(probe);
    await iterate();
    done = true;
    return turns;
  }

  /** A source that never waits for I/O: every item is ready (a microtask away). */
  async function* numbers(count: number) {
    for (let i = 0; i < count; i += 1) yield await Promise.resolve(i);
  }

  it('lets other callbacks run every N items of a source that never waits, and keeps every item in order', async () => {
    // Without turns, items a source already holds come back as microtasks only: nothing else runs.
    expect(
      await turnsDuring(async () => {
        for await (const _ of numbers(1_000));
      }),
    ).toBe(0);
    const seen: number[] = [];
    const turns = await turnsDuring(async () => {
      for await (const i of inTurns(numbers(1_000), 100)) seen.push(i);
    });
    expect(turns).toBeGreaterThanOrEqual(9);
    expect(seen).toEqual([...Array(1_000).keys()]);
  });

  it('closes its source when the consumer stops early', async () => {
    let closed = false;
    async function* source() {
      try {
        yield* numbers(1_000);
      } finally {
        closed = true;
      }
    }
    for await (const i of inTurns(source(), 100)) if (i === 150) break;
    expect(closed).toBe(true);
  });
});
