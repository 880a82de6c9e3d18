/**
 * Webhook events: what the outbox holds (cut from a request's update list by one script, see
 * outbox.ts) and the Standard Webhooks body each becomes.
 */

/** The event types a producer receives. */
export type WebhookEventType = 'message.completed' | 'message.delivery' | 'message.delivered';

/** Name of the webhook delivery queue (same BullMQ prefix as the others). */
export const WEBHOOK_QUEUE = 'webhooks';
export const WEBHOOK_JOB = 'deliver';

/** Updates in one `message.delivery` event, at most. */
export const MAX_UPDATES_PER_EVENT = 500;

/** The kind of a cut event, as the cut script writes it: the list entry's `type`, or `delivery` for updates. */
const TYPE_OF_KIND: Readonly<Record<string, WebhookEventType>> = {
  completed: 'message.completed',
  delivery: 'message.delivery',
  delivered: 'message.delivered',
};

/** An event as the cut script stores it in the outbox: its identity and the raw list entries. */
export interface CutEvent {
  meta: {
    /** The `webhook-id`: `msg_<requestId>_<n>`, n counting the request's events. */
    id: string;
    kind: string;
    requestId: string;
    url: string;
    tag?: string;
    /** When it was cut (Redis time, ms): the body's `timestamp`. */
    at: number;
  };
  entries: Record<string, unknown>[];
}

/** One final delivery update of a recipient (the delivery-report side writes these). */
export interface DeliveryUpdate {
  to: string;
  status: string;
  at: string;
  code?: string;
  provider: string;
  providerId?: string;
}

/** What a webhook job carries: everything needed to send it, signed afresh on each attempt. */
export interface WebhookJobData {
  eventId: string;
  requestId: string;
  type: WebhookEventType;
  url: string;
  /** The exact JSON body (`{ type, timestamp, data }`), the same bytes on every retry. */
  body: string;
}

export function eventTypeOf(kind: string): WebhookEventType | undefined {
  return TYPE_OF_KIND[kind];
}

/**
 * The job of a cut event. `completedData` reads the request's summary (`GET /v1/messages/:id`
 * without `batches`) for `message.completed`; undefined when the request is gone. Returns
 * undefined for an event that cannot be sent (unknown kind, request gone).
 */
export async function buildWebhookJob(
  event: CutEvent,
  completedData: (requestId: string) => Promise<Record<string, unknown> | undefined>,
): Promise<WebhookJobData | undefined> {
  const { meta, entries } = event;
  const type = eventTypeOf(meta.kind);
  if (!type) return undefined;
  const tag = meta.tag !== undefined ? { tag: meta.tag } : {};
  let data: Record<string, unknown> | undefined;
  if (type === 'message.delivery') {
    data = { id: meta.requestId, ...tag, updates: entries as unknown as DeliveryUpdate[] };
  } else if (type === 'message.delivered') {
    data = { id: meta.requestId, ...tag, delivery: entries[0]?.delivery ?? {} };
  } else {
    const summary = await completedData(meta.requestId);
    data = summary && { ...summary, ...('tag' in summary ? {} : tag) };
  }
  if (!data) return undefined;
  const body = JSON.stringify({ type, timestamp: new Date(meta.at).toISOString(), data });
  return { eventId: meta.id, requestId: meta.requestId, type, url: meta.url, body };
}
