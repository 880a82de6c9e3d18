import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What must never appear in a log line: the phone numbers the tests use (Spanish and French
 * mobiles, in any form) and the secrets the provider stand-ins accept.
 */
const FORBIDDEN: [string, RegExp][] = [
  // Not inside a longer token: request ids, UUIDs and hashes hold digit runs too.
  ['a phone number', /(?<![\w-])(?:\+|00)?(?:34|33)?\s?[67]\d{8}(?![\w-])/],
  ['the Descom password', /smsq-secret/],
  ['an OVH secret', /fakeAppSecret|fakeConsumerKey/],
];

/** Lines of every log captured during the run (one file per test process) that break the rule. */
export function auditLogs(dir: string): string[] {
  const problems: string[] = [];
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return problems;
  }
  for (const file of files) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      for (const [what, pattern] of FORBIDDEN) {
        if (pattern.test(line)) problems.push(`${what} in ${file}: ${line.slice(0, 300)}`);
      }
    }
  }
  return problems;
}
