import { describe, expect, it } from 'vitest';
import { waitCompleted } from '../helpers/http-app.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq, type TestSmsq } from '../helpers/test-smsq.js';

const headers = { authorization: 'Bearer test-key-1', 'content-type': 'application/json' };

async function send(api: TestSmsq, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${api.url}/v1/messages`, { method: 'POST', headers, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

describe('request priority', () => {
  it('a single-recipient send goes before bulk and campaign work queued ahead of it', async () => {
    // One batch at a time, so the order the queue hands batches out is the order they finish.
    const api = await startTestSmsq({
      workers: false,
      logLevel: 'info',
      env: { SMSQ_BATCH_CONCURRENCY: '1', SIMULATOR_LATENCY_MS: '50' },
    });
    const numbers = spanishMobiles(40);
    const low = [];
    for (let i = 0; i < 4; i++)
      low.push(await send(api, { to: numbers.slice(i * 5, i * 5 + 5), text: 'Promo', priority: 'low' }));
    const normal = [];
    for (let i = 0; i < 3; i++)
      normal.push(await send(api, { to: numbers.slice(20 + i * 5, 25 + i * 5), text: 'Aviso' }));
    const otp = await send(api, { to: numbers[39], text: 'Code 1234' });
    await api.startWorkers();

    const finished = new Map<string, number>();
    for (const id of [otp, ...normal, ...low]) {
      const body = await waitCompleted(api, id, headers);
      finished.set(id, Date.parse(body.finishedAt as string));
    }
    const order = [...finished.entries()].sort((a, b) => a[1] - b[1]).map(([id]) => id);
    // The splitter plans four requests at once, so the first batch handed out may be one planned a
    // moment before the OTP's; every later choice is by priority.
    expect(order.indexOf(otp)).toBeLessThanOrEqual(1);
    // Every normal request finished before any low one.
    const lastNormal = Math.max(...normal.map((id) => order.indexOf(id)));
    const firstLow = Math.min(...low.map((id) => order.indexOf(id)));
    expect(lastNormal).toBeLessThan(firstLow);
  });

  it('refuses an unknown priority, naming the field', async () => {
    const api = await startTestSmsq({ workers: false, logLevel: 'info' });
    const res = await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ to: '+34600000001', text: 'x', priority: 'urgent' }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('priority');
  });

  it('/metrics gives the age of the oldest job waiting in each queue', async () => {
    const api = await startTestSmsq({ workers: false, logLevel: 'info' });
    await send(api, { to: spanishMobiles(2), text: 'Espera' });
    await new Promise((r) => setTimeout(r, 1_200));
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    const age = /smsq_queue_oldest_waiting_seconds\{queue="send"\} ([\d.]+)/.exec(metrics);
    expect(age).not.toBeNull();
    expect(Number(age![1])).toBeGreaterThanOrEqual(1);
    expect(Number(age![1])).toBeLessThan(30);
  });
});
