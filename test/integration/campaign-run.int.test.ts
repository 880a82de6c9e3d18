import { describe, expect, it } from 'vitest';
import { importSuppressions } from '../../src/campaigns/suppression-import.js';
import { acceptedNumbers } from '../helpers/campaigns.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq, type TestSmsqOptions } from '../helpers/test-smsq.js';

describe('campaign runs on the simulator', () => {
  function start(opts: { campaign?: TestSmsqOptions['campaignOptions'] } = {}) {
    return startTestSmsq({ api: false, campaigns: true, campaignOptions: opts.campaign, logLevel: 'info' });
  }

  it('streams a CSV into requests of at most 1,000 and gives every row exactly one count', async () => {
    const stack = await start();
    const numbers = spanishMobiles(2_500);
    const lines = ['phone,name'];
    numbers.forEach((to, i) => {
      lines.push(`${to},Cliente ${i}`);
      if (i % 50 === 0) lines.push(`${to},Cliente ${i}`); // 50 exact duplicates
      if (i % 100 === 7) lines.push(`${numbers[i + 1]}`); // 25 rows without the name column
      if (i % 125 === 3) lines.push(`12345,Nadie`); // 20 invalid numbers
    });
    const path = stack.csv(`${lines.join('\n')}\n`);

    const { runId } = await stack.campaigns.startImport({ text: 'Hola {{name}}', recipients: { csv: path } });
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 60_000 });

    expect(run.error).toBeUndefined();
    expect(run.state).toBe('completed');
    expect(run.rows).toBe(2_595);
    expect(run.counts).toEqual({
      total: 2_520,
      accepted: 2_500,
      invalid: 20,
      suppressed: 0,
      rejected: 0,
      failed: 0,
      expired: 0,
      unknown: 0,
      templateErrors: 25,
      duplicates: 50,
      skippedForCredits: 0,
    });
    const c = run.counts;
    expect(c.total + c.templateErrors + c.duplicates + c.skippedForCredits).toBe(run.rows);
    expect(run.credits).toEqual({ estimated: 2_500, charged: 2_500 });
    // 2,550 rendered rows with a valid number → chunks of 1,000, 1,000 and 550 (duplicates dropped after).
    expect(run.requests).toBe(3);
    expect(run.rowErrors).toHaveLength(20);
    expect(run.rowErrors[0]).toEqual({ row: 6, line: 7, error: 'phone: not a valid number for its country' });
    expect(run.rowErrors).toContainEqual(expect.objectContaining({ error: 'no value for column "name"' }));
    expect(JSON.stringify(run.rowErrors)).not.toContain('+346');

    const detail = await stack.campaigns.getRun(runId, { requestIds: true });
    const accepted = await acceptedNumbers(stack, detail.requestIds!);
    expect(accepted).toHaveLength(2_500);
    expect(new Set(accepted).size).toBe(2_500);
    for (const id of detail.requestIds!) {
      const request = await stack.workers.context.store.getRequest(id);
      expect(request!.total).toBeLessThanOrEqual(1_000);
    }
  });

  it('never enqueues a chunk twice when a run dies after enqueueing and is retried', async () => {
    let failures = 0;
    const stack = await start({
      campaign: {
        hooks: {
          afterEnqueue(_runId, chunk) {
            // Dies after chunk 1 reached the queue and before the run recorded it: the worst moment.
            if (chunk === 1 && failures === 0) {
              failures += 1;
              throw new Error('simulated crash after enqueue');
            }
          },
        },
      },
    });
    const numbers = spanishMobiles(3_500, 10_000);
    const path = stack.csv(`phone\n${numbers.join('\n')}\n`);

    const { runId } = await stack.campaigns.startImport({ text: 'Oferta de hoy', recipients: { csv: path } });
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 60_000 });

    expect(failures).toBe(1);
    expect(run.error).toBeUndefined();
    expect(run.state).toBe('completed');
    expect(run.requests).toBe(4);
    expect(run.counts).toMatchObject({ total: 3_500, accepted: 3_500 });
    const job = await stack.campaigns.runQueue.getJob(runId);
    expect(job?.attemptsMade).toBe(2); // the failed attempt and the one that completed
    // Exactly four send jobs ever reached the send queue: chunk 1 was re-found by its idempotency key.
    const sendJobs = await stack.workers.context
      .sendQueue('bulk')
      .getJobs(['completed', 'failed', 'active', 'waiting', 'delayed', 'waiting-children']);
    expect(sendJobs).toHaveLength(4);
    const detail = await stack.campaigns.getRun(runId, { requestIds: true });
    expect(new Set(detail.requestIds).size).toBe(4);
    const accepted = await acceptedNumbers(stack, detail.requestIds!);
    expect(accepted).toHaveLength(3_500);
    expect(new Set(accepted)).toEqual(new Set(numbers));
    expect(stack.logs()).toContain('Run attempt failed; retrying');
  });

  it('stops enqueuing at the credit budget and counts the rest skippedForCredits', async () => {
    const stack = await start();
    const path = stack.csv(`phone\n${spanishMobiles(2_500, 20_000).join('\n')}\n`);
    const { runId } = await stack.campaigns.startImport({
      text: 'Hola',
      recipients: { csv: path },
      maxCredits: 1_500,
    });
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 30_000 });
    expect(run.error).toBeUndefined();
    expect(run.state).toBe('completed');
    expect(run.requests).toBe(1);
    expect(run.counts).toMatchObject({ total: 1_000, accepted: 1_000, skippedForCredits: 1_500 });
    expect(run.credits.charged).toBe(1_000);
  });

  it('fails a run whose CSV header lacks the phone column, naming the column', async () => {
    const stack = await start();
    const path = stack.csv('telefono,name\n+34600000001,Ana\n');
    const { runId } = await stack.campaigns.startImport({ text: 'Hola {{name}}', recipients: { csv: path } });
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 20_000 });
    expect(run.state).toBe('failed');
    expect(run.error).toMatch(/no "phone" column \(columns: telefono, name\)/);
    const job = await stack.campaigns.runQueue.getJob(runId);
    expect(job?.attemptsMade).toBe(1); // not retried: it would fail the same way
    expect((await stack.workers.context.sendQueue('bulk').getJobCounts()).completed ?? 0).toBe(0);
  });

  it('skips suppressed numbers imported from CSV, on campaign runs and on API sends', async () => {
    const stack = await start();
    const numbers = spanishMobiles(10, 30_000);
    const listPath = stack.csv(
      `Number,Motivo\n${numbers[0]},STOP\n${numbers[1]!.replace('+34', '0034')},baja\n612,x\n`,
    );
    const imported = await importSuppressions(stack.producer.suppressions, listPath, {
      defaultCountry: 'ES',
    });
    expect(imported).toMatchObject({ rows: 3, added: 2, invalid: 1 });
    expect(imported.invalidRows).toEqual([{ line: 4, reason: expect.any(String) }]);

    await stack.campaigns.save({
      id: 'bajas',
      cron: '0 0 1 1 *',
      timezone: 'Europe/Madrid',
      text: 'Hola {{name}}',
      recipients: { list: numbers.map((to, i) => ({ to, name: `N${i}` })) },
    });
    const { runId } = await stack.campaigns.runNow('bajas');
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 20_000 });
    expect(run.counts).toMatchObject({ total: 10, accepted: 8, suppressed: 2 });

    const { client } = stack;
    const { id } = await client.send({ to: [numbers[0]!, numbers[5]!], text: 'Aviso' });
    const result = await client.wait(id, { timeoutMs: 20_000 });
    expect(result.counts).toMatchObject({ total: 2, accepted: 1, suppressed: 1 });
  });
});
