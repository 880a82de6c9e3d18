import { describe, expect, it } from 'vitest';
import { expectDeliveryWebhooks, waitForDeliveredWebhook, webhookEnv } from '../helpers/delivery-webhooks.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

/**
 * The delivery-report side and the webhook side together, as they run in `smsq start`: the
 * entries the report scripts write are the ones the webhook cut reads.
 */
describe('delivery reports as webhooks (simulator, end to end)', () => {
  it('a request with callbackUrl gets its recipients in message.delivery updates, then one message.delivered', async () => {
    const receiver = await startWebhookReceiver();
    onTeardown('webhook receiver', () => receiver.close());
    const smsq = await startTestSmsq({
      env: {
        SIMULATOR_DLR_DELAY_MS: '50',
        SIMULATOR_DELIVERED_RATE: '0.8',
        SMSQ_DLR_POLL_MS: '50',
        ...webhookEnv(receiver),
      },
    });
    const to = spanishMobiles(30);
    const res = await smsq.api<{ id: string }>('/v1/messages', {
      body: { to, text: 'Hola', callbackUrl: receiver.url },
    });
    expect(res.status).toBe(202);
    const { id } = res.body;
    await eventually(async () => {
      const summary = (await smsq.api<{ state: string; delivery: { pending: number } }>(`/v1/messages/${id}`))
        .body;
      return summary.state === 'completed' && summary.delivery.pending === 0;
    });
    const { delivery } = (await smsq.api<{ delivery: Record<string, number> }>(`/v1/messages/${id}`)).body;
    const hooks = await waitForDeliveredWebhook(receiver, id, 5_000);
    expectDeliveryWebhooks(receiver, hooks, { accepted: to, delivery });
  });
});
