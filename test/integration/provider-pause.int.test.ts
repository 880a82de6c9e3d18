/**
 * Pause and resume that do not loop (ProviderControl): probe back-off on flaps, and giving up on a
 * refusal a probe cannot tell from a lasting one. Real Redis, real BullMQ queues and workers; the
 * provider is a small in-test account whose probe always says "resume".
 */
import { Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { AccountError } from '../../src/errors.js';
import type { Batch, BatchReceipt, ProviderId } from '../../src/message/types.js';
import type { ProbeOptions, SmsProvider } from '../../src/providers/types.js';
import { createBatchProcessor } from '../../src/queue/batch-processor.js';
import { createQueueContext } from '../../src/queue/context.js';
import type { BatchJobData, BatchJobResult } from '../../src/queue/jobs.js';
import { batchQueueName } from '../../src/queue/names.js';
import { ProviderControl } from '../../src/queue/provider-control.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { captureLogger, redisUrl, removePrefix, uniquePrefix } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

/** An external provider stand-in: its probe always says the account works; `send` refuses while `refusing`. */
function refusingProvider(id: ProviderId, code: string, failAfterRepeats?: number) {
  const provider = {
    refusing: true,
    /** What the probe answers. */
    probeSays: true,
    sends: [] as number[],
    probes: [] as { at: number; neededCredits?: number }[],
    id,
    limits: { maxMessagesPerRequest: 10, maxRecipientsPerMessage: 100 },
    send(batch: Batch): Promise<BatchReceipt> {
      provider.sends.push(Date.now());
      if (provider.refusing) {
        return Promise.reject(
          new AccountError('refused for the account', {
            code,
            ...(failAfterRepeats !== undefined && { failAfterRepeats }),
          }),
        );
      }
      return Promise.resolve({
        providerIds: [`id-${batch.id}`],
        accepted: batch.messages.flatMap((m) => m.to),
        invalid: [],
        creditsCharged: batch.estimatedCredits,
      });
    },
    probe(opts: ProbeOptions): Promise<boolean> {
      provider.probes.push({
        at: Date.now(),
        ...(opts.neededCredits !== undefined && { neededCredits: opts.neededCredits }),
      });
      return Promise.resolve(provider.probeSays);
    },
    close: () => Promise.resolve(),
  } satisfies SmsProvider & Record<string, unknown>;
  return provider;
}

describe('Provider pause: probe back-off on flaps', () => {
  it('doubles the probe interval each time a resume is followed by a pause, and says so', async () => {
    const provider = refusingProvider('simulator', 'SMSQ_TEST_REFUSED');
    const {
      workers,
      client,
      logs: lines,
    } = await startTestSmsq({
      api: false,
      env: { SMSQ_PROVIDER: 'simulator', SMSQ_PROBE_INTERVAL_MS: '200' },
      workerOptions: { providers: new Map([['simulator', provider]]) },
    });

    const { id } = await client.send({ to: spanishMobiles(3), text: 'Hola' });
    // Three refusals, each after a probe said "resume": 200 ms → 400 ms → 800 ms between pause and probe.
    await eventually(() => Promise.resolve(provider.sends.length >= 3), 10_000);
    const thirdPauseAt = provider.sends[2]!;
    await eventually(async () => (await workers.control.pauseState('simulator')).intervalMs === 800);
    await eventually(() => Promise.resolve(provider.probes.some((p) => p.at > thirdPauseAt)), 10_000);
    const nextProbe = provider.probes.find((p) => p.at > thirdPauseAt)!;
    expect(nextProbe.at - thirdPauseAt).toBeGreaterThanOrEqual(700);
    expect(lines()).toMatch(/paused again \d+ ms after resuming; probing it every 400 ms/);
    expect(lines()).toMatch(/paused again \d+ ms after resuming; probing it every 800 ms/);

    provider.refusing = false;
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 3, accepted: 3 });
  });
});

describe('Provider pause: ProviderControl on its own queue', () => {
  /** A queue for `provider` holding one planned batch per estimate, and a ProviderControl over it. */
  async function setup(
    provider: ReturnType<typeof refusingProvider>,
    estimates: number[],
    opts: { flapWindowMs?: number; maxProbeIntervalMs?: number } = {},
  ) {
    const context = createQueueContext({
      redisUrl: redisUrl(),
      prefix: uniquePrefix(),
      defaultCountry: 'ES',
      role: 'worker',
    });
    onTeardown('queue context', async () => {
      await context.close();
      await removePrefix(redisUrl(), context.prefix);
    });
    const { logger, lines } = captureLogger('debug');
    const lanes = context.batchQueues(provider.id);
    const queue = lanes.bulk;
    const control = new ProviderControl({
      redis: context.redis,
      keys: context.keys,
      queues: new Map([[provider.id, lanes]]),
      providers: new Map([[provider.id, provider]]),
      probeIntervalMs: 100,
      logger,
      ...opts,
    });
    const requestId = 'req-1';
    const batches: Batch[] = estimates.map((estimatedCredits, i) => ({
      id: `b${i}`,
      requestId,
      provider: provider.id,
      tag: `t${i}`,
      messages: [{ text: 'Hola', to: spanishMobiles(estimatedCredits, i * 100) }],
      estimatedCredits,
    }));
    await context.store.savePlan(requestId, {
      provider: provider.id,
      suppressed: 0,
      batches: batches.map((batch) => ({ batch, state: 'planned', attempts: 0 })),
    });
    await queue.pause();
    for (const batch of batches) await queue.add('batch', { batchId: batch.id, requestId });
    return { context, control, queue, batches, lines, logger };
  }

  /** Runs one probe round now and waits until the provider is resumed. */
  async function resumeByProbe(control: ProviderControl, provider: ProviderId) {
    await eventually(async () => {
      await control.probePaused();
      return (await control.pausedReason(provider)) === undefined;
    });
  }

  it("asks the probe for the cheapest waiting batch's credits, else the pause record's", async () => {
    const provider = refusingProvider('ovh', 'SMSQ_TEST_NO_CREDIT');
    const { context, control, batches } = await setup(provider, [30, 12, 50]);
    await control.pause('ovh', { code: 'SMSQ_TEST_NO_CREDIT', message: 'no credit', neededCredits: 30 });
    await resumeByProbe(control, 'ovh');
    expect(provider.probes.at(-1)?.neededCredits).toBe(12);

    // Batches no longer waiting (sent, failed…) do not count; with none left, the record's figure is used.
    for (const batch of batches) await context.store.transition(batch, ['planned'], 'failed');
    await control.pause('ovh', { code: 'SMSQ_TEST_NO_CREDIT', message: 'no credit', neededCredits: 30 });
    await resumeByProbe(control, 'ovh');
    expect(provider.probes.at(-1)?.neededCredits).toBe(30);
  });

  it('fails the waiting batches after failAfterRepeats pauses with the same code, resumes, and the jobs drain', async () => {
    const provider = refusingProvider('ovh', 'SMSQ_TEST_NOT_GRANTED', 3);
    const { context, control, queue, batches, lines, logger } = await setup(provider, [2, 3, 4]);
    const reason = { code: 'SMSQ_TEST_NOT_GRANTED', message: 'call not granted', failAfterRepeats: 3 };

    // What the batch processor does on each refusal: pause; the probe (always true) resumes.
    await control.pause('ovh', { ...reason, neededCredits: 2 });
    await resumeByProbe(control, 'ovh');
    await control.pause('ovh', { ...reason, neededCredits: 2 });
    expect((await control.pauseState('ovh')).repeats).toBe(2);
    expect((await context.store.getBatch('b0'))?.state).toBe('planned');
    await resumeByProbe(control, 'ovh');
    await control.pause('ovh', { ...reason, neededCredits: 2 });

    for (const batch of batches) {
      const record = await context.store.getBatch(batch.id);
      expect(record?.state).toBe('failed');
      expect(record?.error).toMatch(/SMSQ_TEST_NOT_GRANTED: call not granted/);
    }
    expect(await queue.isPaused()).toBe(false);
    expect(await control.pausedReason('ovh')).toBeUndefined();
    expect(lines()).toMatch(
      /"level":50.*refused 3 times in a row \(SMSQ_TEST_NOT_GRANTED\).*3 waiting batches failed/,
    );

    // The real batch processor drains the jobs at once, never calling the provider.
    const processor = createBatchProcessor({
      store: context.store,
      provider,
      control,
      ambiguous: 'report',
      attempts: 3,
      providerTimeoutMs: 1_000,
      logger,
    });
    const workerConnection = context.redis.duplicate();
    // A connection handed to a Worker is shared: worker.close() leaves it open.
    onTeardown('worker connection', () => workerConnection.disconnect());
    const worker: Worker = new Worker<BatchJobData, BatchJobResult>(
      batchQueueName('ovh', 'bulk'),
      processor,
      {
        connection: workerConnection,
        prefix: context.prefix,
      },
    );
    onTeardown('batch worker', () => worker.close());
    await eventually(async () => (await queue.getCompletedCount()) === 3);
    const completed = await queue.getCompleted();
    expect(completed.map((j) => (j.returnvalue as BatchJobResult).state)).toEqual([
      'failed',
      'failed',
      'failed',
    ]);
    expect(provider.sends).toHaveLength(0);
  });

  it('restarts the repeat count on another code and after a resume that stays calm; a calm pause resets the interval', async () => {
    const provider = refusingProvider('ovh', 'SMSQ_TEST_A');
    const { context, control } = await setup(provider, [1], { flapWindowMs: 300 });
    const a = { code: 'SMSQ_TEST_A', message: 'a', failAfterRepeats: 2 };
    const b = { code: 'SMSQ_TEST_B', message: 'b', failAfterRepeats: 2 };

    await control.pause('ovh', a);
    await resumeByProbe(control, 'ovh');
    await control.pause('ovh', b); // another code: count restarts at 1
    expect(await control.pauseState('ovh')).toMatchObject({
      repeatCode: 'SMSQ_TEST_B',
      repeats: 1,
      intervalMs: 200,
    });
    await resumeByProbe(control, 'ovh');
    await control.pause('ovh', a);
    expect(await control.pauseState('ovh')).toMatchObject({ repeats: 1, intervalMs: 400 });
    await resumeByProbe(control, 'ovh');

    // Calm: nothing paused it for the flap window after the resume.
    const { resumedAt } = await control.pauseState('ovh');
    await eventually(() => Promise.resolve(Date.now() - resumedAt! > 300));
    await control.pause('ovh', a);
    expect(await control.pauseState('ovh')).toMatchObject({ repeats: 1, intervalMs: 100 });
    expect((await context.store.getBatch('b0'))?.state).toBe('planned');
  });

  it('shares the pause across worker processes: one probe per due interval, whichever process claims it', async () => {
    const provider = refusingProvider('ovh', 'SMSQ_TEST_A');
    const { context, control, logger } = await setup(provider, [1]);
    // A second process: its own Redis connection and ProviderControl over the same prefix.
    const otherRedis = context.redis.duplicate();
    onTeardown('second process connection', () => otherRedis.disconnect());
    const other = new ProviderControl({
      redis: otherRedis,
      keys: context.keys,
      queues: new Map([['ovh', context.batchQueues('ovh')]]),
      providers: new Map([['ovh', provider]]),
      probeIntervalMs: 100,
      logger,
    });
    provider.probeSays = false; // stays paused: every due probe is counted
    const probes = () => provider.probes.map((p) => p.at);

    await control.pause('ovh', { code: 'SMSQ_TEST_A', message: 'a' });
    const startedAt = Date.now();
    await eventually(async () => {
      await Promise.all([
        control.probePaused(),
        other.probePaused(),
        control.probePaused(),
        other.probePaused(),
      ]);
      return probes().length >= 3;
    });
    // Due at +100, +200, +300 ms: never two probes for one due time.
    const at = probes();
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(90);
    expect(at[0]! - startedAt).toBeGreaterThanOrEqual(90);
  });

  it('counts concurrent pauses of one episode once, and caps the interval', async () => {
    const provider = refusingProvider('ovh', 'SMSQ_TEST_A');
    const { control } = await setup(provider, [1], { maxProbeIntervalMs: 300 });
    const a = { code: 'SMSQ_TEST_A', message: 'a' };
    await Promise.all([control.pause('ovh', a), control.pause('ovh', a), control.pause('ovh', a)]);
    expect(await control.pauseState('ovh')).toMatchObject({ repeats: 1, intervalMs: 100 });
    for (let i = 0; i < 3; i++) {
      await resumeByProbe(control, 'ovh');
      await control.pause('ovh', a);
    }
    expect(await control.pauseState('ovh')).toMatchObject({ repeats: 4, intervalMs: 300 });
  });
});
