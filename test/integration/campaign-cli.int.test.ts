import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerCampaignCommand } from '../../src/cli/commands/campaign.js';
import { registerImportCommand } from '../../src/cli/commands/import.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq } from '../helpers/test-smsq.js';

describe('smsq import and smsq campaign', () => {
  const savedEnv = { ...process.env };
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...savedEnv };
    process.exitCode = undefined;
  });

  /** Runs one CLI invocation and returns what it printed on stdout, parsed. */
  async function smsq(...args: string[]): Promise<unknown> {
    const program = new Command().name('smsq').exitOverride();
    registerCampaignCommand(program);
    registerImportCommand(program);
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await program.parseAsync(['node', 'smsq', ...args]);
    } finally {
      write.mockRestore();
      err.mockRestore();
    }
    const docs = out
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as unknown);
    return docs.length === 1 ? docs[0] : docs;
  }

  async function start() {
    const stack = await startTestSmsq({ api: false, campaigns: true, logLevel: 'info' });
    process.env.REDIS_URL = stack.config.redisUrl;
    process.env.SMSQ_PREFIX = stack.config.prefix;
    return stack;
  }

  it('imports a CSV and waits for the run result', async () => {
    const s = await start();
    const path = s.csv(
      `name,phone\n${spanishMobiles(5, 60_000)
        .map((n, i) => `N${i},${n}`)
        .join('\n')}\n`,
    );
    const result = await smsq('import', path, '--text', 'Hola {{name}}', '--wait');
    expect(process.exitCode).toBeUndefined();
    expect(result).toMatchObject({ kind: 'import', state: 'completed', counts: { total: 5, accepted: 5 } });
  });

  it('adds a campaign from a file (CSV path relative to it), runs, lists and removes it', async () => {
    const s = await start();
    const csv = s.csv(`movil\n${spanishMobiles(2, 61_000).join('\n')}\n`);
    const file = join(dirname(csv), 'campaign.json');
    writeFileSync(
      file,
      JSON.stringify({
        id: 'cli-demo',
        cron: '0 9 * * *',
        timezone: 'Europe/Madrid',
        text: 'Hola',
        recipients: { csv: csv.split('/').pop(), phoneColumn: 'movil' },
      }),
    );
    expect(await smsq('campaign', 'add', '--file', file)).toMatchObject({
      id: 'cli-demo',
      recipients: { csv },
    });
    expect(await smsq('campaign', 'list')).toMatchObject({ id: 'cli-demo' });
    expect(await smsq('campaign', 'run', 'cli-demo', '--wait')).toMatchObject({
      state: 'completed',
      counts: { accepted: 2 },
    });
    expect(await smsq('campaign', 'remove', 'cli-demo')).toEqual({ removed: 'cli-demo' });
    expect(await smsq('campaign', 'list')).toEqual([]);
  });

  it('prints each bad field and sets exit code 1 on an invalid import', async () => {
    await start();
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
    await smsq('import', '/nope.csv', '--text', 'Hola', '--expires-after', 'P1M');
    expect(process.exitCode).toBe(1);
    expect(errors.join('\n')).toMatch(/Invalid import: expiresAfter: expected an ISO 8601 duration/);
  });
});
