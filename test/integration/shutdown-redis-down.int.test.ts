import type { ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { SmsClient } from '../../src/client.js';
import { spawnSmsq, waitForLine } from '../helpers/cli.js';
import { startFakeDescom } from '../helpers/fake-descom.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { uniquePrefix } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { waitFor } from '../helpers/wait.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

/** What the first stage may take beyond SMSQ_SHUTDOWN_TIMEOUT_MS (lifecycle's margin plus process teardown). */
const MARGIN_MS = 3_000;
const GRACE_MS = 1_000;

describe('shutdown while Redis is unreachable', () => {
  async function privateRedis(): Promise<PrivateRedis> {
    const redis = await startPrivateRedis();
    // A stopped server would never act on the SIGTERM of destroy().
    onTeardown('private Redis', () => {
      redis.signal('SIGCONT');
      return redis.destroy();
    });
    return redis;
  }

  function env(redis: PrivateRedis, graceMs: number): Record<string, string> {
    return {
      REDIS_URL: redis.url,
      SMSQ_PREFIX: uniquePrefix(),
      SMSQ_SHUTDOWN_TIMEOUT_MS: String(graceMs),
      SMSQ_LOCK_DURATION_MS: '1000',
      // A dead worker's call counts as in flight until its deadline (+2 s): keep it short.
      SMSQ_PROVIDER_TIMEOUT_MS: '2000',
      SIMULATOR_LATENCY_MS: '0',
      LOG_LEVEL: 'info',
    };
  }

  async function startedWorker(redis: PrivateRedis, graceMs: number): Promise<WorkerProcess> {
    const worker = spawnWorker(env(redis, graceMs));
    await worker.waitForOutput('Campaign workers started');
    return worker;
  }

  /** Makes Redis unreachable the given way and waits until the worker noticed (or, stopped, cannot). */
  async function loseRedis(redis: PrivateRedis, how: 'stop' | 'SIGKILL' | 'SIGSTOP'): Promise<void> {
    if (how === 'stop') await redis.stop();
    else redis.signal(how);
    // Let the workers' connections reach their reconnect loop (or, frozen, block on their commands).
    await new Promise((r) => setTimeout(r, 300));
  }

  it.each(['stop', 'SIGKILL', 'SIGSTOP'] as const)(
    'Redis gone (%s): one SIGTERM ends the worker process within the grace period plus a small margin',
    async (how) => {
      const redis = await privateRedis();
      const worker = await startedWorker(redis, GRACE_MS);
      await loseRedis(redis, how);

      const signalledAt = Date.now();
      worker.child.kill('SIGTERM');
      const code = await Promise.race([
        worker.exited,
        new Promise((r) => setTimeout(() => r('still running'), GRACE_MS + MARGIN_MS)),
      ]);
      expect(code, worker.output()).not.toBe('still running');
      expect(Date.now() - signalledAt).toBeLessThan(GRACE_MS + MARGIN_MS);
      // 1 when the deadline forced the exit (the usual case: a QUIT to a Redis that is gone never returns).
      expect([0, 1]).toContain(code);
    },
  );

  it('Redis gone mid-batch: the forced exit loses nothing; with Redis back the batch is settled, never resent', async () => {
    const redis = await startPrivateRedis({ persistent: true });
    onTeardown('private Redis', () => redis.destroy());
    const fake = await startFakeDescom();
    onTeardown('fake Descom', () => fake.close());
    fake.script('hang');
    const base = env(redis, GRACE_MS);
    const workerEnv = {
      ...base,
      SMSQ_PROVIDER: 'descom',
      ...fake.env,
    };
    const client = new SmsClient({ redis: redis.url, prefix: base.SMSQ_PREFIX! });
    onTeardown('client', () => client.close());
    const worker = spawnWorker(workerEnv);
    const { id } = await client.send({ to: spanishMobiles(2), text: 'Hola' });
    await fake.waitForRequests(1);

    await redis.stop();
    const signalledAt = Date.now();
    worker.child.kill('SIGTERM');
    await worker.exited;
    expect(Date.now() - signalledAt).toBeLessThan(GRACE_MS + MARGIN_MS);

    await redis.start();
    spawnWorker(workerEnv);
    const summary = await waitFor(
      async () => {
        const s = await client.get(id);
        return s.state === 'completed' ? s : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, retryErrors: true, what: `request ${id} completed` },
    );
    expect(summary).toMatchObject({ state: 'completed', counts: { total: 2, unknown: 2 } });
    expect(fake.requests.filter((r) => r.path === '/api/sms/send')).toHaveLength(1);
  });

  it('Redis gone: a second SIGTERM ends the worker process at once, with a non-zero exit code', async () => {
    const redis = await privateRedis();
    // A grace period far longer than the test: only the second signal can end it in time.
    const worker = await startedWorker(redis, 120_000);
    await loseRedis(redis, 'stop');

    worker.child.kill('SIGTERM');
    await worker.waitForOutput('Shutting down');
    const signalledAt = Date.now();
    worker.child.kill('SIGTERM');
    const code = await Promise.race([
      worker.exited,
      new Promise((r) => setTimeout(() => r('still running'), 1_500)),
    ]);
    expect(code, worker.output()).not.toBe('still running');
    expect(Date.now() - signalledAt).toBeLessThan(1_500);
    expect(code).toBe(1);
  });

  it('Redis frozen (SIGSTOP): smsq start ends within the grace period plus a small margin, and at once on a second SIGTERM', async () => {
    const redis = await privateRedis();
    const output = new Map<ChildProcess, string>();
    const started = async (graceMs: number): Promise<ChildProcess> => {
      const child = spawnSmsq(['start'], { ...env(redis, graceMs), PORT: '0', SMSQ_API_KEYS: 'k' });
      output.set(child, '');
      for (const stream of [child.stdout, child.stderr])
        stream?.on('data', (chunk: Buffer) => output.set(child, output.get(child) + chunk.toString()));
      await waitForLine(child, /"smsq started/);
      return child;
    };
    const first = await started(GRACE_MS);
    const second = await started(120_000);
    await loseRedis(redis, 'SIGSTOP');

    const signalledAt = Date.now();
    first.kill('SIGTERM');
    second.kill('SIGTERM');
    const firstCode = await exitWithin(first, GRACE_MS + MARGIN_MS);
    expect(Date.now() - signalledAt).toBeLessThan(GRACE_MS + MARGIN_MS);
    expect([0, 1]).toContain(firstCode);

    // `second` is still inside its two-minute grace period.
    expect(second.exitCode, output.get(second)).toBeNull();
    const againAt = Date.now();
    second.kill('SIGTERM');
    expect(await exitWithin(second, 1_500)).toBe(1);
    expect(Date.now() - againAt).toBeLessThan(1_500);
  });
});

/** The exit code (or signal) of `child`, or 'still running' when it has not exited within `ms`. */
function exitWithin(child: ChildProcess, ms: number): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still running'), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal ?? -1);
    });
  });
}
