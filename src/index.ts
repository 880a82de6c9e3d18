/** smsq's public API. Importing it has no side effects: no environment reads, no connections. */
export { SmsClient, type SmsClientOptions, type SendOptions } from './client.js';
export type { AcceptedRequest } from './queue/enqueue.js';
export type { RequestSummary, RequestCounts, BatchSummary } from './queue/summary.js';
export type { RecipientItem, RecipientPage } from './queue/recipients-list.js';
export type { DeliveryCounts, DeliveryStatus } from './queue/delivery-store.js';
export type { SendRequestInput } from './message/request.js';
export type { KnownProviderId as ProviderId } from './providers/index.js';
export {
  SmsqError,
  InputError,
  IdempotencyConflictError,
  TooLargeError,
  NotFoundError,
  ConfigError,
} from './errors.js';
export { RedisUnavailableError } from './redis.js';
export { loadConfig, type Config } from './config.js';
export { startWorkers, type SmsqWorkers } from './queue/workers.js';
