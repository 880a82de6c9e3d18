import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startFakeOvh, writeCertFile } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { redisEnv } from '../helpers/smsq.js';
import { startSlowOpenProxy } from '../helpers/slow-open-proxy.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { waitFor } from '../helpers/wait.js';
import { busiestWindow } from '../helpers/windows.js';
import { spawnWorker } from '../helpers/worker-process.js';

/**
 * The allowance is counted where the provider counts it: when a request arrives. A call granted
 * at once but written 300 ms later (its connection was still opening, as a new HTTPS connection to
 * a distant provider is) was counted from its grant, so the calls granted a second after it, on
 * connections already open, arrived in the same second as it: 11 and more where OVH allows 10.
 */
describe('the provider allowance when a call leaves late', () => {
  it('counts a call from when its request was written, so no second at OVH holds more than OVH_RATE_PER_S', async () => {
    const rate = 10;
    const fake = await startFakeOvh();
    onTeardown('fake OVH', () => fake.close());
    const proxy = await startSlowOpenProxy({ target: new URL(fake.endpointUrl), openingMs: 300 });
    onTeardown('slow-open proxy', () => proxy.close());
    const numbers = spanishMobiles(40);
    // OVH answers each job in 300 ms: a call per 100 ms needs 3 or more connections, and each new
    // one takes 300 ms to open, so the pool grows while the calls on open connections leave at once.
    for (let i = 0; i < numbers.length; i++)
      fake.script('POST /sms/{sn}/jobs', { acceptThen: () => sleep(300) });
    const { config, client } = await startTestSmsq({ api: false, workers: false });
    const env = {
      ...redisEnv(),
      SMSQ_PREFIX: config.prefix,
      SMSQ_PROVIDER: 'ovh',
      ...fake.env,
      OVH_ENDPOINT: proxy.url(fake.endpointUrl),
      OVH_SERVICE_NAME: fake.serviceName,
      OVH_RATE_PER_S: String(rate),
      NODE_EXTRA_CA_CERTS: writeCertFile(fake.certPem),
      LOG_LEVEL: 'info',
    };
    for (const to of numbers) await client.send({ to, text: 'Hola' });
    const worker = spawnWorker(env);
    await worker.waitForOutput('Workers started');

    await waitFor(() => Promise.resolve(fake.recipientsReceived().length === numbers.length), {
      timeoutMs: 30_000,
      what: 'every batch sent',
    });
    const jobs = fake.requests.filter((r) => r.method === 'POST' && r.route === 'POST /sms/{sn}/jobs');
    expect(jobs).toHaveLength(numbers.length);
    // The pool did grow: several calls went out on a connection that took 300 ms to open.
    expect(proxy.connections()).toBeGreaterThanOrEqual(3);
    expect(
      busiestWindow(
        jobs.map((r) => r.at),
        1_000,
      ),
    ).toBeLessThanOrEqual(rate);
    expect(new Set(fake.recipientsReceived()).size).toBe(numbers.length);
  });
});
