import { describe, expect, it } from 'vitest';
import { acceptedNumbers } from '../helpers/campaigns.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq, type TestSmsq, type TestSmsqOptions } from '../helpers/test-smsq.js';
import { waitFor } from '../helpers/wait.js';

/** A gate the batch workers wait at before each send (their send-window check): closed until opened. */
function sendGate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { holdUntil: async () => (await opened, undefined), open };
}

/** Every send job that ever reached the send queue of campaigns (they are `low`: the bulk lane). */
async function sendJobs(stack: TestSmsq) {
  return stack.workers.context
    .sendQueue('bulk')
    .getJobs(['completed', 'failed', 'active', 'waiting', 'delayed', 'waiting-children', 'prioritized']);
}

/** What a run leaves of its import once it completed: nothing staged, no de-duplication hash. */
async function importLeftovers(stack: TestSmsq, runId: string): Promise<number> {
  const { redis, keys } = stack.campaigns.runs;
  return redis.exists(keys.runStaged(runId), keys.runSeen(runId));
}

describe('campaign runs stage their chunks ahead of sending', () => {
  function start(opts: Pick<TestSmsqOptions, 'campaignOptions' | 'workerOptions'> = {}) {
    return startTestSmsq({ api: false, campaigns: true, logLevel: 'info', ...opts });
  }

  it('is imported while its first chunk is still being sent, then sends every staged chunk once', async () => {
    const gate = sendGate();
    const stack = await start({
      campaignOptions: { maxOutstandingChunks: 1 },
      workerOptions: { holdUntil: gate.holdUntil },
    });
    const numbers = spanishMobiles(3_500, 40_000);
    const path = stack.csv(`phone\n${numbers.join('\n')}\n`);
    const { runId } = await stack.campaigns.startImport({ text: 'Oferta de hoy', recipients: { csv: path } });

    // Nothing can be sent yet, and only one chunk may be in flight: the rest is read and staged.
    const record = await waitFor(async () => {
      const r = await stack.campaigns.runs.getRun(runId);
      return r?.importedAt ? r : undefined;
    });
    expect(record.progress).toMatchObject({ rows: 3_500, chunks: 4 });
    const during = await stack.campaigns.getRun(runId);
    expect(during).toMatchObject({ state: 'running', rows: 3_500, requests: 1, staged: 3 });
    const { redis, keys } = stack.campaigns.runs;
    expect(await redis.hlen(keys.runStaged(runId))).toBe(3);
    expect(await redis.ttl(keys.runStaged(runId))).toBeGreaterThan(0);
    expect(await redis.exists(keys.runSeen(runId))).toBe(0); // only reading rows needs it

    gate.open();
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 60_000 });
    expect(run.error).toBeUndefined();
    expect(run).toMatchObject({ state: 'completed', requests: 4, staged: 0 });
    expect(run.counts).toMatchObject({ total: 3_500, accepted: 3_500 });
    expect(await sendJobs(stack)).toHaveLength(4);
    const detail = await stack.campaigns.getRun(runId, { requestIds: true });
    const accepted = await acceptedNumbers(stack, detail.requestIds!);
    expect(accepted).toHaveLength(3_500);
    expect(new Set(accepted)).toEqual(new Set(numbers));
    expect(await importLeftovers(stack, runId)).toBe(0);
  });

  it('resumes a run that died mid-staging: every row sent once, duplicates and the credit budget as without the crash', async () => {
    const crash: { runId?: string } = {};
    let failures = 0;
    const stack = await start({
      campaignOptions: {
        hooks: {
          afterStage(runId, chunk) {
            // Dies right after chunk 2 was staged, before anything else happened to it.
            if (runId === crash.runId && chunk === 2 && failures === 0) {
              failures += 1;
              throw new Error('simulated crash after staging');
            }
          },
        },
      },
    });
    const numbers = spanishMobiles(4_500, 50_000);
    const lines = ['phone'];
    numbers.forEach((to, i) => {
      lines.push(to);
      if (i % 30 === 29) lines.push(numbers[i - 20]!); // 150 duplicates, across chunk boundaries too
    });
    const path = stack.csv(`${lines.join('\n')}\n`);
    const spec = { text: 'Hola', recipients: { csv: path }, maxCredits: 3_200 };

    const clean = await stack.campaigns.startImport(spec);
    const reference = await stack.campaigns.waitForRun(clean.runId, { timeoutMs: 60_000 });
    const crashRun = (crash.runId = (await stack.campaigns.startImport(spec)).runId);
    const run = await stack.campaigns.waitForRun(crashRun, { timeoutMs: 60_000 });

    expect(failures).toBe(1);
    expect((await stack.campaigns.runQueue.getJob(crashRun))?.attemptsMade).toBe(2);
    expect(run.error).toBeUndefined();
    expect(run.state).toBe('completed');
    expect(reference.counts.skippedForCredits).toBeGreaterThan(0);
    expect(reference.counts.duplicates).toBeGreaterThan(0);
    expect(run.counts).toEqual(reference.counts);
    expect(run.requests).toBe(reference.requests);
    expect(run.credits.charged).toBeLessThanOrEqual(3_200);

    const detail = await stack.campaigns.getRun(crashRun, { requestIds: true });
    const accepted = await acceptedNumbers(stack, detail.requestIds!);
    expect(accepted).toHaveLength(run.counts.accepted);
    expect(new Set(accepted).size).toBe(accepted.length);
    const jobs = await sendJobs(stack);
    expect(jobs).toHaveLength(reference.requests + run.requests); // the crash enqueued nothing twice
    expect(await importLeftovers(stack, crashRun)).toBe(0);
    expect(stack.logs()).toContain('Run attempt failed; retrying');
  });

  it('counts every row after the credit budget skippedForCredits, whatever else it would have been', async () => {
    const stack = await start();
    const numbers = spanishMobiles(2_000, 70_000);
    const bad = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? '12345' : '+34 91 234 56 78'));
    const path = stack.csv(`phone\n${[...numbers, ...bad].join('\n')}\n`);
    const { runId } = await stack.campaigns.startImport({
      text: 'Hola',
      recipients: { csv: path },
      maxCredits: 1_500,
    });
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 30_000 });
    expect(run.error).toBeUndefined();
    // The second chunk does not fit: it and the 40 bad rows read after it are skipped, not invalid.
    expect(run.counts).toMatchObject({ total: 1_000, accepted: 1_000, invalid: 0, skippedForCredits: 1_040 });
    expect(run.rowErrors).toEqual([]);
  });

  it('resumes a run that died while feeding its staged chunks without reading the rows again', async () => {
    const gate = sendGate();
    let failures = 0;
    let importedWhenCrashed: boolean | undefined;
    const stack = await start({
      workerOptions: { holdUntil: gate.holdUntil },
      campaignOptions: {
        maxOutstandingChunks: 1,
        hooks: {
          async afterEnqueue(runId, chunk) {
            // Dies after chunk 2's request was enqueued and before the run recorded it.
            if (chunk === 2 && failures === 0) {
              failures += 1;
              importedWhenCrashed = (await stack.campaigns.runs.getRun(runId))?.importedAt !== undefined;
              throw new Error('simulated crash while feeding');
            }
          },
        },
      },
    });
    const numbers = spanishMobiles(4_200, 60_000);
    const path = stack.csv(`phone,name\n${numbers.map((to, i) => `${to},N${i}`).join('\n')}\n`);
    const { runId } = await stack.campaigns.startImport({ text: 'Hola {{name}}', recipients: { csv: path } });
    await waitFor(async () => (await stack.campaigns.runs.getRun(runId))?.importedAt);
    gate.open();
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 60_000 });

    expect(failures).toBe(1);
    expect(importedWhenCrashed).toBe(true);
    expect(run.error).toBeUndefined();
    expect(run).toMatchObject({ state: 'completed', rows: 4_200, requests: 5, staged: 0 });
    expect(run.counts).toMatchObject({ total: 4_200, accepted: 4_200, duplicates: 0 });
    expect(await sendJobs(stack)).toHaveLength(5); // chunk 2 was re-found by its idempotency key
    const detail = await stack.campaigns.getRun(runId, { requestIds: true });
    const accepted = await acceptedNumbers(stack, detail.requestIds!);
    expect(accepted).toHaveLength(4_200);
    expect(new Set(accepted)).toEqual(new Set(numbers));
    // The rows were read by the first attempt only.
    expect(stack.logs().split('Run imported').length - 1).toBe(1);
    expect(await importLeftovers(stack, runId)).toBe(0);
  });
});
