import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { parse, type CsvError } from 'csv-parse';
import type { Recipients } from './definition.js';
import { CampaignSourceError } from './errors.js';

/** One recipient row, from a CSV file or an inline list. */
export interface RecipientRow {
  /** 1-based position among data rows (the header and empty lines are not counted); stable across re-reads. */
  readonly index: number;
  /** The line of the file it ends on (CSV only; a quoted field may hold line breaks). */
  readonly line?: number;
  readonly phone: string | undefined;
  /** The row's value of a column, or undefined when the row has none. */
  value(column: string): string | undefined;
}

/** `;` when the header line has more semicolons than commas outside quotes, else `,`. */
export function detectDelimiter(headerLine: string): ',' | ';' {
  let commas = 0;
  let semicolons = 0;
  let quoted = false;
  for (const ch of headerLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === ',') commas += 1;
    else if (!quoted && ch === ';') semicolons += 1;
  }
  return semicolons > commas ? ';' : ',';
}

async function readHeaderLine(path: string): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CampaignSourceError(`Cannot read the recipients CSV ${path} (${code})`, { cause: err });
  }
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const text = buffer
      .subarray(0, bytesRead)
      .toString('utf8')
      .replace(/^\uFEFF/, '');
    // Skip leading empty lines, as the parser does.
    const line = text.split(/\r?\n/).find((l) => l.trim() !== '');
    return line ?? '';
  } finally {
    await handle.close();
  }
}

class CsvRow implements RecipientRow {
  constructor(
    readonly index: number,
    readonly line: number,
    private readonly fields: readonly string[],
    private readonly columns: ReadonlyMap<string, number>,
    private readonly phoneAt: number,
  ) {}

  get phone(): string | undefined {
    return this.fields[this.phoneAt];
  }

  value(column: string): string | undefined {
    const at = this.columns.get(column);
    return at === undefined ? undefined : this.fields[at];
  }
}

/**
 * Streams a CSV file's records (arrays of fields) with the line each ends on: never the whole file
 * in memory. A UTF-8 BOM is dropped, quoted fields may hold delimiters and line breaks, empty lines
 * are skipped, fields are trimmed, the delimiter is detected from the first line unless given.
 */
export async function* readCsvRecords(
  path: string,
  delimiter?: ',' | ';',
): AsyncGenerator<{ record: string[]; line: number }> {
  const chosen = delimiter ?? detectDelimiter(await readHeaderLine(path));
  const parser = parse({
    bom: true,
    delimiter: chosen,
    skip_empty_lines: true,
    skip_records_with_empty_values: true,
    relax_column_count: true,
    trim: true,
    max_record_size: 1_000_000,
  });
  // The line a record ends on is the parser's line count (`parser.info`) as it hands the record
  // over: read there it costs nothing, where `info: true` copies the whole info object for every
  // record (a tenth of a campaign row's cost).
  const push = parser.push.bind(parser);
  parser.push = (record: string[] | null) =>
    push(record === null ? null : { record, line: parser.info.lines });
  // The parser turns each chunk read into records in one synchronous go: 16 KB (~400 rows) instead
  // of the default 64 KB keeps that stretch a few ms, short enough for a single send sharing the
  // process not to notice.
  const source = createReadStream(path, { highWaterMark: 16 * 1024 });
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);
  let records = 0;
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; line: number }>) {
      records += 1;
      yield item;
    }
  } catch (err) {
    const code = (err as CsvError | NodeJS.ErrnoException).code;
    throw new CampaignSourceError(
      `Cannot read the CSV ${path} after record ${records}: ${(err as Error).message}${code ? ` (${code})` : ''}`,
      { cause: err },
    );
  } finally {
    source.destroy();
    parser.destroy();
  }
}

/**
 * Streams a recipients CSV's data rows (see `readCsvRecords`). The first record is the header; a
 * header without the phone column is an error naming it.
 */
export async function* readCsvRows(opts: {
  path: string;
  phoneColumn: string;
  delimiter?: ',' | ';';
}): AsyncGenerator<RecipientRow> {
  let columns: Map<string, number> | undefined;
  let phoneAt = -1;
  let index = 0;
  for await (const { record, line } of readCsvRecords(opts.path, opts.delimiter)) {
    if (!columns) {
      const header = record.map((h) => h.trim());
      columns = new Map(header.map((name, i) => [name, i] as const));
      phoneAt = columns.get(opts.phoneColumn) ?? -1;
      if (phoneAt < 0) {
        throw new CampaignSourceError(
          `The CSV header has no "${opts.phoneColumn}" column (columns: ${header.join(', ') || 'none'}); ` +
            'name the column holding the numbers with recipients.phoneColumn (--phone-column)',
        );
      }
      continue;
    }
    index += 1;
    yield new CsvRow(index, line, record, columns, phoneAt);
  }
  if (!columns) throw new CampaignSourceError(`The recipients CSV ${opts.path} is empty: no header line`);
}

class ListRow implements RecipientRow {
  constructor(
    readonly index: number,
    private readonly entry: Readonly<Record<string, string | number | boolean>>,
  ) {}

  get phone(): string | undefined {
    const to = this.entry.to;
    return to === undefined ? undefined : String(to);
  }

  value(column: string): string | undefined {
    const v = this.entry[column];
    return v === undefined ? undefined : String(v);
  }
}

/**
 * The items of `source`, with a turn of the event loop after every `every` of them (once the
 * consumer is done with them). Items a source already holds come back as microtasks only, so
 * without turns a long run of them, and whatever the consumer does with each, is one synchronous
 * stretch that every other callback of the process waits behind.
 */
export async function* inTurns<T>(source: AsyncIterable<T>, every: number): AsyncGenerator<T> {
  let count = 0;
  for await (const item of source) {
    yield item;
    count += 1;
    if (count % every === 0) await nextTurn();
  }
}

/** The rows of a campaign's recipients, whichever their source. */
export async function* readRecipientRows(recipients: Recipients): AsyncGenerator<RecipientRow> {
  if ('csv' in recipients) {
    yield* readCsvRows({
      path: recipients.csv,
      phoneColumn: recipients.phoneColumn,
      delimiter: recipients.delimiter,
    });
    return;
  }
  let index = 0;
  for (const entry of recipients.list) {
    index += 1;
    yield new ListRow(index, entry);
  }
}
