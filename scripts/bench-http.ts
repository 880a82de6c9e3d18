/**
 * HTTP benchmark: starts `smsq start` (API + workers, simulator with no latency) on a free port
 * and a private prefix, fires single-recipient POST /v1/messages at it with autocannon, prints
 * req/s and latency, then stops the service and removes its keys.
 *
 *   npx tsx scripts/bench-http.ts [--duration 10] [--connections 20]
 *
 * Redis: REDIS_URL, else whatever `smsq start` finds (127.0.0.1:6379, or a private redis-server).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { removePrefix } from '../test/helpers/remove-prefix.js';
import { freePort } from '../src/service/redis-discovery.js';

const { values } = parseArgs({
  options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '20' } },
});
const duration = Number(values.duration);
const connections = Number(values.connections);

const port = await freePort();
const prefix = `bench${randomBytes(4).toString('hex')}`;
const redisUrl = process.env.REDIS_URL;
const service = spawn(process.execPath, ['bin/smsq.js', 'start'], {
  env: {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    SMSQ_PREFIX: prefix,
    SMSQ_API_KEYS: 'k',
    LOG_LEVEL: 'warn',
    SIMULATOR_LATENCY_MS: '0',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const url = `http://127.0.0.1:${port}`;

try {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (service.exitCode !== null || Date.now() > deadline)
      throw new Error('smsq start did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }

  const body = JSON.stringify({ to: '+34600000001', text: 'Hola' });
  const headers = { authorization: 'Bearer k', 'content-type': 'application/json' };
  // Warm-up (JIT, connection pools), not measured.
  await autocannon({ url: `${url}/v1/messages`, connections, duration: 2, method: 'POST', headers, body });
  const result = await autocannon({
    url: `${url}/v1/messages`,
    connections,
    duration,
    method: 'POST',
    headers,
    body,
  });

  console.log(
    `equivalent: npx autocannon -d ${duration} -c ${connections} -m POST -H 'authorization: Bearer k' ` +
      `-H 'content-type: application/json' -b '${body}' ${url}/v1/messages`,
  );
  console.log(`duration        ${result.duration} s, ${connections} connections`);
  console.log(
    `requests        ${result.requests.total} (${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts)`,
  );
  console.log(
    `req/s           ${result.requests.average.toFixed(0)} average (min ${result.requests.min}, max ${result.requests.max})`,
  );
  console.log(
    `latency         p50 ${result.latency.p50} ms, p90 ${result.latency.p90} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`,
  );
  console.log(`status codes    ${JSON.stringify(result.statusCodeStats)}`);
} finally {
  const exited = once(service, 'exit');
  service.kill('SIGTERM');
  const timer = setTimeout(() => service.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
  // When no Redis answered there, the service used a private one, gone with it: nothing to remove.
  await removePrefix(redisUrl ?? 'redis://127.0.0.1:6379', prefix).catch(() => undefined);
}

/** Deletes the benchmark's keys (nothing to do when `smsq start` ran a private Redis, gone with it). */
