import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { QueueContext } from '../queue/context.js';
import type { SmsqWorkers } from '../queue/workers.js';
import type { SmsqMetrics } from './metrics.js';

/**
 * A route plugin registered behind the API-key check, with the app's dependencies as options
 * (e.g. `src/http/routes/campaigns.ts`; inside, `app.withTypeProvider<ZodTypeProvider>()` gives
 * typed zod routes: the app's validator and serializer compilers are zod's). Throw the errors
 * exported by `./error-handler.js`; the app turns them into `{ error, message, issues? }` bodies.
 */
export type SmsqRoutePlugin = FastifyPluginAsync<HttpDeps>;

/** What the HTTP app needs. Nothing here is created by the app except the queues named in `queues`. */
export interface HttpDeps {
  config: Config;
  /** A producer context (`role: 'producer'`): fails fast while Redis is down, so routes answer 503. */
  context: QueueContext;
  logger: Logger;
  /** The workers of this process, when it runs them (`smsq start`): `/readyz` then checks them too. */
  workers?: SmsqWorkers;
  /** Extra route plugins, registered behind the API-key check (campaigns). */
  plugins?: SmsqRoutePlugin[];
  /** Extra BullMQ queue names (same prefix) shown in the dashboard and exported in /metrics. */
  queues?: string[];
  /** Shared with the providers' timing decorator; created by the app when absent. */
  metrics?: SmsqMetrics;
}
