import { describe, expect, it } from 'vitest';
import { createWindowHold, type SendWindow } from '../../src/message/send-window.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq, type TestSmsqOptions } from '../helpers/test-smsq.js';

/** A wall clock the test sets: it then runs at real speed from there. */
function movableClock() {
  let wall = Date.now();
  let setAt = Date.now();
  return {
    now: () => wall + (Date.now() - setAt),
    set(iso: string) {
      wall = Date.parse(iso);
      setAt = Date.now();
    },
  };
}

const TEN_TO_ELEVEN: SendWindow = { days: [1, 2, 3, 4, 5, 6, 7], from: '10:00', to: '11:00' };

describe('send windows and expiry at dispatch', () => {
  async function start(campaign: TestSmsqOptions['campaignOptions'] = {}, clock = movableClock()) {
    const stack = await startTestSmsq({
      api: false,
      campaigns: true,
      workerOptions: { holdUntil: createWindowHold({ clock: clock.now }) },
      campaignOptions: { clock: clock.now, ...campaign },
      logLevel: 'info',
    });
    return { stack, client: stack.client, clock };
  }

  it('holds a batch outside its window until it opens, using no attempt', async () => {
    const { stack, client, clock } = await start();
    clock.set('2025-06-10T09:59:59.200Z'); // 0.8 s before the window opens
    const started = Date.now();
    const { id } = await client.send({
      to: spanishMobiles(2),
      text: 'Hola',
      window: TEN_TO_ELEVEN,
      timezone: 'UTC',
    });
    const result = await client.wait(id, { timeoutMs: 10_000, pollMs: 50 });
    const elapsed = Date.now() - started;

    expect(result.counts).toMatchObject({ total: 2, accepted: 2 });
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeLessThan(5_000);
    expect(result.batches[0]!.attempts).toBe(1);
    const job = await stack.workers.context.batchQueues('simulator').bulk.getJob(result.batches[0]!.id);
    expect(job?.attemptsMade).toBe(1); // the send; the hold used none
  });

  it('ends a held batch expired at its expiresAt when the window opens later', async () => {
    const { client, clock } = await start();
    clock.set('2025-06-10T09:00:00.000Z'); // the window opens in an hour
    const expiresAt = new Date(Date.now() + 800).toISOString();
    const { id } = await client.send({
      to: spanishMobiles(3),
      text: 'Hola',
      window: TEN_TO_ELEVEN,
      timezone: 'UTC',
      expiresAt,
    });
    const result = await client.wait(id, { timeoutMs: 10_000, pollMs: 50 });
    expect(result.counts).toMatchObject({ total: 3, accepted: 0, expired: 3 });
    expect(result.batches.every((b) => b.state === 'expired' && b.attempts === 0)).toBe(true);
  });

  it('defers a campaign run while its window is closed, then sends', async () => {
    const { stack, clock } = await start();
    clock.set('2025-06-10T09:59:59.300Z');
    const { runId } = await stack.campaigns.startImport({
      text: 'Hola {{name}}',
      recipients: { list: spanishMobiles(4).map((to, i) => ({ to, name: `N${i}` })) },
      window: TEN_TO_ELEVEN,
      timezone: 'UTC',
    });
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 10_000, pollMs: 50 });
    expect(run.state).toBe('completed');
    expect(run.counts).toMatchObject({ total: 4, accepted: 4 });
    expect(Date.parse(run.startedAt!) - Date.parse(run.createdAt)).toBeGreaterThanOrEqual(500);
    expect(stack.logs()).toContain('Send window closed; run deferred to its next opening');
  });

  it('counts a run expired when expiresAfter passes before its window opens', async () => {
    const { stack, clock } = await start();
    clock.set('2025-06-10T08:00:00.000Z'); // two hours before the window
    const { runId } = await stack.campaigns.startImport({
      text: 'Hola',
      recipients: { list: spanishMobiles(5).map((to) => ({ to })) },
      window: TEN_TO_ELEVEN,
      timezone: 'UTC',
      expiresAfter: 'PT0.5S',
    });
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 10_000, pollMs: 50 });
    expect(run.state).toBe('completed');
    expect(run.counts).toMatchObject({ total: 5, accepted: 0, expired: 5 });
    expect(run.credits.charged).toBe(0);
  });

  it('defers a run whose window closes mid-run and resumes it without enqueueing twice', async () => {
    const clock = movableClock();
    const { stack } = await start(
      {
        chunkSize: 2,
        maxOutstandingChunks: 1,
        hooks: {
          afterEnqueue(_runId, chunk) {
            // The window closes right after the first chunk went out; it reopens tomorrow.
            if (chunk === 0) clock.set('2025-06-10T11:00:00.000Z');
          },
        },
      },
      clock,
    );
    clock.set('2025-06-10T10:59:00.000Z');
    const { runId } = await stack.campaigns.startImport({
      text: 'Hola',
      recipients: { list: spanishMobiles(4, 100).map((to) => ({ to })) },
      window: TEN_TO_ELEVEN,
      timezone: 'UTC',
      expiresAfter: 'PT1.5S',
    });
    const run = await stack.campaigns.waitForRun(runId, { timeoutMs: 10_000, pollMs: 50 });
    expect(run.state).toBe('completed');
    expect(run.requests).toBe(2);
    // Held past the window until expiresAt, every message ends expired, none sent.
    expect(run.counts).toMatchObject({ total: 4, accepted: 0, expired: 4 });
    expect(stack.logs()).toContain('Send window closed; run deferred to its next opening');
    expect(await stack.workers.context.sendQueue('bulk').getJobCounts('completed')).toEqual({ completed: 2 });
  });
});
