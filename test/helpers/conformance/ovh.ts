import { expect } from 'vitest';
import { z } from 'zod';
import { createLogger } from '../../../src/logger.js';
import { ovhModule } from '../../../src/providers/ovh/module.js';
import { UNMETERED } from '../../../src/providers/types.js';
import { startFakeOvh, trustCert, type FakeOvh } from '../fake-ovh.js';
import { closedPort } from './descom.js';
import { abortWhen, recipientsOf, type ConformanceAdapter, type Fault } from './types.js';

export const ovhAdapter: ConformanceAdapter = {
  lookup: true,
  async start({ timeoutMs }) {
    const fakes: FakeOvh[] = [];
    const startFake = async (opts?: Parameters<typeof startFakeOvh>[0]) => {
      const fake = await startFakeOvh(opts);
      trustCert(fake.certPem);
      fakes.push(fake);
      return fake;
    };
    const fake = await startFake();
    const logger = createLogger('silent');
    /** Built the way smsq builds it: the module's env schema, `fromEnv`, `create`. */
    const build = (target: FakeOvh, env: Record<string, string> = {}) => {
      const parsed = z.object(ovhModule.envShape).parse({
        ...target.env,
        OVH_SERVICE_NAME: target.serviceName,
        ...env,
      });
      const { config } = ovhModule.fromEnv(parsed);
      if (!config) throw new Error('OVH not configured');
      return ovhModule.create(config, { logger, timeoutMs, meter: UNMETERED });
    };
    const provider = await build(fake);
    // Sync OVH's clock now, so a fault's timing concerns the call under test only.
    await provider.probe({ signal: AbortSignal.timeout(timeoutMs) });
    const send =
      (action: Parameters<FakeOvh['script']>[1]): Fault =>
      () =>
        fake.script('POST /sms/{sn}/jobs', action);
    const status = (code: number) => send({ status: code });
    const faults: Record<string, Fault> = {
      'HTTP 200': () => {},
      'HTTP 2xx': send('accept-204'),
      'HTTP 400, credit below the estimate': () => fake.setCreditsLeft(0),
      'HTTP 400, credit enough': status(400),
      'HTTP 400, credit check refused': () => {
        fake.script('POST /sms/{sn}/jobs', { status: 400 });
        fake.script('GET /sms/{sn}', { status: 403 });
      },
      'HTTP 400, credit check failed': () => {
        fake.script('POST /sms/{sn}/jobs', { status: 400 });
        fake.script('GET /sms/{sn}', { status: 500 });
      },
      'GET HTTP 400': () => {
        fake.script('GET /sms/{sn}/jobs', { status: 400 });
        return { call: 'lookup' };
      },
      'HTTP 401': status(401),
      'HTTP 403': status(403),
      'HTTP 403 NOT_GRANTED_CALL': send('not-granted'),
      'HTTP 404': status(404),
      'HTTP 409': status(409),
      'HTTP 408': status(408),
      'HTTP 429': status(429),
      'HTTP 4xx': status(422),
      'HTTP 3xx': status(302),
      'HTTP 5xx': send('html-502'),
      'never-left': async () => {
        const deadUrl = `https://127.0.0.1:${await closedPort()}/1.0`;
        const dead = { ...fake, endpointUrl: deadUrl, env: { ...fake.env, OVH_ENDPOINT: deadUrl } };
        return { provider: await build(dead) };
      },
      'reason network': send('drop-after-accept'),
      'reason deadline': send('hang'),
      'reason aborted': () => {
        let received!: () => void;
        const ready = new Promise<void>((resolve) => (received = resolve));
        fake.script('POST /sms/{sn}/jobs', { acceptThen: () => (received(), new Promise(() => {})) });
        return { signal: abortWhen(ready) };
      },
      'batch shape': (batch) => ({
        batch: { ...batch, messages: [...batch.messages, { text: 'two', to: ['+33600000009'] }] },
      }),
      'batch tag': (batch) => ({ batch: { ...batch, tag: 'x'.repeat(21) } }),
      'service name unknown': async () => {
        const two = await startFake({ serviceNames: ['sms-a-1', 'sms-b-2'] });
        return { provider: await build(two, { OVH_SERVICE_NAME: '' }) };
      },
      'GET listed SMS missing': async (batch) => {
        // One recipient, so one SMS whose details the lookup reads (no second read left in flight).
        const one = {
          ...batch,
          messages: [{ text: 'Hola', to: [recipientsOf(batch)[0] ?? ''] }],
          estimatedCredits: 1,
        };
        const receipt = await provider.send(one, { signal: AbortSignal.timeout(timeoutMs) });
        expect(receipt.providerIds).toHaveLength(1);
        fake.script('GET /sms/{sn}/outgoing/{id}', { status: 404 });
        return { call: 'lookup', batch: one };
      },
    };
    return {
      provider,
      delivered: () => fake.recipientsReceived(),
      setCredits: (credits) => fake.setCreditsLeft(credits),
      rateLimitNext: (retryAfter) =>
        fake.script('POST /sms/{sn}/jobs', { status: 429, headers: { 'Retry-After': retryAfter } }),
      faults,
      unreachable: {
        'reason non-json-body':
          'the wire is watched, so an unparseable body keeps its status (HTTP 5xx, HTTP 200)',
        otherwise: 'every failure the client produces has a status or a reason',
      },
      dropAfterSend: 'reason network',
      hang: 'reason deadline',
      async close() {
        await provider.close();
        await Promise.all(fakes.map((f) => f.close()));
      },
    };
  },
};
