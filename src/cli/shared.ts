import { once } from 'node:events';
import { InvalidArgumentError } from 'commander';
import { ConfigError, InputError } from '../errors.js';
import { loadConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../logger.js';
import type { ProviderId } from '../message/types.js';
import { PROVIDER_IDS } from '../providers/index.js';
import { createQueueContext, type QueueContext } from '../queue/context.js';
import { isLane, LANES, type Lane } from '../queue/names.js';
import { RedisUnavailableError } from '../redis.js';
import { displayRedisUrl } from '../service/redis-discovery.js';

/** Why a command failed, on one line (a ConfigError keeps its lines: one per bad variable). */
export function failureMessage(err: unknown): string {
  if (err instanceof ConfigError) return err.message;
  if (err instanceof InputError && err.issues.length > 0) {
    return `smsq: ${err.message}: ${err.issues.map((i) => `${i.path || '(request)'}: ${i.message}`).join('; ')}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `smsq: ${message.replace(/\s*\n\s*/g, ' ')}`;
}

/**
 * Wraps a command's action: a failure prints its one-line reason on stderr and sets exit code 1.
 * Never process.exit: a command ends when its last handle closes.
 */
export function action<A extends unknown[]>(
  run: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await run(...args);
    } catch (err) {
      console.error(failureMessage(err));
      process.exitCode = 1;
    }
  };
}

/** A logger for one-shot commands: stderr (stdout is the command's output), warnings and worse. */
export function commandLogger(config: Config): Logger {
  const level = ['fatal', 'error', 'silent'].includes(config.logLevel) ? config.logLevel : 'warn';
  return createLogger(level, process.stderr);
}

/**
 * Runs a one-shot command against Redis: config, a producer context that answers within a
 * second (or fails naming REDIS_URL), the work, then the context closed whatever happened.
 */
export async function withQueueContext<T>(
  run: (ctx: { config: Config; context: QueueContext; logger: Logger }) => Promise<T>,
): Promise<T> {
  const config = loadConfig();
  const context = createQueueContext({
    redisUrl: config.redisUrl,
    prefix: config.prefix,
    defaultCountry: config.defaultCountry,
    role: 'producer',
  });
  try {
    await context.ready().catch((err: unknown) => {
      if (err instanceof RedisUnavailableError) {
        throw new Error(`Redis is not reachable at REDIS_URL=${displayRedisUrl(config.redisUrl)}`, {
          cause: err,
        });
      }
      throw err;
    });
    return await run({ config, context, logger: commandLogger(config) });
  } finally {
    await context.close();
  }
}

/** Writes one line to stdout, waiting when the pipe is full (a large export into `head` or a slow disk). */
export async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`)) await once(process.stdout, 'drain');
}

/** Parses a command-line integer option (commander reports the error with the option's name). */
export function parseInteger(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Parses a repeatable `--provider` option: each value one of PROVIDER_IDS. */
export function collectProvider(value: string, previous: ProviderId[] | undefined): ProviderId[] {
  if (!(PROVIDER_IDS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${PROVIDER_IDS.join(', ')}`);
  }
  return [...(previous ?? []), value];
}

/** Parses a repeatable `--lane` option: each value a lane (isLane). */
export function collectLane(value: string, previous: Lane[] | undefined): Lane[] {
  if (!isLane(value)) throw new InvalidArgumentError(`expected one of ${LANES.join(', ')}`);
  return [...(previous ?? []), value];
}

/** Parses a single provider argument or option. */
export function parseProvider(value: string): ProviderId {
  return collectProvider(value, [])[0]!;
}
