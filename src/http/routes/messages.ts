import type { FastifyPluginCallbackZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { sendRequestSchemaFor } from '../../message/request.js';
import { PROVIDER_IDS } from '../../providers/index.js';
import { configuredProviderIds } from '../../providers/index.js';
import { BATCH_STATES } from '../../queue/batch-state.js';
import { enqueueRequest, type AcceptedRequest } from '../../queue/enqueue.js';
import { webhookTargetFromConfig } from '../../webhooks/target.js';
import { cancelRequest, getRequestSummary } from '../../queue/status.js';
import type { HttpDeps } from '../deps.js';
import { commonErrorResponses, errorBodySchema } from '../error-handler.js';
import { withRedis } from '../redis-guard.js';

const count = z.number().int().nonnegative();

export const acceptedSchema = z
  .object({
    id: z.string(),
    recipients: count.describe('Distinct valid numbers that will be sent to'),
    duplicates: count.describe('Entries dropped because they normalised to a number already listed'),
    invalid: z.array(z.object({ to: z.string(), reason: z.string() })),
    segments: count.describe('SMS parts per copy (the largest over the texts)'),
    encoding: z.enum(['GSM-7', 'UCS-2']),
    estimatedCredits: z.number().nonnegative(),
    dryRun: z.boolean().optional(),
  })
  .meta({ id: 'AcceptedRequest' });

export const countsSchema = z.object({
  total: count,
  accepted: count,
  invalid: count,
  suppressed: count,
  rejected: count,
  failed: count,
  expired: count,
  unknown: count,
});

export const deliveryCountsSchema = z
  .object({
    pending: count,
    delivered: count,
    undelivered: count,
    expired: count,
    unreported: count,
  })
  .describe('Delivery status of the accepted recipients; adds up to counts.accepted')
  .meta({ id: 'DeliveryCounts' });

export const summarySchema = z
  .object({
    id: z.string(),
    state: z.enum(['queued', 'sending', 'completed']),
    createdAt: z.string(),
    finishedAt: z.string().optional(),
    counts: countsSchema,
    credits: z.object({ estimated: z.number(), charged: z.number() }),
    duplicatesSent: count.meta({
      description:
        'Recipients a provider accepted a second time (a duplicate send, also in the ledger); 0 is the goal',
    }),
    tag: z.string().optional().describe('The tag given with the request'),
    delivery: deliveryCountsSchema,
    batches: z.array(
      z.object({
        id: z.string(),
        // A stored batch's provider is read back as text; the document still lists the registry's ids.
        provider: z.string().meta({ enum: [...PROVIDER_IDS] }),
        state: z.enum(BATCH_STATES),
        recipients: count,
        credits: z.object({
          estimated: z.number(),
          charged: z.number(),
          chargedIsEstimate: z.boolean().optional(),
        }),
        providerIds: z.array(z.string()),
        attempts: count,
        duplicates: count.optional(),
        error: z.string().optional(),
        history: z
          .array(
            z.object({
              provider: z.string().meta({ enum: [...PROVIDER_IDS] }),
              reason: z.enum(['paused', 'circuit-open']),
              at: z.string(),
            }),
          )
          .optional()
          .meta({ description: 'Providers this batch failed over from, oldest first (absent when none)' }),
      }),
    ),
  })
  .meta({ id: 'RequestSummary' });

export const idParams = z.object({ id: z.string().min(1).max(200) });

/** POST, GET and DELETE of send requests (`/v1/messages`). */
export const messagesRoutes: FastifyPluginCallbackZod<HttpDeps> = (app, deps, done) => {
  const { context, config } = deps;
  const enqueueDeps = {
    store: context.store,
    sendQueue: context.sendQueue,
    defaultCountry: config.defaultCountry,
    providers: configuredProviderIds(config),
    webhookTarget: webhookTargetFromConfig(config.webhooks),
  };

  app.post(
    '/v1/messages',
    {
      schema: {
        summary: 'Send SMS',
        description:
          'Validates, normalises and enqueues one send request. Invalid numbers are listed and counted; ' +
          'a request whose numbers are all invalid is refused (400). At most 10,000 recipients and 1 MB.',
        tags: ['messages'],
        security: [{ bearer: [] }],
        headers: z.looseObject({
          'idempotency-key': z
            .string()
            .min(1)
            .max(255)
            .optional()
            .describe(
              'Same key + same body within 24 h → the original 202 (header Idempotent-Replayed: true)',
            ),
        }),
        body: sendRequestSchemaFor(PROVIDER_IDS),
        response: {
          202: acceptedSchema,
          ...commonErrorResponses,
          409: errorBodySchema,
          413: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const idempotencyKey = request.headers['idempotency-key'];
      // The body was validated by the route's schema, the one enqueueRequest would parse it with.
      const { acceptedJson, replayed } = await withRedis(context, () =>
        enqueueRequest(enqueueDeps, request.body, {
          idempotencyKey,
          scope: request.apiKeyScope,
          validated: true,
        }),
      );
      if (replayed) void reply.header('Idempotent-Replayed', 'true');
      // The 202 body as enqueueRequest serialised it (and stored it for replays): Fastify sends a
      // string with a JSON content type untouched, so it is not checked and serialised again.
      return reply
        .code(202)
        .type('application/json; charset=utf-8')
        .send(acceptedJson as unknown as AcceptedRequest);
    },
  );

  app.get(
    '/v1/messages/:id',
    {
      schema: {
        summary: 'Result of a send request',
        tags: ['messages'],
        security: [{ bearer: [] }],
        params: idParams,
        response: { 200: summarySchema, ...commonErrorResponses, 404: errorBodySchema },
      },
    },
    async (request) => withRedis(context, () => getRequestSummary(context.store, request.params.id)),
  );

  app.delete(
    '/v1/messages/:id',
    {
      schema: {
        summary: 'Cancel the batches of a request not sent yet',
        description: 'Batches already at the provider finish; the others end `failed` (cancelled).',
        tags: ['messages'],
        security: [{ bearer: [] }],
        params: idParams,
        response: {
          200: z.object({ id: z.string(), cancelledBatches: count }),
          ...commonErrorResponses,
          404: errorBodySchema,
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const { cancelledBatches } = await withRedis(context, () => cancelRequest(context.store, id));
      return { id, cancelledBatches };
    },
  );
  done();
};
