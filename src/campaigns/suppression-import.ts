import { normalizeNumber } from '../message/recipients.js';
import type { SuppressionList } from '../queue/suppressions.js';
import { CampaignSourceError } from './errors.js';
import { readCsvRecords } from './rows.js';

/** Header names taken as the number column when none is given (case-insensitive). */
const NUMBER_COLUMNS = ['phone', 'number', 'to', 'msisdn', 'mobile'];
const BATCH = 1_000;
const MAX_REPORTED = 20;

export interface SuppressionImportResult {
  /** Data rows read. */
  rows: number;
  /** Numbers newly added to the list (already listed ones are not counted). */
  added: number;
  /** Rows without a valid number. */
  invalid: number;
  /** The first invalid rows, by line (numbers are not echoed). */
  invalidRows: { line: number; reason: string }[];
}

/**
 * Adds the numbers of a CSV file to the opt-out list, streaming it. The number column is `column`,
 * else the first header named phone/number/to/msisdn/mobile; a file of one column whose first line
 * is a number has no header.
 */
export async function importSuppressions(
  suppressions: SuppressionList,
  path: string,
  opts: { column?: string; delimiter?: ',' | ';'; defaultCountry: string },
): Promise<SuppressionImportResult> {
  const result: SuppressionImportResult = { rows: 0, added: 0, invalid: 0, invalidRows: [] };
  let at: number | undefined;
  let batch: string[] = [];

  const take = (value: string | undefined, line: number) => {
    result.rows += 1;
    const number = normalizeNumber(value ?? '', opts.defaultCountry);
    if (number.ok) {
      batch.push(number.e164);
    } else {
      result.invalid += 1;
      if (result.invalidRows.length < MAX_REPORTED) result.invalidRows.push({ line, reason: number.reason });
    }
  };
  const flush = async () => {
    if (batch.length === 0) return;
    result.added += (await suppressions.add(batch)).added;
    batch = [];
  };

  for await (const { record, line } of readCsvRecords(path, opts.delimiter)) {
    if (at === undefined) {
      const header = record.map((h) => h.trim());
      const lower = header.map((h) => h.toLowerCase());
      if (opts.column !== undefined) {
        at = header.indexOf(opts.column);
        if (at < 0)
          throw new CampaignSourceError(
            `The CSV header has no "${opts.column}" column (columns: ${header.join(', ')})`,
          );
        continue;
      }
      at = lower.findIndex((h) => NUMBER_COLUMNS.includes(h));
      if (at >= 0) continue;
      if (header.length === 1 && normalizeNumber(header[0]!, opts.defaultCountry).ok) {
        at = 0;
        take(record[0], line); // no header: the first line is a number
        continue;
      }
      throw new CampaignSourceError(
        `The CSV header has no number column (columns: ${header.join(', ')}); expected one of ${NUMBER_COLUMNS.join(', ')} or --column`,
      );
    }
    take(record[at], line);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return result;
}
