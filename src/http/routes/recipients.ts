import type { FastifyPluginCallbackZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NotFoundError } from '../../errors.js';
import { PROVIDER_IDS } from '../../providers/index.js';
import { DELIVERY_STATUSES } from '../../queue/delivery-store.js';
import { listRecipients, OUTCOMES, RECIPIENT_STATUSES } from '../../queue/recipients-list.js';
import type { HttpDeps } from '../deps.js';
import { commonErrorResponses, errorBodySchema } from '../error-handler.js';
import { withRedis } from '../redis-guard.js';
import { idParams } from './messages.js';

export const recipientSchema = z
  .object({
    to: z.string(),
    outcome: z.enum(OUTCOMES).nullable().describe('Null while its batch is in flight'),
    delivery: z
      .object({
        status: z.enum(DELIVERY_STATUSES),
        at: z
          .string()
          .optional()
          .describe('When the final status happened (the provider’s time when it gives one)'),
        code: z.string().optional().describe('The provider’s most specific code, as a string'),
      })
      .nullable()
      .describe('Null unless the provider accepted the recipient'),
    provider: z
      .string()
      .meta({ enum: [...PROVIDER_IDS] })
      .nullable()
      .describe('Null for a number refused at enqueue'),
    providerId: z.string().optional(),
    batchId: z.string().nullable(),
  })
  .meta({ id: 'Recipient' });

export const recipientPageSchema = z
  .object({ items: z.array(recipientSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'RecipientPage' });

export const recipientsQuery = z.object({
  status: z
    .enum(RECIPIENT_STATUSES)
    .optional()
    .describe('An outcome or a delivery status; `expired` lists both kinds'),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
  cursor: z.string().min(1).max(500).optional().describe('`nextCursor` of the previous page'),
});

/** `GET /v1/messages/:id/recipients`: every recipient with its outcome and delivery status. */
export const recipientsRoutes: FastifyPluginCallbackZod<HttpDeps> = (app, deps, done) => {
  const { context } = deps;
  app.get(
    '/v1/messages/:id/recipients',
    {
      schema: {
        summary: 'Recipients of a send request',
        description:
          'Each recipient with its outcome, delivery status, provider and provider id, in a stable order ' +
          '(batches in plan order, then numbers refused at enqueue), cursor-paginated.',
        tags: ['messages'],
        security: [{ bearer: [] }],
        params: idParams,
        querystring: recipientsQuery,
        response: { 200: recipientPageSchema, ...commonErrorResponses, 404: errorBodySchema },
      },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      const page = await withRedis(context, () =>
        listRecipients(context.store, request.params.id, { status, limit, ...(cursor ? { cursor } : {}) }),
      );
      if (!page) throw new NotFoundError(`No request with id ${request.params.id}`);
      return page;
    },
  );
  done();
};
