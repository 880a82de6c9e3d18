import { expect } from 'vitest';
import type { DeliveryUpdate } from '../../src/webhooks/events.js';
import type { ReceivedWebhook, WebhookReceiver } from './webhook-receiver.js';
import { waitFor } from './wait.js';

/**
 * smsq's environment for webhooks to `receiver`: signed with its secret, its loopback address
 * allowed, delivery events cut every 100 ms (the 2 s default would make a 10,000-recipient
 * request, 20 events of at most 500 updates, take 40 s), retries after 50 ms.
 */
export function webhookEnv(receiver: WebhookReceiver): Record<string, string> {
  return {
    SMSQ_WEBHOOK_SECRET: receiver.secret,
    SMSQ_WEBHOOK_ALLOW_PRIVATE: 'true',
    SMSQ_WEBHOOK_COALESCE_MS: '100',
    SMSQ_WEBHOOK_RETRY_MS: '50',
  };
}

/** What the receiver got for one request, deduplicated by `webhook-id`. */
export interface RequestWebhooks {
  /** The request's events, each once (the first 2xx-answered request per `webhook-id`). */
  events: ReceivedWebhook[];
  /** Every update of its `message.delivery` events, in event order. */
  updates: DeliveryUpdate[];
  /** Its `message.delivered` event. */
  delivered: ReceivedWebhook;
  /** HTTP requests the receiver got for it, retries and duplicates included. */
  requests: number;
}

/** Sequence number of an event in its request (`msg_<requestId>_<n>`). */
function seq(hook: ReceivedWebhook): number {
  return Number(hook.id.slice(hook.id.lastIndexOf('_') + 1));
}

function ofRequest(hooks: ReceivedWebhook[], requestId: string): ReceivedWebhook[] {
  return hooks.filter((h) => h.body.data.id === requestId);
}

/**
 * Waits until the receiver has the request's `message.delivered` event and every event numbered
 * before it (events go out concurrently, so an earlier one may arrive later), then returns them.
 */
export async function waitForDeliveredWebhook(
  receiver: WebhookReceiver,
  requestId: string,
  timeoutMs = 15_000,
): Promise<RequestWebhooks> {
  const { delivered, events } = await waitFor(
    () => {
      const events = ofRequest(receiver.delivered(), requestId).sort((a, b) => seq(a) - seq(b));
      const delivered = events.find((h) => h.type === 'message.delivered');
      const before = delivered && events.filter((h) => seq(h) <= seq(delivered)).length;
      return delivered && before === seq(delivered) ? { delivered, events } : undefined;
    },
    { timeoutMs, what: `message.delivered webhook of ${requestId} and every event before it` },
  ).catch((err: Error) => {
    const got = receiver.requests.map((r) => `${r.id} ${r.type} ${r.status}`);
    throw new Error(
      `${err.message}; received ${JSON.stringify(got)}, rejected ${JSON.stringify(receiver.rejected)}`,
      {
        cause: err,
      },
    );
  });
  const updates = events
    .filter((h) => h.type === 'message.delivery')
    .flatMap((h) => h.body.data.updates as DeliveryUpdate[]);
  return { events, updates, delivered, requests: ofRequest(receiver.requests, requestId).length };
}

/**
 * Checks a request's delivery webhooks against what GET /v1/messages/:id says: every request
 * verified, no `webhook-id` reused for another body, every accepted recipient in exactly one
 * `message.delivery` update with the counts per status of `delivery`, and one `message.delivered`
 * after every `message.delivery` event, carrying `delivery`.
 */
export function expectDeliveryWebhooks(
  receiver: WebhookReceiver,
  hooks: RequestWebhooks,
  expected: { accepted: readonly string[]; delivery: Record<string, number> },
): void {
  expect(receiver.rejected).toEqual([]);
  expect(receiver.changedBodies).toEqual([]);
  expect(hooks.updates.map((u) => u.to).sort()).toEqual([...expected.accepted].sort());
  const byStatus: Record<string, number> = {};
  for (const u of hooks.updates) byStatus[u.status] = (byStatus[u.status] ?? 0) + 1;
  for (const status of ['delivered', 'undelivered', 'expired', 'unreported'])
    expect({ status, count: byStatus[status] ?? 0 }).toEqual({
      status,
      count: expected.delivery[status] ?? 0,
    });
  const delivered = hooks.events.filter((h) => h.type === 'message.delivered');
  expect(delivered).toHaveLength(1);
  const lastDelivery = Math.max(
    ...hooks.events.filter((h) => h.type === 'message.delivery').map((h) => seq(h)),
  );
  expect(seq(delivered[0]!)).toBeGreaterThan(lastDelivery);
  expect(delivered[0]!.body.data.delivery).toEqual(expected.delivery);
}
