/**
 * Failover as HTTP users see it: `failover` in POST /v1/messages, `history` in GET
 * /v1/messages/:id, and the circuit and failover metrics. Real app, real workers, loopback fakes.
 */
import { describe, expect, it } from 'vitest';
import { waitCompleted } from '../helpers/http-app.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTwoProviders } from '../helpers/routing.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';

const auth = { authorization: 'Bearer test-key-1', 'content-type': 'application/json' };

describe('Failover over HTTP', () => {
  it('shows each moved batch with its history, and counts the failover and the open circuit in /metrics', async () => {
    const fakes = await startTwoProviders();
    onTeardown('provider fakes', () => fakes.close());
    const api = await startTestSmsq({
      logLevel: 'info',
      env: {
        ...fakes.env,
        SMSQ_PROVIDER: 'descom',
        SMSQ_ROUTES: JSON.stringify([{ match: { country: 'ES' }, providers: ['descom', 'ovh'] }]),
        SMSQ_CIRCUIT_FAILURES: '2',
        SMSQ_FAILBACK_MS: '60000',
        SMSQ_BATCH_CONCURRENCY: '1',
      },
    });
    const post = (body: unknown) =>
      fetch(`${api.url}/v1/messages`, { method: 'POST', headers: auth, body: JSON.stringify(body) });

    const bad = await post({ to: spanishMobiles(1), text: 'Hola', failover: 'no' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { issues: { path: string }[] }).issues.map((i) => i.path)).toEqual([
      'failover',
    ]);

    fakes.descom.script(...Array.from({ length: 20 }, () => ({ status: 503 })));
    const to = spanishMobiles(60);
    const res = await post({ messages: to.map((n, i) => ({ to: n, text: `Hola ${i}` })), failover: true });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const body = (await waitCompleted(api, id, auth)) as {
      counts: { total: number; accepted: number };
      batches: { provider: string; recipients: number; history?: { provider: string; reason: string }[] }[];
    };
    expect(body.counts).toMatchObject({ total: 60, accepted: 60 });
    expect(body.batches.reduce((n, b) => n + b.recipients, 0)).toBe(60);
    expect(body.batches.every((b) => b.provider === 'ovh')).toBe(true);
    expect(body.batches[0]!.history).toEqual([
      { provider: 'descom', reason: 'circuit-open', at: expect.any(String) as unknown },
    ]);

    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toContain('smsq_circuit_open{provider="descom"} 1');
    expect(metrics).toContain('smsq_circuit_open{provider="ovh"} 0');
    // Two Descom batches moved (50 + 10 texts), whatever path moved each.
    expect(metrics).toContain('smsq_failovers_total{from="descom",to="ovh",reason="circuit-open"} 2');
  });
});
