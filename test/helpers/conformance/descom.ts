import { once } from 'node:events';
import { createServer } from 'node:net';
import { z } from 'zod';
import { createLogger } from '../../../src/logger.js';
import { descomModule } from '../../../src/providers/descom/module.js';
import { UNMETERED } from '../../../src/providers/types.js';
import { startFakeDescom } from '../fake-descom.js';
import { abortWhen, type ConformanceAdapter, type Fault } from './types.js';

/** A loopback port nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

export const descomAdapter: ConformanceAdapter = {
  lookup: false,
  async start({ timeoutMs }) {
    const fake = await startFakeDescom();
    const logger = createLogger('silent');
    /** Built the way smsq builds it: the module's env schema, `fromEnv`, `create`. */
    const build = (url: string) => {
      const env = z
        .object(descomModule.envShape)
        .parse({ DESCOM_USER: fake.user, DESCOM_PASS: fake.pass, DESCOM_URL: url });
      const { config } = descomModule.fromEnv(env);
      if (!config) throw new Error('Descom not configured');
      return descomModule.create(config, { logger, timeoutMs, meter: UNMETERED });
    };
    const provider = await build(fake.url);
    const extra: { close(): Promise<void> }[] = [];
    const status =
      (code: number): Fault =>
      () =>
        void fake.script({ status: code });
    const faults: Record<string, Fault> = {
      'HTTP 2xx': () => {},
      'HTTP 401': status(401),
      'HTTP 402': () => fake.setBalance(0),
      'HTTP 422': status(422),
      'HTTP 429': status(429),
      'HTTP 503': status(503),
      'HTTP 408': status(408),
      'HTTP 5xx': status(500),
      'HTTP 4xx': status(418),
      'HTTP 3xx': status(302),
      'never-left': async () => {
        const other = await build(`http://127.0.0.1:${await closedPort()}/api`);
        extra.push(other);
        return { provider: other };
      },
      'cancelled before the call': () => ({ signal: AbortSignal.abort() }),
      'over the limits': (batch) => ({
        batch: {
          ...batch,
          messages: [
            { text: 'x', to: Array.from({ length: 101 }, (_, i) => `+346000${String(i).padStart(5, '0')}`) },
          ],
        },
      }),
      'error TimeoutError': () => void fake.script('hang'),
      'error AbortError': () => {
        fake.script('hang');
        return { signal: abortWhen(fake.waitForRequests(fake.requests.length + 1)) };
      },
      'code UND_ERR_SOCKET': () => void fake.script('drop-before-response'),
    };
    return {
      provider,
      delivered: () => fake.recipientsDelivered(),
      setCredits: (credits) => fake.setBalance(credits),
      rateLimitNext: (retryAfter) => fake.script({ status: 429, headers: { 'Retry-After': retryAfter } }),
      faults,
      unreachable: {
        'HTTP 1xx': 'Node cannot answer a final 1xx; classifyDescomStatus(101) in descom-classify.test.ts',
        'code UND_ERR_HEADERS_TIMEOUT':
          "undici's headersTimeout equals the total deadline, which fires first",
        'code UND_ERR_BODY_TIMEOUT': "undici's bodyTimeout equals the total deadline, which fires first",
        'code ETIMEDOUT': 'a kernel retransmission timeout, minutes long',
        'code ECONNRESET': 'undici reports a peer reset on loopback as UND_ERR_SOCKET',
        'code EPIPE': 'undici reports a broken pipe on loopback as UND_ERR_SOCKET',
        'code UND_ERR_ABORTED': 'an abort reaches undici as the signal reason (error AbortError)',
        'code UND_ERR_DESTROYED': 'the provider never destroys its pool mid-call',
        network: 'every real transport error has a code or a name',
        otherwise: 'undici throws only errors with a code or a name',
      },
      dropAfterSend: 'code UND_ERR_SOCKET',
      hang: 'error TimeoutError',
      async close() {
        await Promise.all([provider, ...extra].map((p) => p.close()));
        await fake.close();
      },
    };
  },
};
