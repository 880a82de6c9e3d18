import { describe, expect, it } from 'vitest';
import { waitCompleted } from '../helpers/http-app.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

const headers = { authorization: 'Bearer test-key-1', 'content-type': 'application/json' };

describe('GET /v1/messages/:id/recipients', () => {
  it('pages every recipient once in a stable order, filters by outcome or delivery status, refuses bad parameters', async () => {
    const api = await startTestSmsq({
      logLevel: 'info',
      env: { SIMULATOR_DLR_DELAY_MS: '100', SIMULATOR_DELIVERED_RATE: '0.8', SMSQ_DLR_POLL_MS: '50' },
    });
    const get = async (path: string) => {
      const res = await fetch(`${api.url}${path}`, { headers });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const to = spanishMobiles(230);
    const res = await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ to: [...to, 'not-a-number'], text: 'Hola', tag: 't-1' }),
    });
    const { id } = (await res.json()) as { id: string };
    await waitCompleted(api, id, headers);
    await eventually(
      async () => ((await get(`/v1/messages/${id}`)).body.delivery as { pending: number }).pending === 0,
    );
    const summary = (await get(`/v1/messages/${id}`)).body as {
      tag: string;
      delivery: Record<string, number>;
    };
    expect(summary.tag).toBe('t-1');

    // Default page: 100; then by cursor to the end; nothing twice, nothing missing, same order twice.
    const pages: {
      items: { to: string; outcome: string; delivery: { status: string } | null; batchId: string | null }[];
      nextCursor: string | null;
    }[] = [];
    let cursor: string | null = null;
    do {
      const page = await get(`/v1/messages/${id}/recipients${cursor ? `?cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      pages.push(page.body as (typeof pages)[number]);
      cursor = (page.body as { nextCursor: string | null }).nextCursor;
    } while (cursor);
    expect(pages.map((p) => p.items.length)).toEqual([100, 100, 31]);
    const all = pages.flatMap((p) => p.items);
    expect(all.map((i) => i.to).slice(0, 230)).toEqual(to);
    expect(all[230]).toEqual({
      to: 'not-a-number',
      outcome: 'invalid',
      delivery: null,
      provider: null,
      batchId: null,
    });
    const again = await get(`/v1/messages/${id}/recipients?limit=1000`);
    expect((again.body.items as { to: string }[]).map((i) => i.to)).toEqual(all.map((i) => i.to));

    const undelivered = await get(`/v1/messages/${id}/recipients?status=undelivered&limit=7`);
    const allUndelivered = all.filter((i) => i.delivery?.status === 'undelivered');
    expect(allUndelivered).toHaveLength(summary.delivery.undelivered!);
    expect((undelivered.body.items as unknown[]).length).toBe(Math.min(7, allUndelivered.length));
    expect((await get(`/v1/messages/${id}/recipients?status=invalid`)).body.items).toHaveLength(1);
    expect((await get(`/v1/messages/${id}/recipients?status=accepted&limit=1000`)).body.items).toHaveLength(
      230,
    );
    expect((await get(`/v1/messages/${id}/recipients?status=delivered&limit=1000`)).body.items).toHaveLength(
      summary.delivery.delivered!,
    );

    const tooMany = await get(`/v1/messages/${id}/recipients?limit=1001`);
    expect(tooMany.status).toBe(400);
    expect(JSON.stringify(tooMany.body.issues)).toContain('limit');
    const badStatus = await get(`/v1/messages/${id}/recipients?status=sent`);
    expect(badStatus.status).toBe(400);
    expect(JSON.stringify(badStatus.body.issues)).toContain('status');
    const badCursor = await get(`/v1/messages/${id}/recipients?cursor=nope`);
    expect(badCursor.status).toBe(400);
    expect(JSON.stringify(badCursor.body.issues)).toContain('cursor');
    expect((await get('/v1/messages/no-such-request/recipients')).status).toBe(404);
    expect((await fetch(`${api.url}/v1/messages/${id}/recipients`)).status).toBe(401);

    // The OpenAPI document describes the route and the new fields.
    const doc = JSON.stringify((await get('/docs/json')).body);
    expect(doc).toContain('/v1/messages/{id}/recipients');
    expect(doc).toContain('DeliveryCounts');
    // And /metrics counts the reports, the report queue included.
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toContain(
      `smsq_delivery_total{provider="simulator",status="delivered"} ${summary.delivery.delivered}`,
    );
    expect(metrics).toContain('smsq_delivery_latency_seconds_count{provider="simulator"} 230');
    expect(metrics).toMatch(/queue="dlr"/);
  });
});
