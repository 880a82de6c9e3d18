import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { PROVIDER_REDACT_PATHS } from './providers/index.js';

export type { Logger } from 'pino';

/**
 * Paths pino censors wherever they appear (one level of nesting under any key): phone numbers,
 * message texts and secrets never reach a log line. Log `hashNumber(n)` to correlate instead.
 * Each provider adds its own secrets (its module's `redactPaths`, see src/providers/index.ts).
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
  'req.headers["idempotency-key"]',
  ...PROVIDER_REDACT_PATHS,
];

function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: { service: 'smsq' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
}

/** A JSON-lines logger to `destination` (default: stdout), redacting {@link REDACT_PATHS}. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(loggerOptions(level), destination);
}

/** How a process writes its log: JSON lines, or a prettifier's lines (a pino transport at `target`). */
export type LogOutput = { format: 'json' } | { format: 'pretty'; target: string };

/** The prettifier loaded for a terminal, when it is installed (a dependency, never needed by tests or CI). */
export const PRETTY_MODULE = 'pino-pretty';

const requireHere = createRequire(import.meta.url);

/**
 * Pretty lines for a person at a terminal, JSON lines for everything else (log collectors, pipes,
 * containers without `-t`). Pretty only when `isTTY` and `prettyModule` (default
 * {@link PRETTY_MODULE}) resolves from here; a missing prettifier means JSON, never a crash. The
 * module is only resolved here, not loaded: pino loads it in its transport worker.
 */
export function chooseLogOutput(opts: { isTTY: boolean | undefined; prettyModule?: string }): LogOutput {
  if (opts.isTTY !== true) return { format: 'json' };
  try {
    return { format: 'pretty', target: requireHere.resolve(opts.prettyModule ?? PRETTY_MODULE) };
  } catch {
    return { format: 'json' };
  }
}

export interface StdoutLoggerOptions {
  /** Whether stdout is a terminal. @defaultValue `process.stdout.isTTY` */
  isTTY?: boolean;
  /** The prettifier to use at a terminal. @defaultValue {@link PRETTY_MODULE} */
  prettyModule?: string;
  /** Options for the prettifier's transport. @defaultValue colours, local time, no pid/hostname/service */
  prettyOptions?: Record<string, unknown>;
}

/**
 * A process's root logger on stdout: pretty at a terminal (see {@link chooseLogOutput}), JSON lines
 * otherwise. Redaction is the same in both: pino censors a line before any transport sees it.
 */
export function createStdoutLogger(level: string, opts: StdoutLoggerOptions = {}): Logger {
  const output = chooseLogOutput({
    isTTY: opts.isTTY ?? process.stdout.isTTY,
    prettyModule: opts.prettyModule,
  });
  if (output.format === 'json') return createLogger(level);
  return pino({
    ...loggerOptions(level),
    transport: {
      target: output.target,
      options: opts.prettyOptions ?? {
        destination: 1,
        colorize: true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,service',
      },
    },
  });
}

/** A short, stable, non-reversible tag for a phone number, for correlating log lines. */
export function hashNumber(number: string): string {
  return createHash('sha256').update(number).digest('hex').slice(0, 12);
}
