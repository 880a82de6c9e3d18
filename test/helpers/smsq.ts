import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { removePrefix } from './remove-prefix.js';
import { onTeardown } from './teardown.js';

/** A unique BullMQ/smsq prefix per test, so tests sharing one Redis never see each other's keys. */
export function uniquePrefix(): string {
  const prefix = `t${randomBytes(5).toString('hex')}`;
  // On a Cluster every key of a prefix must share one hash slot, as smsq's own config ensures.
  return inject('redisTopology') === 'cluster' ? `{${prefix}}` : prefix;
}

/**
 * A unique prefix on the run's Redis for a test that starts smsq itself (worker processes, its own
 * client): its keys are removed when the test ends, or kept and the prefix printed if it failed.
 */
export function testPrefix(): string {
  const prefix = uniquePrefix();
  onTeardown('test prefix', (outcome) => {
    if (outcome.failed) console.warn(`kept prefix ${prefix} of a failed test on ${redisUrl()}`);
    else return removePrefix(redisUrl(), prefix);
  });
  return prefix;
}

/** The run's Redis as an smsq address (for SmsClient, removePrefix, connectRedis). */
export function redisUrl(): string {
  return process.env.SMSQ_TEST_REDIS_URL ?? inject('redisUrl');
}

/** The environment pointing smsq (a config, a spawned process) at the run's Redis. */
export function redisEnv(): Record<string, string> {
  return process.env.SMSQ_TEST_REDIS_URL
    ? { REDIS_URL: process.env.SMSQ_TEST_REDIS_URL }
    : inject('redisEnv');
}

/** A config for tests: the run's Redis, a unique prefix, fast retries; `env` overrides. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig(testEnv(env));
}

/** The environment {@link testConfig} reads: the run's Redis, a unique prefix, fast retries; `env` overrides. */
export function testEnv(env: Record<string, string> = {}): Record<string, string> {
  return {
    ...redisEnv(),
    SMSQ_PREFIX: uniquePrefix(),
    SIMULATOR_LATENCY_MS: '0',
    SMSQ_BACKOFF_MS: '20',
    SMSQ_ATTEMPTS: '4',
    SMSQ_PROBE_INTERVAL_MS: '200',
    SMSQ_LOCK_DURATION_MS: '2000',
    // A call is over after its deadline plus a margin, and OVH's settle window follows it: keep
    // both short so reconciliation tests take seconds, not minutes.
    SMSQ_PROVIDER_TIMEOUT_MS: '3000',
    OVH_SETTLE_MS: '500',
    LOG_LEVEL: 'warn',
    ...env,
  };
}

/**
 * A logger whose output is kept in memory, to assert what was (not) logged. Every line is also
 * written to the run's log directory, which the global teardown audits for numbers and secrets.
 */
export function captureLogger(level = 'trace'): { logger: Logger; lines: () => string } {
  const chunks: string[] = [];
  const auditFile = join(inject('logDir'), `${process.pid}.jsonl`);
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      appendFileSync(auditFile, chunk);
      cb();
    },
  });
  return { logger: createLogger(level, stream), lines: () => chunks.join('') };
}

export { removePrefix };
