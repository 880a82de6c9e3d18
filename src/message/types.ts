/**
 * A provider's id, as the provider registry (src/providers/index.ts) names it. The message layer
 * names no provider: the registry is the one list of them.
 */
export type ProviderId = string;

/**
 * What a provider can carry in one request, for the batch planner: message objects (distinct texts)
 * per request, recipients per message object.
 */
export interface ProviderLimits {
  /** Message objects (distinct texts) in one provider request. */
  maxMessagesPerRequest: number;
  /** Recipients of one message object. */
  maxRecipientsPerMessage: number;
}

/** One text to a list of recipients, numbers in E.164 (`+34600000000`). */
export interface OutboundMessage {
  text: string;
  to: string[];
}

/**
 * One provider request. Planned once by the splitter and stored; never re-planned.
 * `tag` is unique per batch and ≤ 20 characters (OVH's limit) so an ambiguous send can be looked up.
 */
export interface Batch {
  id: string;
  requestId: string;
  provider: ProviderId;
  tag: string;
  messages: OutboundMessage[];
  sender?: string;
  /** Segments per recipient summed over the batch's messages, times recipients: the credit estimate. */
  estimatedCredits: number;
}

/** What a provider returned for a batch it accepted. */
export interface BatchReceipt {
  providerIds: string[];
  /** Recipients the provider accepted. */
  accepted: string[];
  /** Recipients the provider listed as invalid (OVH `invalidReceivers`), in E.164. */
  invalid: string[];
  creditsCharged: number;
  /** True when `creditsCharged` is our estimate, not the provider's figure (e.g. found by tag without credits). */
  creditsEstimated?: boolean;
}

/**
 * A receipt as a batch record keeps it: without the accepted list, which is the batch's recipients
 * less the invalid ones (so accepted + invalid = recipients, always) and would store every number twice.
 */
export type StoredReceipt = Omit<BatchReceipt, 'accepted'>;

export function batchRecipients(batch: Pick<Batch, 'messages'>): string[] {
  return batch.messages.flatMap((m) => m.to);
}
