import { beforeAll, describe, expect, it } from 'vitest';
import { hasRedisServerBinary, startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq, type TestSmsq } from '../helpers/test-smsq.js';
import { waitFor } from '../helpers/wait.js';

const headers = { authorization: 'Bearer test-key-1', 'content-type': 'application/json' };
const body = JSON.stringify({ to: '+34600000001', text: 'Hola' });

// Stops and restarts its own redis-server, so it needs the binary (Debian: apt-get install redis-server).
describe.skipIf(!hasRedisServerBinary())('HTTP API while Redis is down', () => {
  let redis: PrivateRedis;
  let api: TestSmsq;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    onTeardown('private Redis', () => redis.destroy());
    api = await startTestSmsq({ env: { REDIS_URL: redis.url }, workers: false, logLevel: 'info' });
  });

  it('answers 503 within a second and a half, and 202 again once Redis is back', async () => {
    const before = await fetch(`${api.url}/v1/messages`, { method: 'POST', headers, body });
    expect(before.status).toBe(202);
    const { id } = (await before.json()) as { id: string };

    await redis.stop();
    const started = Date.now();
    const down = await fetch(`${api.url}/v1/messages`, { method: 'POST', headers, body });
    const elapsed = Date.now() - started;
    expect(down.status).toBe(503);
    expect(elapsed).toBeLessThan(1_500);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(await down.json()).toEqual({ error: 'SMSQ_REDIS_UNAVAILABLE', message: 'Redis is not reachable' });

    expect((await fetch(`${api.url}/v1/messages/${id}`, { headers })).status).toBe(503);
    expect((await fetch(`${api.url}/v1/suppressions/+34600000001`, { headers })).status).toBe(503);
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not-ready', redis: 'unreachable' });
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    const metrics = await fetch(`${api.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('smsq_redis_up 0');

    await redis.start();
    // The producer connection reconnects on its own (ioredis backoff, at most 2 s between tries).
    const status = await waitFor(
      async () => {
        const { status } = await fetch(`${api.url}/v1/messages`, { method: 'POST', headers, body });
        return status === 202 ? status : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'a 202 once Redis is back' },
    );
    expect(status).toBe(202);
  });
});
