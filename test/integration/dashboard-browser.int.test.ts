import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { Queue, Worker } from 'bullmq';
import { chromium, type Browser } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { waitCompleted } from '../helpers/http-app.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq, type TestSmsq } from '../helpers/test-smsq.js';

/** Debian's chromium (`apt-get install chromium`); the test is skipped without it. */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(
    `SKIPPED dashboard browser test: ${CHROMIUM} is missing (Debian/Ubuntu: apt-get install chromium)`,
  );
}

const NUMBER = '+34600000789';
const TEXT = 'Texto muy secreto';

describe.skipIf(!hasChromium)('dashboard in a real browser', () => {
  let api: TestSmsq;
  let browser: Browser | undefined;
  let extraQueue: Queue;
  let extraWorker: Worker;
  let requestId: string;
  let jobId: string;

  beforeAll(async () => {
    api = await startTestSmsq({
      env: { SMSQ_DASHBOARD_USER: 'ops', SMSQ_DASHBOARD_PASSWORD: 'dash-secret' },
      queues: ['campaign-demo'],
      logLevel: 'info',
    });
    const headers = { authorization: 'Bearer test-key-1', 'content-type': 'application/json' };
    const res = await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ to: NUMBER, text: TEXT }),
    });
    requestId = ((await res.json()) as { id: string }).id;
    await waitCompleted(api, requestId, headers);

    // A completed job of an extra queue (as campaigns add) carrying a number and a text in its
    // data and its return value: the splitter empties its own jobs' numbers once planned.
    const connection = { url: api.config.redisUrl };
    extraQueue = new Queue('campaign-demo', { connection, prefix: api.config.prefix });
    onTeardown('extra queue', () => extraQueue.close());
    extraWorker = new Worker(
      'campaign-demo',
      (job) => Promise.resolve({ deliveredTo: [job.data.row.phone], note: 'ok' }),
      {
        connection: { ...connection, maxRetriesPerRequest: null },
        prefix: api.config.prefix,
      },
    );
    onTeardown('extra worker', () => extraWorker.close());
    const completed = once(extraWorker, 'completed');
    const job = await extraQueue.add('row', {
      campaignId: 'c1',
      row: { phone: NUMBER, name: 'Ana' },
      text: TEXT,
    });
    jobId = job.id!;
    await completed;

    // Playwright gives every launch a fresh temporary user-data-dir.
    onTeardown('browser', () => browser?.close());
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 60_000);

  it('refuses an unauthenticated visit with 401', async () => {
    const context = await browser!.newContext();
    const page = await context.newPage();
    // Playwright cancels the browser's basic-auth prompt (net::ERR_INVALID_AUTH_CREDENTIALS); the
    // answer the page got is still observable.
    const answered = page.waitForResponse((r) => r.url() === `${api.url}/admin/queues`);
    await page.goto(`${api.url}/admin/queues`).catch((err: Error) => {
      if (!err.message.includes('ERR_INVALID_AUTH_CREDENTIALS')) throw err;
    });
    const response = await answered;
    expect(response.status()).toBe(401);
    expect(response.headers()['www-authenticate']).toContain('Basic');
    expect(await response.text()).not.toContain('batch-simulator');
    await context.close();
  });

  it('logs in, lists every queue, and shows a completed job with the number and text masked', async () => {
    const context = await browser!.newContext({
      httpCredentials: { username: 'ops', password: 'dash-secret' },
    });
    const page = await context.newPage();
    const home = await page.goto(`${api.url}/admin/queues`);
    expect(home?.status()).toBe(200);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain('batch-simulator');
    const queues = await page.locator('body').innerText();
    expect(queues).toContain('send');
    expect(queues).toContain('send-priority');
    expect(queues).toContain('batch-simulator-priority');
    expect(queues).toContain('campaign-demo');

    await page.goto(`${api.url}/admin/queues/queue/campaign-demo/${jobId}`);
    await expect.poll(() => page.locator('body').innerText(), { timeout: 15_000 }).toContain('+34*****789');
    expect(await page.locator('body').innerText()).toContain(`[${TEXT.length} chars]`);
    const html = await page.content();
    for (const raw of [NUMBER, '600000789', TEXT]) expect(html).not.toContain(raw);

    // A single send through the API is `high`: its job is in the priority lane's send queue.
    await page.goto(`${api.url}/admin/queues/queue/send-priority/${requestId}`);
    await expect.poll(() => page.locator('body').innerText(), { timeout: 15_000 }).toContain(requestId);

    // What the board's API hands the page, for both jobs, never holds the raw values.
    for (const path of [`campaign-demo/${jobId}`, `send-priority/${requestId}`]) {
      const api_ = await page.request.get(`${api.url}/admin/queues/api/queues/${path}`);
      expect(api_.status()).toBe(200);
      const body = await api_.text();
      for (const raw of [NUMBER, '600000789', TEXT]) expect(body).not.toContain(raw);
    }
    const campaignJob = await (
      await page.request.get(`${api.url}/admin/queues/api/queues/campaign-demo/${jobId}`)
    ).json();
    expect(campaignJob.status).toBe('completed');
    expect(campaignJob.job.returnValue).toEqual({ deliveredTo: ['+34*****789'], note: 'ok' });
    expect(campaignJob.job.data).toEqual({
      campaignId: 'c1',
      row: { phone: '+34*****789', name: 'Ana' },
      text: '[17 chars]',
    });
    await context.close();
  });
});
