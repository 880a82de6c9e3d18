import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { SmsClient } from '../../src/client.js';
import { createQueueContext } from '../../src/queue/context.js';
import { enqueueRequest } from '../../src/queue/enqueue.js';
import { enqueuingMember, sweepInterruptedEnqueues } from '../../src/queue/enqueue-repair.js';
import type { RequestSummary } from '../../src/queue/summary.js';
import { finished, spawnSmsq, waitForLine } from '../helpers/cli.js';
import { startFreezingProxy } from '../helpers/freezing-proxy.js';
import { captureLogger, redisUrl } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually as until } from '../helpers/wait.js';

/** Two valid numbers and one invalid: a repaired request must count 2 failed + 1 invalid = 3. */
const SEND_ARGS = ['--to', '+34600000101', '--to', '+34600000102', '--to', '12', '--text', 'Hola'];

describe('an enqueue interrupted between its record and its send job', () => {
  function env(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      REDIS_URL: redisUrl(),
      SMSQ_PREFIX: prefix,
      SIMULATOR_LATENCY_MS: '0',
      SMSQ_LOCK_DURATION_MS: '1000',
      LOG_LEVEL: 'warn',
      ...extra,
    };
  }

  /**
   * Runs `smsq send` (a real producer process) through a proxy that stops forwarding at BullMQ's
   * add of the send job, then SIGKILLs it there: the request record is in Redis, its job is not.
   */
  async function producerKilledBeforeItsJob(prefix: string, key: string): Promise<string> {
    // BullMQ's add-job script names the wait list (a prioritized job: the prioritized set);
    // creating the Queue (its meta) does not.
    const proxy = await startFreezingProxy(redisUrl(), [
      `${prefix}:send:wait\r\n`,
      `${prefix}:send:prioritized\r\n`,
    ]);
    onTeardown('freezing proxy', () => proxy.close());
    const child = spawnSmsq(['send', ...SEND_ARGS, '--idempotency-key', key], {
      ...env(prefix),
      REDIS_URL: proxy.url,
    });
    const exit = finished(child);
    await Promise.race([
      proxy.frozen,
      exit.then((r) => {
        throw new Error(`smsq send ended before its job was added: ${r.stderr}`);
      }),
    ]);
    child.kill('SIGKILL');
    expect((await exit).signal).toBe('SIGKILL');

    const redis = new Redis(redisUrl());
    onTeardown('Redis connection', () => redis.disconnect());
    const keys = await redis.keys(`${prefix}:req:*`);
    expect(keys).toHaveLength(1);
    const id = keys[0]!.slice(`${prefix}:req:`.length);
    expect(await redis.hget(keys[0]!, 'state')).toBe('queued');
    expect(await redis.exists(`${prefix}:send:${id}`)).toBe(0);
    return id;
  }

  /** What `GET /v1/messages/:id` answers (the client reads the same summary). */
  function status(prefix: string, id: string): Promise<RequestSummary> {
    const client = new SmsClient({ redis: redisUrl(), prefix });
    return client.get(id).finally(() => client.close());
  }

  async function startWorker(
    prefix: string,
    repairAfterMs: number,
  ): Promise<{ child: ChildProcess; url: string }> {
    const child = spawnSmsq(
      ['worker', '--http-port', '0'],
      env(prefix, { SMSQ_ENQUEUE_REPAIR_AFTER_MS: String(repairAfterMs), LOG_LEVEL: 'info', PORT: '0' }),
    );
    const line = await waitForLine(child, /"Worker operations endpoints/);
    return { child, url: (JSON.parse(line) as { url: string }).url };
  }

  async function repairedCount(workerUrl: string): Promise<number> {
    const text = await (await fetch(`${workerUrl}/metrics`)).text();
    return Number(/^smsq_enqueue_repaired_total (\d+)/m.exec(text)?.[1] ?? 'NaN');
  }

  /** Reads until `done` (at most `timeoutMs`) and returns the last value read, for the assertions to judge. */
  async function eventually<T>(
    read: () => Promise<T>,
    done: (v: T) => boolean,
    timeoutMs = 15_000,
  ): Promise<T> {
    let value!: T;
    await until(async () => done((value = await read())), { timeoutMs, intervalMs: 100 }).catch(
      () => undefined,
    );
    return value;
  }

  /** A fresh prefix, removed when the test ends. */
  async function testPrefix(): Promise<string> {
    return (await startTestSmsq({ api: false, workers: false })).config.prefix;
  }

  it('is completed by the workers with its recipients failed, counted, and its key freed for a fresh enqueue', async () => {
    const prefix = await testPrefix();
    const id = await producerKilledBeforeItsJob(prefix, 'order-42');

    const worker = await startWorker(prefix, 1_000);
    const repaired = await eventually(
      () => status(prefix, id),
      (s) => s.state === 'completed',
    );
    expect(repaired).toMatchObject({
      state: 'completed',
      counts: {
        total: 3,
        accepted: 0,
        invalid: 1,
        suppressed: 0,
        rejected: 0,
        failed: 2,
        expired: 0,
        unknown: 0,
      },
      credits: { estimated: 0, charged: 0 },
      batches: [],
    });
    expect(repaired.finishedAt).toBeDefined();
    expect(
      await eventually(
        () => repairedCount(worker.url),
        (n) => n === 1,
      ),
    ).toBe(1);

    // The producer retries with the same key: a new request, sent this time.
    const retry = spawnSmsq(['send', ...SEND_ARGS, '--idempotency-key', 'order-42', '--wait'], env(prefix));
    const { code, stdout, stderr } = await finished(retry);
    expect(code, stderr).toBe(0);
    const [accepted, result] = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(accepted?.id).not.toBe(id);
    expect(result).toMatchObject({
      state: 'completed',
      counts: { total: 3, accepted: 2, invalid: 1, failed: 0 },
    });
    // Nothing else was repaired: the retry's own enqueue completed.
    expect(await repairedCount(worker.url)).toBe(1);
    expect((await status(prefix, id)).counts.failed).toBe(2);
  });

  it('a replay with the same key before the repair completes the original enqueue instead', async () => {
    const prefix = await testPrefix();
    const id = await producerKilledBeforeItsJob(prefix, 'order-43');

    const replay = spawnSmsq(['send', ...SEND_ARGS, '--idempotency-key', 'order-43'], env(prefix));
    const { code, stdout, stderr } = await finished(replay);
    expect(code, stderr).toBe(0);
    expect((JSON.parse(stdout) as { id: string }).id).toBe(id);

    // A repair age shorter than the mark's: the sweep finds the job and leaves the request alone.
    const worker = await startWorker(prefix, 500);
    const result = await eventually(
      () => status(prefix, id),
      (s) => s.state === 'completed',
    );
    expect(result.counts).toMatchObject({ total: 3, accepted: 2, invalid: 1, failed: 0 });
    const redis = new Redis(redisUrl());
    onTeardown('Redis connection', () => redis.disconnect());
    await eventually(
      () => redis.zcard(`${prefix}:enqueuing`),
      (n) => n === 0,
    );
    expect(await redis.zcard(`${prefix}:enqueuing`)).toBe(0);
    expect(await repairedCount(worker.url)).toBe(0);
  });
});

describe('the sweep of interrupted enqueues', () => {
  it('leaves alone a request whose send job is in the priority lane', async () => {
    const { config } = await startTestSmsq({ api: false, workers: false });
    const context = createQueueContext({
      redisUrl: config.redisUrl,
      prefix: config.prefix,
      defaultCountry: 'ES',
      role: 'producer',
    });
    onTeardown('producer context', () => context.close());
    await context.ready();
    const deps = { store: context.store, sendQueue: context.sendQueue, defaultCountry: 'ES' };
    // A single send (`high`): its job goes to send-priority.
    const { accepted } = await enqueueRequest(deps, { to: '+34600000103', text: 'Code 1234' });
    expect(await context.sendQueue('priority').getJob(accepted.id)).toBeDefined();
    // Its unmark (best effort) lost: the mark stays behind, older than any repair age.
    await context.redis.zadd(context.keys.enqueuing, 0, enqueuingMember(accepted.id));

    const repaired = await sweepInterruptedEnqueues({
      redis: context.redis,
      keys: context.keys,
      sendQueue: context.sendQueue,
      afterMs: 0,
      recordTtlS: 60,
      logger: captureLogger('warn').logger,
    });
    expect(repaired).toBe(0);
    expect(await context.redis.zcard(context.keys.enqueuing)).toBe(0);
    expect((await context.store.getRequest(accepted.id))?.state).toBe('queued');
  });
});
