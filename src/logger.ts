import { createHash } from 'node:crypto';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino censors wherever they appear (one level of nesting under any key): phone numbers,
 * message texts and secrets never reach a log line. Log `hashNumber(n)` to correlate instead.
 */
export const REDACT_PATHS = [
  'to',
  'text',
  'number',
  'numbers',
  'phone',
  'recipients',
  'receivers',
  'messages',
  'password',
  'pass',
  'secret',
  'apiKey',
  'authorization',
  '*.to',
  '*.text',
  '*.number',
  '*.numbers',
  '*.phone',
  '*.recipients',
  '*.receivers',
  '*.messages',
  '*.password',
  '*.pass',
  '*.secret',
  '*.apiKey',
  '*.authorization',
  'req.headers.authorization',
  'req.headers["dsms-pass"]',
  'req.headers["idempotency-key"]',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'smsq' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}

/** A short, stable, non-reversible tag for a phone number, for correlating log lines. */
export function hashNumber(number: string): string {
  return createHash('sha256').update(number).digest('hex').slice(0, 12);
}
