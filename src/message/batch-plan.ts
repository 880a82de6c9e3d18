import type { OutboundMessage, ProviderLimits } from './types.js';

/** One planned provider request: message objects, each ≤ maxRecipientsPerMessage, ≤ maxMessagesPerRequest of them. */
export interface PlannedBatch {
  messages: OutboundMessage[];
}

/**
 * Packs messages into as few provider requests as the provider's limits allow. Messages with the
 * same text are merged first (one message object can carry many recipients), then each text's
 * recipients are cut into message objects and the objects packed into requests in order.
 * Deterministic: the same input always gives the same plan.
 */
export function planBatches(messages: readonly OutboundMessage[], limits: ProviderLimits): PlannedBatch[] {
  const byText = new Map<string, string[]>();
  for (const message of messages) {
    const list = byText.get(message.text);
    if (list) list.push(...message.to);
    else byText.set(message.text, [...message.to]);
  }

  const objects: OutboundMessage[] = [];
  for (const [text, to] of byText) {
    for (let i = 0; i < to.length; i += limits.maxRecipientsPerMessage) {
      objects.push({ text, to: to.slice(i, i + limits.maxRecipientsPerMessage) });
    }
  }

  const batches: PlannedBatch[] = [];
  for (let i = 0; i < objects.length; i += limits.maxMessagesPerRequest) {
    batches.push({ messages: objects.slice(i, i + limits.maxMessagesPerRequest) });
  }
  return batches;
}
