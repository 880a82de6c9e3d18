import type { FastifyPluginCallbackZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { InputError, NotFoundError } from '../../errors.js';
import { normalizeNumber } from '../../message/recipients.js';
import { MAX_RECIPIENTS_PER_REQUEST } from '../../message/request.js';
import type { HttpDeps } from '../deps.js';
import { commonErrorResponses, errorBodySchema } from '../error-handler.js';
import { withRedis } from '../redis-guard.js';

const numberParams = z.object({
  number: z.string().min(1).max(64).describe('The number, E.164 or national'),
});

/** The opt-out list (`/v1/suppressions`): numbers on it are never sent to. */
export const suppressionsRoutes: FastifyPluginCallbackZod<HttpDeps> = (app, deps, done) => {
  const { context, config } = deps;

  /** The E.164 form of a path parameter, or a 400 naming it. */
  const e164Of = (raw: string): string => {
    const result = normalizeNumber(raw, config.defaultCountry);
    if (!result.ok) throw new InputError('Invalid number', [{ path: 'number', message: result.reason }]);
    return result.e164;
  };

  app.post(
    '/v1/suppressions',
    {
      schema: {
        summary: 'Add numbers to the opt-out list',
        description:
          'Unreadable numbers are listed in `invalid`; when none is readable the request is refused (400).',
        tags: ['suppressions'],
        security: [{ bearer: [] }],
        body: z.object({ numbers: z.array(z.string()).min(1).max(MAX_RECIPIENTS_PER_REQUEST) }).strict(),
        response: {
          200: z.object({
            added: z.number().int().describe('Numbers newly listed (already listed ones are not counted)'),
            invalid: z.array(z.object({ to: z.string(), reason: z.string() })),
          }),
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      const { numbers } = request.body;
      const result = await withRedis(context, () => context.suppressions.add(numbers));
      if (result.invalid.length === numbers.length) {
        throw new InputError(
          'No valid number in the request',
          result.invalid.map((bad) => ({ path: `numbers.${numbers.indexOf(bad.to)}`, message: bad.reason })),
          'SMSQ_NO_VALID_RECIPIENT',
        );
      }
      return result;
    },
  );

  app.get(
    '/v1/suppressions/:number',
    {
      schema: {
        summary: 'Is a number on the opt-out list? (200 listed, 404 not)',
        tags: ['suppressions'],
        security: [{ bearer: [] }],
        params: numberParams,
        response: {
          200: z.object({ number: z.string(), listed: z.literal(true) }),
          ...commonErrorResponses,
          404: errorBodySchema,
        },
      },
    },
    async (request) => {
      const number = e164Of(request.params.number);
      const listed = await withRedis(context, () => context.suppressions.has(number));
      if (!listed) throw new NotFoundError('The number is not on the suppression list');
      return { number, listed: true as const };
    },
  );

  app.delete(
    '/v1/suppressions/:number',
    {
      schema: {
        summary: 'Remove a number from the opt-out list (204 removed, 404 not listed)',
        tags: ['suppressions'],
        security: [{ bearer: [] }],
        params: numberParams,
        response: { 204: z.null().describe('Removed'), ...commonErrorResponses, 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      const number = e164Of(request.params.number);
      const removed = await withRedis(context, () => context.suppressions.remove(number));
      if (!removed) throw new NotFoundError('The number is not on the suppression list');
      return reply.code(204).send(null);
    },
  );
  done();
};
