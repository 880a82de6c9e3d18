import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { campaignFields, campaignSchema } from '../../campaigns/definition.js';
import { CampaignService } from '../../campaigns/service.js';
import { configuredProviderIds } from '../../providers/index.js';
import type { SmsqRoutePlugin } from '../deps.js';
import { commonErrorResponses, errorBodySchema } from '../error-handler.js';
import { withRedis } from '../redis-guard.js';
import { countsSchema } from './messages.js';

const count = z.number().int();

const campaignViewSchema = z
  .object({
    ...campaignFields,
    createdAt: z.string(),
    updatedAt: z.string(),
    nextRunAt: z.string().optional().describe('Next occurrence of the cron pattern'),
  })
  .meta({ id: 'Campaign' });

const runSchema = z
  .object({
    runId: z.string(),
    campaignId: z.string().optional(),
    kind: z.enum(['scheduled', 'manual', 'import']),
    state: z.enum(['queued', 'running', 'completed', 'failed']),
    createdAt: z.string(),
    occurrence: z
      .string()
      .describe('The time the run is for (cron occurrence or request); expiresAfter counts from it'),
    startedAt: z.string().optional(),
    importedAt: z
      .string()
      .optional()
      .describe('When every row had been read and staged; the run then only sends its staged chunks'),
    finishedAt: z.string().optional(),
    deferredUntil: z.string().optional().describe('Set while the run waits for its send window'),
    error: z.string().optional(),
    rows: count.describe('Rows read: total + templateErrors + duplicates + skippedForCredits once completed'),
    counts: countsSchema.extend({
      templateErrors: count.describe('Rows whose text could not be rendered (a column missing)'),
      duplicates: count.describe('Rows repeating an earlier (number, text) of the run'),
      skippedForCredits: count.describe('Rows not enqueued: the next chunk would have exceeded maxCredits'),
    }),
    credits: z.object({ estimated: z.number(), charged: z.number() }),
    requests: count.describe('Send requests (chunks of at most 1,000 recipients) enqueued'),
    staged: count.describe('Chunks read and staged, waiting for sending capacity to be enqueued'),
    requestIds: z.array(z.string()).optional(),
    rowErrors: z.array(z.object({ row: count, line: count.optional(), error: z.string() })),
  })
  .meta({ id: 'CampaignRun' });

const idParams = z.object({ id: z.string().min(1).max(64) });
const runParams = z.object({ id: z.string().min(1).max(64), runId: z.string().min(1).max(128) });
const notFound = { 404: errorBodySchema };
const tags = ['campaigns'];
const security = [{ bearer: [] }];

/**
 * Campaign routes (DESIGN.md "Campaigns"), registered by `buildApp` through `deps.plugins`:
 * `POST /v1/campaigns` (201; the same id replaces it), `GET /v1/campaigns`,
 * `GET|DELETE /v1/campaigns/:id`, `POST /v1/campaigns/:id/run` (202 { runId }),
 * `GET /v1/campaigns/:id/runs[/:runId]`.
 */
export const campaignRoutes: SmsqRoutePlugin = (instance, deps) => {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  const { context, config } = deps;
  const campaigns = new CampaignService({ context, config, providers: configuredProviderIds(config) });
  app.addHook('onClose', () => campaigns.close());

  app.post(
    '/v1/campaigns',
    {
      schema: {
        summary: 'Add a campaign, or replace the one with the same id',
        description:
          'A cron pattern (5 fields, or 6 with seconds) in an IANA time zone; recipients from a CSV file the ' +
          'workers can read (absolute path) or an inline list. Each run streams the rows, renders `{{column}}` ' +
          'placeholders and enqueues send requests of at most 1,000 recipients.',
        tags,
        security,
        body: campaignSchema,
        response: { 201: campaignViewSchema, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const campaign = await withRedis(context, () => campaigns.save(request.body));
      deps.logger.child({ module: 'campaigns' }).info({ campaignId: campaign.id }, 'Campaign saved');
      return reply.code(201).send(campaign);
    },
  );

  app.get(
    '/v1/campaigns',
    {
      schema: {
        summary: 'List campaigns with their next run',
        tags,
        security,
        response: { 200: z.object({ campaigns: z.array(campaignViewSchema) }), ...commonErrorResponses },
      },
    },
    async () => ({ campaigns: await withRedis(context, () => campaigns.list()) }),
  );

  app.get(
    '/v1/campaigns/:id',
    {
      schema: {
        summary: 'One campaign',
        tags,
        security,
        params: idParams,
        response: { 200: campaignViewSchema, ...notFound, ...commonErrorResponses },
      },
    },
    async (request) => withRedis(context, () => campaigns.get(request.params.id)),
  );

  app.delete(
    '/v1/campaigns/:id',
    {
      schema: {
        summary: 'Remove a campaign and its schedule',
        description: 'Runs in flight finish; past runs stay readable until they expire.',
        tags,
        security,
        params: idParams,
        response: { 204: z.null(), ...notFound, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      await withRedis(context, () => campaigns.remove(request.params.id));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/campaigns/:id/run',
    {
      schema: {
        summary: 'Run a campaign now',
        tags,
        security,
        params: idParams,
        response: { 202: z.object({ runId: z.string() }), ...notFound, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { runId } = await withRedis(context, () => campaigns.runNow(request.params.id));
      return reply.code(202).send({ runId });
    },
  );

  app.get(
    '/v1/campaigns/:id/runs',
    {
      schema: {
        summary: "A campaign's runs, newest first",
        tags,
        security,
        params: idParams,
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1_000).default(50) }),
        response: { 200: z.object({ runs: z.array(runSchema) }), ...notFound, ...commonErrorResponses },
      },
    },
    async (request) => ({
      runs: await withRedis(context, () =>
        campaigns.listRuns(request.params.id, { limit: request.query.limit }),
      ),
    }),
  );

  app.get(
    '/v1/campaigns/:id/runs/:runId',
    {
      schema: {
        summary: 'One run: counts summed over its send requests, plus the rows that never became one',
        tags,
        security,
        params: runParams,
        response: { 200: runSchema, ...notFound, ...commonErrorResponses },
      },
    },
    async (request) =>
      withRedis(context, () =>
        campaigns.getRun(request.params.runId, { campaignId: request.params.id, requestIds: true }),
      ),
  );
  return Promise.resolve();
};
