import { once } from 'node:events';
import { Queue, Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { absorbLateErrors, closeSharedQueue } from '../../src/queue/context.js';
import { createWorkerConnection } from '../../src/redis.js';
import { startFreezingProxy } from '../helpers/freezing-proxy.js';
import { redisUrl, uniquePrefix } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';

/**
 * Redis freezes while a BullMQ queue or worker is still starting (its `INFO` never answered), and
 * the process shuts down: BullMQ's close removes the listeners of its connections, then the
 * starting check fails when the connection ends and emits an 'error' nobody listens to. On main
 * before this, that crashed `smsq start` inside its shutdown grace period (exit code 1, seen in
 * CI with Redis SIGSTOPped), skipping the close steps still to come.
 */
describe('closing BullMQ queues and workers that never finished starting', () => {
  it('ends their connections without an unhandled error', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    onTeardown('unhandled listeners', () => {
      process.off('unhandledRejection', onUnhandled);
      process.off('uncaughtException', onUnhandled);
    });
    // Everything from BullMQ's first INFO on is held: the connection is up, its start never ends.
    const proxy = await startFreezingProxy(redisUrl(), 'info');
    onTeardown('freezing proxy', () => proxy.close());
    const connection = createWorkerConnection(proxy.url, { enableReadyCheck: false });
    await once(connection, 'ready');
    const prefix = uniquePrefix();
    const queue = new Queue('q', { connection, prefix });
    const worker = new Worker('q', () => Promise.resolve(), { connection, prefix });
    worker.on('error', () => undefined);
    await proxy.frozen;

    await closeSharedQueue(queue);
    await worker.close();
    absorbLateErrors(worker);
    connection.disconnect();
    await new Promise((r) => setTimeout(r, 500));

    expect(connection.status).toBe('end');
    expect(unhandled).toEqual([]);
  });
});
