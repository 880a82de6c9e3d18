/**
 * Keep-alive benchmark for the Descom provider: how often a send after an idle gap close to the
 * server's keep-alive timeout fails as ambiguous (it would be recorded `unknown`) although it never
 * reached the server. The server is the fake Descom closing idle sockets after `--server-idle` ms
 * (announced in a `Keep-Alive` header or not), behind a proxy adding `--latency` ms each way.
 *
 *   npx tsx scripts/bench-descom-keepalive.ts [--samples 40] [--latency 50] [--pool provider|undici-defaults]
 *
 * Each sample is its own provider (its own socket): one send opens the socket, then, after a gap
 * spread over [idle - 3 × latency, idle + latency], a second send. A request written in
 * (idle - 2 × latency, idle) meets the server's FIN on the way. `--pool undici-defaults` injects a
 * Pool with undici's keep-alive defaults (4 s without a hint, the hint minus 2 s with one), i.e.
 * the provider before its keep-alive limit; `provider` (default) uses the provider's own Pool.
 */
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { AmbiguousError } from '../src/errors.js';
import { createLogger } from '../src/logger.js';
import type { Batch } from '../src/message/types.js';
import { createDescomProvider } from '../src/providers/descom/provider.js';
import { startFakeDescom } from '../test/helpers/fake-descom.js';
import { startLatencyProxy } from '../test/helpers/latency-proxy.js';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '40' },
    latency: { type: 'string', default: '50' },
    pool: { type: 'string', default: 'provider' },
  },
});
const samples = Number(values.samples);
const latencyMs = Number(values.latency);
const usePool = values.pool;
if (usePool !== 'provider' && usePool !== 'undici-defaults')
  throw new Error('--pool: provider or undici-defaults');

/**
 * Server idle timeouts to model: gunicorn's 2 s and a 3 s one, unannounced (below undici's 4 s no-hint
 * default); Node's and Apache's 5 s, with and without the header.
 */
const SCENARIOS = [
  { serverIdleMs: 2_000, hint: false },
  { serverIdleMs: 3_000, hint: false },
  { serverIdleMs: 5_000, hint: false },
  { serverIdleMs: 5_000, hint: true },
];

const silent = createLogger('silent');
const batch = (i: number): Batch => ({
  id: `bench-${i}`,
  requestId: 'bench',
  provider: 'descom',
  tag: `bench-${i}`,
  messages: [{ text: 'Hola', to: ['+34600000001'] }],
  estimatedCredits: 1,
});

interface Outcome {
  gapMs: number;
  result: 'ok' | 'ambiguous' | 'other';
}

async function runScenario(
  serverIdleMs: number,
  hint: boolean,
): Promise<{ outcomes: Outcome[]; received: number }> {
  const fake = await startFakeDescom({ idleSocketTimeoutMs: serverIdleMs, keepAliveHint: hint });
  const proxy = await startLatencyProxy({ target: new URL(fake.url), latencyMs });
  const url = proxy.url(fake.url);
  const from = serverIdleMs - 3 * latencyMs;
  const span = 4 * latencyMs;
  try {
    const outcomes = await Promise.all(
      Array.from({ length: samples }, async (_, i): Promise<Outcome> => {
        const gapMs = Math.round(from + (span * i) / Math.max(1, samples - 1));
        const dispatcher =
          usePool === 'undici-defaults'
            ? new Pool(new URL(url).origin, { headersTimeout: 10_000, bodyTimeout: 10_000 })
            : undefined;
        const provider = createDescomProvider(
          { user: fake.user, pass: fake.pass, url, ratePerSecond: 1_000 },
          { timeoutMs: 10_000, logger: silent, ...(dispatcher && { dispatcher }) },
        );
        try {
          await provider.send(batch(i), { signal: AbortSignal.timeout(10_000) });
          await new Promise((r) => setTimeout(r, gapMs));
          const second = `bench-${i}-second`;
          const result = await provider
            .send({ ...batch(i), id: second, tag: second }, { signal: AbortSignal.timeout(10_000) })
            .then(
              () => 'ok' as const,
              (err: unknown) => (err instanceof AmbiguousError ? ('ambiguous' as const) : ('other' as const)),
            );
          return { gapMs, result };
        } finally {
          await provider.close();
          await dispatcher?.destroy();
        }
      }),
    );
    return { outcomes, received: fake.requests.filter((r) => r.path === '/api/sms/send').length };
  } finally {
    await proxy.close();
    await fake.close();
  }
}

console.log(`pool=${usePool} samples=${samples} latency=${latencyMs} ms each way`);
for (const { serverIdleMs, hint } of SCENARIOS) {
  const { outcomes, received } = await runScenario(serverIdleMs, hint);
  const ambiguous = outcomes.filter((o) => o.result === 'ambiguous');
  const other = outcomes.filter((o) => o.result === 'other').length;
  const gaps = ambiguous.map((o) => o.gapMs);
  console.log(
    `server idle ${serverIdleMs} ms, Keep-Alive hint ${hint ? 'yes' : 'no '}: ` +
      `${outcomes.length} requests after gaps ${outcomes[0]?.gapMs}–${outcomes.at(-1)?.gapMs} ms → ` +
      `${ambiguous.length} ambiguous${gaps.length ? ` (gaps ${Math.min(...gaps)}–${Math.max(...gaps)} ms)` : ''}` +
      `${other ? `, ${other} other errors` : ''}; the server received ${received - outcomes.length} of the ${outcomes.length} second sends`,
  );
}
