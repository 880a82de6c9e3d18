import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { smsqKeys } from '../../src/queue/names.js';
import { trimLedger } from '../../src/queue/ledger.js';
import { finished, spawnSmsq, waitForLine } from '../helpers/cli.js';
import { redisUrl, removePrefix, uniquePrefix } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

const DAY_MS = 24 * 3600 * 1000;

/** A ledger-like entry (only the fields the tests read back). */
function entry(batchId: string): string[] {
  return [
    'at',
    new Date().toISOString(),
    'requestId',
    'r1',
    'batchId',
    batchId,
    'provider',
    'simulator',
    'state',
    'sent',
  ];
}

/** Resolves with the first stderr line of `child` matching `pattern`. */
function waitForStderr(child: ChildProcess, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => reject(new Error(`no stderr line matching ${pattern}: ${buffered}`)),
      timeoutMs,
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find((l) => pattern.test(l));
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
}

describe('ledger retention and --follow', () => {
  function setup() {
    const prefix = uniquePrefix();
    const redis = new Redis(redisUrl());
    onTeardown('prefix', () => removePrefix(redisUrl(), prefix));
    onTeardown('Redis connection', () => redis.disconnect());
    return { prefix, redis, key: smsqKeys(prefix).ledger };
  }

  it('trimming removes the entries older than the retention, and only those', async () => {
    const { redis, key } = setup();
    const now = Date.now();
    // 250 entries 100 days old (several stream nodes), one a minute past the limit, then recent ones.
    for (let i = 0; i < 250; i++) await redis.xadd(key, `${now - 100 * DAY_MS}-${i}`, ...entry(`old-${i}`));
    await redis.xadd(key, `${now - 90 * DAY_MS - 60_000}-0`, ...entry('just-past'));
    await redis.xadd(key, `${now - 90 * DAY_MS + 60_000}-0`, ...entry('just-inside'));
    await redis.xadd(key, `${now - DAY_MS}-0`, ...entry('yesterday'));
    await redis.xadd(key, '*', ...entry('now'));

    expect(await trimLedger(redis, key, 0, now)).toBe(0); // 0: kept forever
    expect(await redis.xlen(key)).toBe(254);
    expect(await trimLedger(redis, key, 90, now)).toBe(251);
    const left = await redis.xrange(key, '-', '+');
    expect(left.map(([, fields]) => fields[5])).toEqual(['just-inside', 'yesterday', 'now']);
    expect(await trimLedger(redis, key, 90, now)).toBe(0);
  });

  it('the workers trim the ledger when they start (SMSQ_LEDGER_RETENTION_DAYS)', async () => {
    const prefix = uniquePrefix();
    const redis = new Redis(redisUrl());
    onTeardown('Redis connection', () => redis.disconnect());
    const key = smsqKeys(prefix).ledger;
    await redis.xadd(key, `${Date.now() - 31 * DAY_MS}-0`, ...entry('old'));
    await redis.xadd(key, '*', ...entry('new'));
    // Removes the prefix when it closes.
    await startTestSmsq({
      api: false,
      logLevel: 'warn',
      env: { SMSQ_PREFIX: prefix, SMSQ_LEDGER_RETENTION_DAYS: '30' },
    });
    await eventually(async () => (await redis.xlen(key)) === 1);
    expect((await redis.xrange(key, '-', '+'))[0]?.[1][5]).toBe('new');
  });

  it('`smsq ledger --follow` prints entries appended after it started, as jsonl, until SIGTERM', async () => {
    const { prefix, redis, key } = setup();
    await redis.xadd(key, '*', ...entry('before'));
    const child = spawnSmsq(['ledger', '--follow', '--format', 'jsonl'], {
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
      LOG_LEVEL: 'warn',
    });
    const done = finished(child);
    await waitForStderr(child, /following the ledger/);
    const first = waitForLine(child, /after-1/);
    await redis.xadd(key, '*', ...entry('after-1'));
    await first;
    const second = waitForLine(child, /after-2/);
    await redis.xadd(key, '*', ...entry('after-2'));
    await second;
    child.kill('SIGTERM');
    const result = await done;
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { batchId: string; state: string });
    // Only what came after the start, each once.
    expect(lines.map((l) => l.batchId)).toEqual(['after-1', 'after-2']);
    expect(lines[0]).toMatchObject({ state: 'sent', provider: 'simulator', requestId: 'r1' });
  });

  it('`smsq ledger --follow --since` prints the entries since then first, then new ones', async () => {
    const { prefix, redis, key } = setup();
    const now = Date.now();
    await redis.xadd(key, `${now - 2 * DAY_MS}-0`, ...entry('too-old'));
    await redis.xadd(key, `${now - DAY_MS}-0`, ...entry('since'));
    const since = new Date(now - DAY_MS).toISOString();
    const child = spawnSmsq(['ledger', '--follow', '--since', since, '--format', 'jsonl'], {
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
      LOG_LEVEL: 'warn',
    });
    const done = finished(child);
    await waitForLine(child, /"since"/);
    const next = waitForLine(child, /"new"/);
    await redis.xadd(key, '*', ...entry('new'));
    await next;
    child.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(0);
    expect(
      result.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { batchId: string }).batchId),
    ).toEqual(['since', 'new']);
  });

  it('refuses --follow with --until', async () => {
    const { prefix } = setup();
    const child = spawnSmsq(['ledger', '--follow', '--until', '2030-01-01'], {
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
    });
    const result = await finished(child);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--follow and --until exclude each other');
  });
});
