import { afterEach, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/campaigns/run-summary.js';
import { acceptedNumbers, startCampaignStack, type CampaignStack } from '../helpers/campaigns.js';
import { spanishMobiles } from '../helpers/numbers.js';

async function until<T>(what: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('cron-scheduled campaigns', () => {
  let stack: CampaignStack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('runs each occurrence of a seconds-level cron once, even with two campaign workers', async () => {
    // A second campaign worker process restores the schedulers too: still one run per occurrence.
    stack = await startCampaignStack({ extraCampaignWorkers: 1 });
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
    await until(async () => {
      const runs = await s.campaigns.listRuns('every-second');
      return runs.filter((r) => r.state === 'completed').length >= 2 ? runs : undefined;
    }, 15_000);
    await s.campaigns.remove('every-second');
    expect(await s.campaigns.runQueue.getJobScheduler('every-second')).toBeUndefined();
    // Let a run already started finish, then make sure no new one appears.
    const runs: RunSummary[] = await until(async () => {
      const all = await s.campaigns.listRuns('every-second');
      return all.every((r) => r.state === 'completed') ? all : undefined;
    }, 10_000);
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
    const sendJobs = await s.workers.context.sendQueue.getJobCounts('completed');
    expect(sendJobs.completed).toBe(runs.length);
  });
});
