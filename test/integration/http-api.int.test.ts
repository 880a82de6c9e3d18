import type { FastifyPluginAsync } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/http/error-handler.js';
import { waitCompleted } from '../helpers/http-app.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq, type TestSmsq } from '../helpers/test-smsq.js';

const auth = { authorization: 'Bearer test-key-1' };
const json = { 'content-type': 'application/json' };

async function post(api: TestSmsq, path: string, body: unknown, headers: Record<string, string> = auth) {
  const res = await fetch(`${api.url}${path}`, {
    method: 'POST',
    headers: { ...json, ...headers },
    body: JSON.stringify(body),
  });
  return { res, body: (await res.json()) as Record<string, unknown> };
}

/** An extra route plugin, as the campaigns routes are registered (behind the same key check). */
const extraRoutes: FastifyPluginAsync = async (app) => {
  app.get('/v1/extra/:id', () => {
    throw new NotFoundError('no such extra');
  });
  await Promise.resolve();
};

describe('HTTP API over a real server, simulator workers in process', () => {
  let api: TestSmsq;
  beforeAll(async () => {
    api = await startTestSmsq({ plugins: [extraRoutes], logLevel: 'info' });
  });

  it('accepts a send with 202 and serves its result once completed', async () => {
    const { res, body } = await post(api, '/v1/messages', {
      to: ['+34600000001', '600000002', '+34600000001'],
      text: 'Hola',
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect(body).toEqual({
      id: expect.stringMatching(/^r[0-9a-f]{32}$/),
      recipients: 2,
      duplicates: 1,
      invalid: [],
      segments: 1,
      encoding: 'GSM-7',
      estimatedCredits: 2,
    });
    const result = await waitCompleted(api, body.id as string, auth);
    expect(result).toMatchObject({
      id: body.id,
      state: 'completed',
      counts: {
        total: 2,
        accepted: 2,
        invalid: 0,
        suppressed: 0,
        rejected: 0,
        failed: 0,
        expired: 0,
        unknown: 0,
      },
      credits: { estimated: 2, charged: 2 },
      batches: [{ provider: 'simulator', state: 'sent', recipients: 2, attempts: 1 }],
    });
    expect(typeof result.finishedAt).toBe('string');
  });

  it('refuses a missing or wrong API key with 401, on extra routes too', async () => {
    const none = await post(api, '/v1/messages', { to: '+34600000001', text: 'Hola' }, {});
    expect(none.res.status).toBe(401);
    expect(none.res.headers.get('www-authenticate')).toContain('Bearer');
    expect(none.body.error).toBe('SMSQ_UNAUTHORIZED');
    const wrong = await post(
      api,
      '/v1/messages',
      { to: '+34600000001', text: 'Hola' },
      { authorization: 'Bearer nope' },
    );
    expect(wrong.res.status).toBe(401);
    expect(
      (await fetch(`${api.url}/v1/messages/r1`, { headers: { authorization: 'Basic dTpw' } })).status,
    ).toBe(401);
    expect((await fetch(`${api.url}/v1/extra/1`)).status).toBe(401);
    const extra = await fetch(`${api.url}/v1/extra/1`, { headers: auth });
    expect(extra.status).toBe(404);
    expect(await extra.json()).toEqual({ error: 'SMSQ_NOT_FOUND', message: 'no such extra' });
  });

  it('replays an idempotent request with its original 202, and refuses another body with 409', async () => {
    const headers = { ...auth, 'idempotency-key': 'order-42' };
    const first = await post(api, '/v1/messages', { to: '+34600000003', text: 'Pedido 42' }, headers);
    expect(first.res.status).toBe(202);
    const again = await post(api, '/v1/messages', { text: 'Pedido 42', to: '+34600000003' }, headers);
    expect(again.res.status).toBe(202);
    expect(again.res.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    const conflict = await post(api, '/v1/messages', { to: '+34600000004', text: 'Pedido 42' }, headers);
    expect(conflict.res.status).toBe(409);
    expect(conflict.body.error).toBe('SMSQ_IDEMPOTENCY_CONFLICT');
    // Keys are scoped to the API key: another key may use the same idempotency key for its own request.
    const other = await post(
      api,
      '/v1/messages',
      { to: '+34600000004', text: 'Pedido 42' },
      {
        authorization: 'Bearer test-key-2',
        'idempotency-key': 'order-42',
      },
    );
    expect(other.res.status).toBe(202);
    expect(other.body.id).not.toBe(first.body.id);
  });

  it('answers 413 above 10,000 recipients and above 1 MB, pointing to CSV import', async () => {
    const many = await post(api, '/v1/messages', { to: spanishMobiles(10_001), text: 'Hola' });
    expect(many.res.status).toBe(413);
    expect(many.body).toMatchObject({
      error: 'SMSQ_TOO_LARGE',
      message: expect.stringContaining('smsq import'),
    });
    const huge = await post(api, '/v1/messages', { to: '+34600000001', text: 'x'.repeat(1_100_000) });
    expect(huge.res.status).toBe(413);
    expect(huge.body).toMatchObject({
      error: 'SMSQ_TOO_LARGE',
      message: expect.stringContaining('smsq import'),
    });
  });

  it('answers 400 with the path of every bad field', async () => {
    const allBad = await post(api, '/v1/messages', { to: ['not-a-number', '12'], text: 'Hola' });
    expect(allBad.res.status).toBe(400);
    expect(allBad.body).toMatchObject({
      error: 'SMSQ_NO_VALID_RECIPIENT',
      issues: [
        { path: 'to.0', message: 'not a phone number' },
        { path: 'to.1', message: expect.any(String) },
      ],
    });
    const missing = await post(api, '/v1/messages', { to: '+34600000001' });
    expect(missing.res.status).toBe(400);
    expect(missing.body).toEqual({
      error: 'SMSQ_INVALID_INPUT',
      message: 'Invalid request',
      issues: [{ path: 'text', message: 'required' }],
    });
    const several = await post(api, '/v1/messages', {
      messages: [{ to: ['+34600000001'], text: '' }],
      dryRun: 'yes',
      bogus: 1,
    });
    expect(several.res.status).toBe(400);
    expect((several.body.issues as { path: string }[]).map((i) => i.path).sort()).toEqual([
      'bogus',
      'dryRun',
      'messages.0.text',
    ]);
    const badJson = await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers: { ...json, ...auth },
      body: '{"to": "+3460',
    });
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toEqual({
      error: 'SMSQ_BAD_JSON',
      message: 'Request body is not valid JSON',
    });
  });

  it('accepts a request with some invalid numbers, listing and counting them', async () => {
    const { res, body } = await post(api, '/v1/messages', { to: ['+34600000005', 'nope'], text: 'Hola' });
    expect(res.status).toBe(202);
    expect(body).toMatchObject({ recipients: 1, invalid: [{ to: 'nope', reason: 'not a phone number' }] });
    const result = await waitCompleted(api, body.id as string, auth);
    expect(result.counts).toMatchObject({ total: 2, accepted: 1, invalid: 1 });
  });

  it('answers 404 for an unknown request id', async () => {
    const res = await fetch(`${api.url}/v1/messages/r00000000000000000000000000000000`, { headers: auth });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'SMSQ_NOT_FOUND' });
    expect((await fetch(`${api.url}/v1/messages/r0`, { method: 'DELETE', headers: auth })).status).toBe(404);
    expect((await fetch(`${api.url}/v2/nothing`, { headers: auth })).status).toBe(404);
  });

  it('manages the opt-out list, and a listed number is not sent to', async () => {
    const added = await post(api, '/v1/suppressions', { numbers: ['+34600000077', 'garbage'] });
    expect(added.res.status).toBe(200);
    expect(added.body).toEqual({ added: 1, invalid: [{ to: 'garbage', reason: 'not a phone number' }] });
    const listed = await fetch(`${api.url}/v1/suppressions/600000077`, { headers: auth });
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ number: '+34600000077', listed: true });
    expect((await fetch(`${api.url}/v1/suppressions/+34600000078`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${api.url}/v1/suppressions/garbage`, { headers: auth })).status).toBe(400);
    expect((await post(api, '/v1/suppressions', { numbers: ['garbage'] })).res.status).toBe(400);

    const send = await post(api, '/v1/messages', { to: ['+34600000077', '+34600000079'], text: 'Hola' });
    const result = await waitCompleted(api, send.body.id as string, auth);
    expect(result.counts).toMatchObject({ total: 2, accepted: 1, suppressed: 1 });

    const removed = await fetch(`${api.url}/v1/suppressions/%2B34600000077`, {
      method: 'DELETE',
      headers: auth,
    });
    expect(removed.status).toBe(204);
    expect(
      (await fetch(`${api.url}/v1/suppressions/%2B34600000077`, { method: 'DELETE', headers: auth })).status,
    ).toBe(404);
    expect((await fetch(`${api.url}/v1/suppressions/%2B34600000077`, { headers: auth })).status).toBe(404);
  });

  it('serves health, readiness, metrics and the OpenAPI document', async () => {
    expect(await (await fetch(`${api.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', redis: 'ok', workers: 'running' });

    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/smsq_recipients_total\{provider="simulator",outcome="accepted"\} \d+/);
    expect(metrics).toMatch(/smsq_credits_charged_total\{provider="simulator"\} \d+/);
    expect(metrics).toContain('smsq_provider_paused{provider="simulator"} 0');
    expect(metrics).toContain('bullmq_job_count{queue="send", state="completed"');
    expect(metrics).toContain('smsq_redis_up 1');
    expect(metrics.match(/^# TYPE bullmq_job_count /gm)).toHaveLength(1);

    const doc = (await (await fetch(`${api.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/messages',
        '/v1/messages/{id}',
        '/v1/suppressions',
        '/v1/suppressions/{number}',
      ]),
    );
    expect((await fetch(`${api.url}/docs`, { redirect: 'manual' })).status).toBeLessThan(400);
  });

  it('keeps a caller-given request id and never logs numbers or texts, not even from URLs', async () => {
    const res = await fetch(`${api.url}/v1/suppressions/+34611111111?to=+34622222222`, {
      headers: { ...auth, 'x-request-id': 'trace-abc.123' },
    });
    expect(res.headers.get('x-request-id')).toBe('trace-abc.123');
    await post(api, '/v1/messages', { to: ['+34633333333', 'bad-633'], text: 'Texto secreto' });
    await post(api, '/v1/messages', { to: ['+34644444444'], text: 'Otro secreto' }, {});
    await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers: { ...json, ...auth },
      body: '{"to":"+34655555555",',
    });
    await fetch(`${api.url}/nowhere/+34666666666`, { headers: auth });
    const logged = api.logs();
    expect(logged).toContain('trace-abc.123');
    expect(logged).toContain('/v1/suppressions/:number');
    expect(logged).toContain('incoming request');
    for (const secret of [
      '611111111',
      '622222222',
      '633333333',
      '644444444',
      '655555555',
      '666666666',
      'secreto',
      'test-key',
    ]) {
      expect(logged).not.toContain(secret);
    }
  });
});

describe('cancelling a request before the workers run', () => {
  let api: TestSmsq;
  beforeAll(async () => {
    api = await startTestSmsq({ workers: false, logLevel: 'info' });
  });

  it('DELETE cancels the batches not sent, and the request completes as failed', async () => {
    const { body } = await post(api, '/v1/messages', { to: ['+34600000011', '+34600000012'], text: 'Hola' });
    const cancel = await fetch(`${api.url}/v1/messages/${body.id as string}`, {
      method: 'DELETE',
      headers: auth,
    });
    expect(cancel.status).toBe(200);
    expect(await cancel.json()).toEqual({ id: body.id, cancelledBatches: 0 });
    const ready = await (await fetch(`${api.url}/readyz`)).json();
    expect(ready).toEqual({ status: 'ready', redis: 'ok', workers: 'not-run-here' });

    await api.startWorkers();
    const result = await waitCompleted(api, body.id as string, auth);
    expect(result.counts).toMatchObject({ total: 2, accepted: 0, failed: 2 });
  });
});

describe('dashboard access and actions', () => {
  it('in development on loopback it opens without a password, and refuses edits of masked job data', async () => {
    const api = await startTestSmsq({ workers: false, logLevel: 'info' });
    const { body } = await post(api, '/v1/messages', { to: '+34600000021', text: 'Hola' });
    const listing = await fetch(`${api.url}/admin/queues/api/queues`);
    expect(listing.status).toBe(200);
    const queues = ((await listing.json()) as { queues: { name: string; readOnlyMode: boolean }[] }).queues;
    // As `smsq api` serves it: the delivery-report, campaign-runs and webhook queues beside the
    // send and batch queues of both lanes.
    expect(queues.map((q) => q.name)).toEqual([
      'send-priority',
      'send',
      'batch-simulator-priority',
      'batch-simulator',
      'dlr',
      'campaign-runs',
      'webhooks',
    ]);
    expect(queues[0]!.readOnlyMode).toBe(false);
    // A single send is `high`: its job is in the priority lane's send queue.
    const edit = await fetch(
      `${api.url}/admin/queues/api/queues/send-priority/${body.id as string}/update-data`,
      {
        method: 'PATCH',
        headers: json,
        body: JSON.stringify({ jobData: { to: '+34*****021' } }),
      },
    );
    expect(edit.status).toBe(403);
  });

  it('honours SMSQ_DASHBOARD_READONLY, and stays off in production without credentials', async () => {
    const readOnly = await startTestSmsq({
      workers: false,
      logLevel: 'info',
      env: { SMSQ_DASHBOARD_READONLY: 'true' },
    });
    const listing = (await (await fetch(`${readOnly.url}/admin/queues/api/queues`)).json()) as {
      queues: { readOnlyMode: boolean }[];
    };
    expect(listing.queues.every((q) => q.readOnlyMode)).toBe(true);

    const production = await startTestSmsq({
      workers: false,
      logLevel: 'info',
      env: { NODE_ENV: 'production' },
    });
    expect((await fetch(`${production.url}/admin/queues`)).status).toBe(404);
    expect(production.logs()).toContain('Dashboard /admin/queues disabled');
  });
});
