import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { setOvhCallback } from '../../src/providers/ovh/delivery-reports.js';
import type { OvhConfig } from '../../src/providers/ovh/env.js';
import { DeliveryStore } from '../../src/queue/delivery-store.js';
import { expectDeliveryWebhooks, waitForDeliveredWebhook, webhookEnv } from '../helpers/delivery-webhooks.js';
import type { FakeOvhReportPlan } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { DLR_TOKEN, startOvhDeliveryApi, type OvhDeliveryApi } from '../helpers/ovh-delivery.js';
import { onTeardown } from '../helpers/teardown.js';
import { eventually } from '../helpers/wait.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

/** Receivers' report plans by position: delivered, failed (2 / ptt 5), error (16 / ptt 23), never final. */
function planFor(to: string[], kinds: ('ok' | 'failed' | 'error' | 'never')[], afterMs = 100) {
  const plans = new Map<string, FakeOvhReportPlan>();
  to.forEach((n, i) => {
    const kind = kinds[i % kinds.length];
    plans.set(
      n,
      kind === 'never'
        ? 'never'
        : kind === 'failed'
          ? { afterMs, dlr: 2, ptt: 5 }
          : kind === 'error'
            ? { afterMs, dlr: 16, ptt: 23 }
            : { afterMs, dlr: 1, ptt: 4 },
    );
  });
  return (receiver: string) => plans.get(receiver) ?? 'never';
}

describe('OVH delivery reports', () => {
  async function pointCallback(r: OvhDeliveryApi): Promise<void> {
    const cfg = r.smsq.config.providers.ovh as OvhConfig;
    await setOvhCallback(cfg, { timeoutMs: 3_000, logger: createLogger('silent'), baseUrl: r.smsq.url });
    expect(r.fake.callBack()).toBe(`${r.smsq.url}/v1/providers/ovh/dlr/${DLR_TOKEN}`);
  }

  it('polling only: lists per final code and tag, maps ids by the verified order, keeps ptt as the code', async () => {
    const to = spanishMobiles(60);
    const run = await startOvhDeliveryApi(
      { reportPlan: planFor(to, ['ok', 'ok', 'failed', 'ok', 'error']) },
      { SMSQ_DLR_POLL_MS: '30', OVH_BATCH_SIZE: '30' },
    );
    const id = await run.sendAndComplete({ to, text: 'Bonjour', tag: 'promo-7' });
    await eventually(async () => (await run.get(id)).delivery.pending === 0, 10_000);
    const result = await run.get(id);
    expect(result.tag).toBe('promo-7');
    expect(result.delivery).toEqual({
      pending: 0,
      delivered: 36,
      undelivered: 24,
      expired: 0,
      unreported: 0,
    });
    const items = await run.allRecipients(id);
    const byNumber = new Map(items.map((item) => [item.to as string, item]));
    expect(byNumber.get(to[2]!)).toMatchObject({
      outcome: 'accepted',
      delivery: { status: 'undelivered', code: '2' },
    });
    expect(byNumber.get(to[0]!)).toMatchObject({ delivery: { status: 'delivered', code: '1' } });
    // Each SMS's provider id, by the order OVH kept (checked on two SMS per batch).
    const sms = run.fake.outgoing.find((o) => o.receiver === to[4]);
    expect(byNumber.get(to[4]!)).toMatchObject({
      providerId: String(sms!.id),
      delivery: { status: 'undelivered' },
    });
    // Filtered lists by tag and code; one GET per SMS only to check the order (2 per batch).
    const lists = run.fake.requests.filter(
      (r) => r.route === 'GET /sms/{sn}/outgoing' && r.query.has('deliveryReceipt'),
    );
    expect(new Set(lists.map((r) => r.query.get('deliveryReceipt')))).toEqual(new Set(['1', '2', '16']));
    expect(lists.every((r) => r.query.get('tag')?.startsWith('sq'))).toBe(true);
    expect(run.reportCalls().details).toBe(4);
    // No push: the account's callBack was never set.
    expect(run.fake.callbacks).toHaveLength(0);
  });

  it('falls back to one GET per SMS when the ids are not in receiver order', async () => {
    const to = spanishMobiles(10);
    const run = await startOvhDeliveryApi(
      { reportPlan: planFor(to, ['ok', 'failed']) },
      { SMSQ_DLR_POLL_MS: '30' },
    );
    // Reversing the receivers OVH gets (not our batch order) breaks the positional mapping.
    run.fake.script('POST /sms/{sn}/jobs', {
      acceptThen: () => {
        const mine = run.fake.outgoing.slice(-10);
        const receivers = mine.map((o) => o.receiver).reverse();
        mine.forEach((o, i) => (o.receiver = receivers[i]!));
        return Promise.resolve();
      },
    });
    const id = await run.sendAndComplete({ to, text: 'Bonjour' });
    await eventually(async () => (await run.get(id)).delivery.pending === 0, 10_000);
    const items = await run.allRecipients(id);
    for (const item of items) {
      const sms = run.fake.outgoing.find((o) => o.receiver === item.to)!;
      // The SMS OVH holds for this receiver says what happened to it.
      const plan = sms.report!;
      expect(item.delivery).toMatchObject({
        status: plan !== 'never' && plan.dlr === 1 ? 'delivered' : 'undelivered',
      });
      expect(item.providerId).toBe(String(sms.id));
    }
    // The order check failed, so each SMS was fetched once (2 for the check, then the other 8).
    expect(run.reportCalls().details).toBe(10);
  });

  it('callback only: pushed reports settle every recipient before any poll', async () => {
    const to = spanishMobiles(20);
    // The first poll would come after 10 minutes: only the callback can report in time.
    const run = await startOvhDeliveryApi(
      { reportPlan: planFor(to, ['ok', 'ok', 'ok', 'failed'], 300) },
      { SMSQ_DLR_POLL_MS: '600000' },
    );
    await pointCallback(run);
    const id = await run.sendAndComplete({ to, text: 'Bonjour' });
    await eventually(async () => (await run.get(id)).delivery.pending === 0, 10_000);
    expect((await run.get(id)).delivery).toEqual({
      pending: 0,
      delivered: 15,
      undelivered: 5,
      expired: 0,
      unreported: 0,
    });
    expect(run.fake.callbacks.filter((c) => c.status === 200)).toHaveLength(20);
    expect(run.reportCalls().lists).toBe(0);
    const items = await run.allRecipients(id, 'status=undelivered');
    expect(items).toHaveLength(5);
    // The pushed ptt is the code.
    expect(items.every((i) => (i.delivery as { code: string }).code === '5')).toBe(true);
  });

  it('callback and polling together count each recipient once, in the counts, the metrics and the webhooks', async () => {
    const to = spanishMobiles(40);
    const receiver = await startWebhookReceiver();
    onTeardown('webhook receiver', () => receiver.close());
    const run = await startOvhDeliveryApi(
      { reportPlan: planFor(to, ['ok', 'failed', 'ok', 'error']), callbackSpelling: 'description' },
      { SMSQ_DLR_POLL_MS: '30', ...webhookEnv(receiver) },
    );
    await pointCallback(run);
    const res = await run.smsq.api<{ id: string }>('/v1/messages', {
      body: {
        to,
        text: 'Bonjour',
        sendAt: new Date(Date.now() + 300).toISOString(),
        callbackUrl: receiver.url,
      },
    });
    expect(res.status).toBe(202);
    const { id } = res.body;
    await eventually(async () => {
      const summary = await run.get(id);
      return summary.delivery?.pending === 0 && summary.state === 'completed';
    }, 15_000);
    // Both paths reported (pushes and polls); give stragglers a moment to land on final states.
    await eventually(() => run.fake.callbacks.filter((c) => c.status === 200).length === 40, 5_000);
    await new Promise((r) => setTimeout(r, 300));
    const delivery = { pending: 0, delivered: 20, undelivered: 20, expired: 0, unreported: 0 };
    expect((await run.get(id)).delivery).toEqual(delivery);
    expect(run.reportCalls().lists).toBeGreaterThan(0);
    const { redis, keys } = run.smsq.workers.context;
    const stats = await new DeliveryStore(redis, keys).getStats();
    expect(Number(stats['ovh|delivered'])).toBe(20);
    expect(Number(stats['ovh|undelivered'])).toBe(20);

    const hooks = await waitForDeliveredWebhook(receiver, id);
    expectDeliveryWebhooks(receiver, hooks, { accepted: to, delivery });
    expect(hooks.updates[0]).toMatchObject({
      provider: 'ovh',
      status: expect.stringMatching(/delivered|undelivered/) as unknown,
    });
    expect(hooks.events[hooks.events.length - 1]!.type).toBe('message.delivered');
  });

  it('ends recipients with no final report expired at the horizon (validity plus an hour, scaled)', async () => {
    const to = spanishMobiles(12);
    const run = await startOvhDeliveryApi(
      { reportPlan: planFor(to, ['ok', 'never', 'never']) },
      { SMSQ_DLR_POLL_MS: '30' },
    );
    const id = await run.sendAndComplete({ to, text: 'Bonjour' });
    // Horizon: (1 min + 1 h) × 30 / 30000 = 3.66 s after the send.
    await eventually(async () => (await run.get(id)).delivery.delivered === 4, 5_000);
    expect((await run.get(id)).delivery.pending).toBe(8);
    await eventually(async () => (await run.get(id)).delivery.pending === 0, 10_000);
    expect((await run.get(id)).delivery).toEqual({
      pending: 0,
      delivered: 4,
      undelivered: 0,
      expired: 8,
      unreported: 0,
    });
    expect(await run.allRecipients(id, 'status=expired')).toHaveLength(8);
  });

  it('push route: wrong token 404, unknown id 200 (ignored, counted), intermediate report 200, form and JSON bodies', async () => {
    const run = await startOvhDeliveryApi({}, { SMSQ_DLR_POLL_MS: '600000' });
    const base = `${run.smsq.url}/v1/providers/ovh/dlr`;
    expect((await fetch(`${base}/not-the-token-000000?id=1&dlr=1`)).status).toBe(404);
    expect((await fetch(`${base}/${DLR_TOKEN}?id=999&dlr=1&ptt=4`)).status).toBe(200);
    const form = await fetch(`${base}/${DLR_TOKEN}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'id=998&description=2&ptt=5&descriptionDlr=Failed',
    });
    expect(form.status).toBe(200);
    const json = await fetch(`${base}/${DLR_TOKEN}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 997, ptt: 3 }),
    });
    expect(json.status).toBe(200);
    const { redis, keys } = run.smsq.workers.context;
    await eventually(async () => (await redis.hget(keys.deliveryStats, 'ovh|push-ignored')) === '3', 5_000);
    const metrics = await (await fetch(`${run.smsq.url}/metrics`)).text();
    expect(metrics).toContain('smsq_delivery_push_ignored_total{provider="ovh"} 3');
  });
});

describe('OVH delivery-report push without a token', () => {
  it('answers 404 when OVH_DLR_TOKEN is unset', async () => {
    const r = await startOvhDeliveryApi({}, { OVH_DLR_TOKEN: '' });
    expect((await fetch(`${r.smsq.url}/v1/providers/ovh/dlr/${DLR_TOKEN}?id=1&dlr=1`)).status).toBe(404);
  });
});
