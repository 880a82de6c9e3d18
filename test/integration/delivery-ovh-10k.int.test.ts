import { describe, expect, it } from 'vitest';
import { expectDeliveryWebhooks, waitForDeliveredWebhook, webhookEnv } from '../helpers/delivery-webhooks.js';
import type { FakeOvhReportPlan } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { startOvhDeliveryApi } from '../helpers/ovh-delivery.js';
import { onTeardown } from '../helpers/teardown.js';
import { waitFor } from '../helpers/wait.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

describe('a 10,000-recipient OVH request through the fake', () => {
  it('reaches final delivery states, visible in GET /v1/messages/:id, /recipients and the webhooks', async () => {
    const to = spanishMobiles(10_000);
    // 97 % delivered, 2 % failed (some at once, some later), 1 % never final (expired at the horizon).
    const plans = new Map<string, FakeOvhReportPlan>(
      to.map((n, i) => {
        const r = i % 100;
        const plan: FakeOvhReportPlan =
          r === 0
            ? 'never'
            : r < 3
              ? { afterMs: 50 + (i % 7) * 200, dlr: r === 1 ? 2 : 16, ptt: 23 }
              : { afterMs: (i % 5) * 300, dlr: 1, ptt: 4 };
        return [n, plan];
      }),
    );
    const receiver = await startWebhookReceiver();
    onTeardown('webhook receiver', () => receiver.close());
    const run = await startOvhDeliveryApi(
      { reportPlan: (receiver) => plans.get(receiver) ?? 'never' },
      { SMSQ_DLR_POLL_MS: '30', ...webhookEnv(receiver) },
    );
    const id = await run.sendAndComplete({ to, text: 'Votre code: 1234', callbackUrl: receiver.url });
    // When GET first shows nothing pending: the last report has been applied (within one probe).
    const settledAt = await waitFor(async () => (await run.get(id)).delivery.pending === 0 && Date.now(), {
      timeoutMs: 30_000,
      what: `request ${id} with nothing pending`,
    });
    const result = await run.get(id);
    expect(result.counts).toMatchObject({ total: 10_000, accepted: 10_000 });
    const delivery = { pending: 0, delivered: 9_700, undelivered: 200, expired: 100, unreported: 0 };
    expect(result.delivery).toEqual(delivery);

    const items = await run.allRecipients(id);
    expect(items).toHaveLength(10_000);
    expect(new Set(items.map((i) => i.to)).size).toBe(10_000);
    expect(
      items.every((i) =>
        ['delivered', 'undelivered', 'expired'].includes((i.delivery as { status: string }).status),
      ),
    ).toBe(true);
    expect(await run.allRecipients(id, 'status=expired')).toHaveLength(100);
    expect(await run.allRecipients(id, 'status=undelivered', 37)).toHaveLength(200);

    // Every accepted recipient in exactly one verified message.delivery update, then message.delivered.
    const hooks = await waitForDeliveredWebhook(receiver, id, 30_000);
    expectDeliveryWebhooks(receiver, hooks, { accepted: to, delivery });
    const lastReportAt = Math.max(...hooks.updates.map((u) => Date.parse(u.at)));
    const lastDeliveryEvent = Math.max(
      ...hooks.events.filter((h) => h.type === 'message.delivery').map((h) => h.receivedAt),
    );
    console.log(
      `webhooks for 10,000 recipients: ${hooks.events.length} events (${hooks.updates.length} updates) in ` +
        `${hooks.requests} requests; message.delivered received ${hooks.delivered.receivedAt - lastReportAt} ms ` +
        `after the last report's time, ${hooks.delivered.receivedAt - settledAt} ms after GET showed nothing ` +
        `pending, ${hooks.delivered.receivedAt - lastDeliveryEvent} ms after the last message.delivery`,
    );

    const calls = run.reportCalls();
    const perThousand = ((calls.lists + calls.details) * 1_000) / 10_000;
    console.log(
      `report calls for 10,000 recipients: ${calls.lists} lists + ${calls.details} single-SMS GETs = ${perThousand} per 1,000 recipients`,
    );
    // 20 batches: 3 lists per poll over the whole schedule, 2 order checks per batch, no GET per SMS.
    expect(calls.details).toBe(40);
    expect(perThousand).toBeLessThan(50);
  }, 60_000);
});
