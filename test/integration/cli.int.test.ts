import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { runSmsq } from '../helpers/cli.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';

/** One JSON document per stdout line. */
function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('smsq CLI against Redis, simulator workers in the test process', () => {
  let config: Config;
  let env: Record<string, string>;

  beforeAll(async () => {
    // No delivery reports during these tests: `status` must print what `send --wait` printed.
    ({ config } = await startTestSmsq({
      api: false,
      logLevel: 'warn',
      env: { SIMULATOR_DLR_DELAY_MS: '600000' },
    }));
    env = { REDIS_URL: config.redisUrl, SMSQ_PREFIX: config.prefix, LOG_LEVEL: 'warn' };
  });

  it('send --wait prints the 202 answer, then the final result, and exits 0', async () => {
    const run = await runSmsq(
      ['send', '--to', '+34600000001', '--to', '600000002', '--to', 'nope', '--text', 'Hola', '--wait'],
      env,
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [accepted, result] = jsonLines(run.stdout);
    expect(accepted).toMatchObject({
      recipients: 2,
      invalid: [{ to: 'nope', reason: 'not a phone number' }],
      estimatedCredits: 2,
    });
    expect(result).toMatchObject({
      id: accepted!.id,
      state: 'completed',
      counts: { total: 3, accepted: 2, invalid: 1 },
      credits: { charged: 2 },
    });

    const [status, ledger] = await Promise.all([
      runSmsq(['status', accepted!.id as string], env),
      runSmsq(['ledger', '--format', 'csv'], env),
    ]);
    expect(status.code).toBe(0);
    expect(jsonLines(status.stdout)[0]).toEqual(result);
    expect(ledger.code).toBe(0);
    const [header, ...rows] = ledger.stdout.trim().split('\n');
    expect(header).toBe(
      'entryId,at,requestId,batchId,provider,state,recipients,accepted,invalid,segments,creditsEstimated,creditsCharged,creditsChargedIsEstimate,providerIds,note,previousState',
    );
    expect(
      rows.some(
        (row) => row.includes(`,${accepted!.id as string},`) && row.includes(',simulator,sent,2,2,0,'),
      ),
    ).toBe(true);
  });

  it('adds to and checks the opt-out list', async () => {
    const add = await runSmsq(['suppress', 'add', '+34600000099', 'garbage'], env);
    expect(add.code).toBe(0);
    expect(jsonLines(add.stdout)).toEqual([
      { added: 1, invalid: [{ to: 'garbage', reason: 'not a phone number' }] },
    ]);
    const check = await runSmsq(['suppress', 'check', '600000099', '+34600000098'], env);
    expect(jsonLines(check.stdout)).toEqual([
      { number: '+34600000099', listed: true },
      { number: '+34600000098', listed: false },
    ]);
  });

  it('imports an opt-out CSV and removes a number', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smsq-cli-'));
    onTeardown('temp dir', () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'optout.csv');
    writeFileSync(file, 'name;phone\nAna;+34600000071\nLuis;600 000 072\nX;call me\n');
    const imported = await runSmsq(['suppress', 'import', file], env);
    expect(imported.code).toBe(0);
    expect(jsonLines(imported.stdout)[0]).toMatchObject({ rows: 3, added: 2, invalid: 1 });
    const removed = await runSmsq(['suppress', 'remove', '+34600000071', 'nope'], env);
    expect(jsonLines(removed.stdout)).toEqual([
      { number: '+34600000071', removed: true },
      { number: 'nope', invalid: 'not a phone number' },
    ]);
    const check = await runSmsq(['suppress', 'check', '+34600000071', '+34600000072'], env);
    expect(jsonLines(check.stdout)).toEqual([
      { number: '+34600000071', listed: false },
      { number: '+34600000072', listed: true },
    ]);
  });

  it('a failing command exits non-zero with a one-line reason', async () => {
    const [unknown, invalid, noRedis] = await Promise.all([
      runSmsq(['status', 'r-does-not-exist'], env),
      runSmsq(['send', '--to', 'nope', '--text', 'Hola'], env),
      runSmsq(['status', 'r1'], { ...env, REDIS_URL: 'redis://127.0.0.1:1' }),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe('smsq: No request with id r-does-not-exist\n');
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toBe('smsq: No valid recipient in the request: to.0: not a phone number\n');
    expect(noRedis.code).toBe(1);
    expect(noRedis.stderr).toBe('smsq: Redis is not reachable at REDIS_URL=redis://127.0.0.1:1\n');
  });
});
