import { describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/campaigns/run-summary.js';
import { acceptedNumbers } from '../helpers/campaigns.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { waitFor } from '../helpers/wait.js';

describe('cron-scheduled campaigns', () => {
  it('runs each occurrence of a seconds-level cron once, even with two campaign workers', async () => {
    // A second worker process restores the schedulers too: still one run per occurrence.
    const stack = await startTestSmsq({ api: false, campaigns: true, logLevel: 'info' });
    await stack.startWorkers();
    const numbers = spanishMobiles(3, 40_000);
    const saved = await stack.campaigns.save({
      id: 'every-second',
      cron: '* * * * * *',
      timezone: 'Europe/Madrid',
      text: 'Hola {{name}}',
      recipients: { list: numbers.map((to, i) => ({ to, name: `N${i}` })) },
    });
    expect(saved.nextRunAt).toBeDefined();

    const s = stack;
    await waitFor(
      async () => {
        const runs = await s.campaigns.listRuns('every-second');
        return runs.filter((r) => r.state === 'completed').length >= 2 ? runs : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    await s.campaigns.remove('every-second');
    expect(await s.campaigns.runQueue.getJobScheduler('every-second')).toBeUndefined();
    // Let a run already started finish, then make sure no new one appears.
    const runs: RunSummary[] = await waitFor(
      async () => {
        const all = await s.campaigns.listRuns('every-second');
        return all.every((r) => r.state === 'completed') ? all : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    await new Promise((r) => setTimeout(r, 1_200));
    expect(await s.campaigns.listRuns('every-second')).toHaveLength(runs.length);

    expect(runs.length).toBeGreaterThanOrEqual(2);
    const occurrences = runs.map((r) => Date.parse(r.occurrence));
    expect(new Set(occurrences).size).toBe(runs.length);
    expect(occurrences.every((ms) => ms % 1000 === 0)).toBe(true);
    for (const run of runs) {
      expect(run.kind).toBe('scheduled');
      expect(run.runId).toBe(`every-second.${Date.parse(run.occurrence)}`);
      expect(run.counts).toMatchObject({ total: 3, accepted: 3 });
    }
    const requestIds: string[] = [];
    for (const run of runs) {
      requestIds.push(...(await s.campaigns.getRun(run.runId, { requestIds: true })).requestIds!);
    }
    expect(requestIds).toHaveLength(runs.length);
    const accepted = await acceptedNumbers(s, requestIds);
    for (const n of numbers) expect(accepted.filter((a) => a === n)).toHaveLength(runs.length);
    const sendJobs = await s.workers.context.sendQueue('bulk').getJobCounts('completed');
    expect(sendJobs.completed).toBe(runs.length);
  });
});
