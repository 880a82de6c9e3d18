import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { spanishMobiles } from '../helpers/numbers.js';
import { startTestSmsq } from '../helpers/test-smsq.js';

describe('campaign HTTP routes', () => {
  let app: FastifyInstance | undefined;

  const auth = { authorization: 'Bearer test-key' };

  /** The service's app, with the campaign routes wired by `smsq start` itself. */
  async function start(env: Record<string, string> = {}) {
    const stack = await startTestSmsq({
      campaigns: true,
      env: { SMSQ_API_KEYS: 'test-key', ...env },
      logLevel: 'info',
    });
    const built = stack.app;
    app = built;
    const inject = (opts: { method: 'GET' | 'POST' | 'DELETE'; url: string; payload?: object }) =>
      built.inject({ ...opts, headers: auth });
    return { stack, app: { inject } };
  }

  it('creates, replaces, lists, runs, reports and deletes a campaign', async () => {
    const { stack, app } = await start();
    const path = stack.csv(
      `phone;name\n${spanishMobiles(3, 50_000)
        .map((n, i) => `${n};N${i}`)
        .join('\n')}\n`,
    );
    const body = {
      id: 'weekly',
      cron: '0 10 * * 1',
      timezone: 'Europe/Paris',
      text: 'Bonjour {{name}}',
      recipients: { csv: path },
      window: { preset: 'fr-commercial' },
      expiresAfter: 'P1D',
    };
    const created = await app.inject({ method: 'POST', url: '/v1/campaigns', payload: body });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: 'weekly', recipients: { csv: path, phoneColumn: 'phone' } });
    expect(new Date(created.json<{ nextRunAt: string }>().nextRunAt).getUTCDay()).toBe(1);

    const replaced = await app.inject({
      method: 'POST',
      url: '/v1/campaigns',
      payload: { ...body, window: undefined, text: 'Hola {{name}}' },
    });
    expect(replaced.statusCode).toBe(201);
    const list = await app.inject({ method: 'GET', url: '/v1/campaigns' });
    expect(list.json<{ campaigns: { id: string; text: string }[] }>().campaigns).toEqual([
      expect.objectContaining({ id: 'weekly', text: 'Hola {{name}}' }),
    ]);
    expect((await app.inject({ method: 'GET', url: '/v1/campaigns/weekly' })).json()).toMatchObject({
      id: 'weekly',
    });

    const run = await app.inject({ method: 'POST', url: '/v1/campaigns/weekly/run' });
    expect(run.statusCode).toBe(202);
    const { runId } = run.json<{ runId: string }>();
    await stack.campaigns.waitForRun(runId, { timeoutMs: 10_000 });

    const one = await app.inject({ method: 'GET', url: `/v1/campaigns/weekly/runs/${runId}` });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({
      runId,
      state: 'completed',
      startedAt: expect.any(String),
      importedAt: expect.any(String),
      finishedAt: expect.any(String),
      requests: 1,
      staged: 0,
      counts: {
        total: 3,
        accepted: 3,
        invalid: 0,
        suppressed: 0,
        rejected: 0,
        failed: 0,
        expired: 0,
        unknown: 0,
        templateErrors: 0,
      },
      credits: { estimated: 3, charged: 3 },
    });
    expect(one.json<{ requestIds: string[] }>().requestIds).toHaveLength(1);
    const runs = await app.inject({ method: 'GET', url: '/v1/campaigns/weekly/runs' });
    expect(runs.json<{ runs: { runId: string }[] }>().runs.map((r) => r.runId)).toEqual([runId]);
    expect((await app.inject({ method: 'GET', url: '/v1/campaigns/other/runs/' + runId })).statusCode).toBe(
      404,
    );

    expect((await app.inject({ method: 'DELETE', url: '/v1/campaigns/weekly' })).statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: '/v1/campaigns/weekly' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: '/v1/campaigns/weekly' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/v1/campaigns/weekly/run' })).statusCode).toBe(404);
  });

  it('documents the routes in the OpenAPI document', async () => {
    await start();
    const res = await app!.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const paths = Object.keys(res.json<{ paths: Record<string, unknown> }>().paths);
    expect(paths).toEqual(expect.arrayContaining(['/v1/campaigns', '/v1/campaigns/{id}/runs/{runId}']));
  });

  it('sits behind the API key check', async () => {
    await start();
    const res = await app!.inject({ method: 'GET', url: '/v1/campaigns' });
    expect(res.statusCode).toBe(401);
  });

  it('answers 400 with one issue per bad field', async () => {
    const { app } = await start();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/campaigns',
      payload: {
        id: 'Bad Id',
        cron: 'nope',
        timezone: 'Mars/Base',
        text: '',
        recipients: { csv: 'rel.csv' },
      },
    });
    expect(res.statusCode).toBe(400);
    const body = res.json<{ error: string; issues: { path: string }[] }>();
    expect(body.error).toBe('SMSQ_INVALID_INPUT');
    expect(body.issues.map((i) => i.path).sort()).toEqual(
      ['id', 'recipients.csv', 'text', 'timezone'].sort(),
    );
    const cron = await app.inject({
      method: 'POST',
      url: '/v1/campaigns',
      payload: { id: 'ok', cron: 'nope', timezone: 'UTC', text: 'x', recipients: { csv: '/a.csv' } },
    });
    expect(cron.json<{ issues: { path: string }[] }>().issues.map((i) => i.path)).toEqual(['cron']);
  });

  it('refuses a CSV outside SMSQ_CSV_DIR, naming the field', async () => {
    const { stack, app } = await start({ SMSQ_CSV_DIR: '/srv/smsq-csv' });
    const path = stack.csv('phone\n+34600000001\n');
    const answer = await app.inject({
      method: 'POST',
      url: '/v1/campaigns',
      payload: {
        id: 'outside',
        cron: '0 10 * * 1',
        timezone: 'Europe/Madrid',
        text: 'Hola',
        recipients: { csv: path },
      },
    });
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({
      issues: [{ path: 'recipients.csv', message: 'must be a file in /srv/smsq-csv (SMSQ_CSV_DIR)' }],
    });
    const dotdot = await app.inject({
      method: 'POST',
      url: '/v1/campaigns',
      payload: {
        id: 'dotdot',
        cron: '0 10 * * 1',
        timezone: 'Europe/Madrid',
        text: 'Hola',
        recipients: { csv: '/srv/smsq-csv/../../etc/passwd' },
      },
    });
    expect(dotdot.statusCode).toBe(400);
  });
});
