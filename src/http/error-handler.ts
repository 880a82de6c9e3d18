import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  IdempotencyConflictError,
  InputError,
  NotFoundError,
  SmsqError,
  TooLargeError,
  type InputIssue,
} from '../errors.js';
import { MAX_REQUEST_BYTES } from '../message/request.js';
import { RedisUnavailableError } from '../redis.js';

/** The typed errors a route plugin throws; the error handler maps each to its status. */
export {
  IdempotencyConflictError,
  InputError,
  NotFoundError,
  SmsqError,
  TooLargeError,
  RedisUnavailableError,
  type InputIssue,
};

/** Every error answer: `{ error: "<code>", message, issues?: [{ path: "to.0", message }] }`. */
export const errorBodySchema = z
  .object({
    error: z.string().describe('Stable error code, e.g. SMSQ_INVALID_INPUT'),
    message: z.string(),
    issues: z
      .array(
        z.object({
          path: z.string().describe('Dot-joined path of the bad field, e.g. to.0'),
          message: z.string(),
        }),
      )
      .optional(),
  })
  .meta({ id: 'Error' });

export type ErrorBody = z.infer<typeof errorBodySchema>;

/** The error responses every authenticated route can give, for the OpenAPI document. */
export const commonErrorResponses = {
  400: errorBodySchema,
  401: errorBodySchema,
  503: errorBodySchema,
} as const;

/** Status of each smsq error class (the first match wins). */
const STATUS_OF: readonly [new (...args: never[]) => SmsqError, number][] = [
  [InputError, 400],
  [TooLargeError, 413],
  [IdempotencyConflictError, 409],
  [NotFoundError, 404],
  [RedisUnavailableError, 503],
];

/** Fastify's own errors, by code: status, our code, and a message safe to show (never echoing the body). */
const FASTIFY_ERRORS: Record<string, { status: number; error: string; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    error: 'SMSQ_TOO_LARGE',
    message: `Request body exceeds ${MAX_REQUEST_BYTES} bytes. For larger sends use CSV import: smsq import recipients.csv --text "…"`,
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    error: 'SMSQ_BAD_JSON',
    message: 'Request body is not valid JSON',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, error: 'SMSQ_BAD_JSON', message: 'Request body is empty' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    error: 'SMSQ_UNSUPPORTED_MEDIA_TYPE',
    message: 'Send the body as application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    error: 'SMSQ_BAD_REQUEST',
    message: 'Content-Length does not match the body',
  },
};

/** Prefix of an issue path by where the bad value was: body paths are bare (`to.1`). */
const CONTEXT_PREFIX: Record<string, string> = {
  body: '',
  params: 'params.',
  querystring: 'query.',
  headers: 'headers.',
};

export function httpErrorOf(err: unknown): { status: number; body: ErrorBody; serverFault: boolean } {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const prefix = CONTEXT_PREFIX[(err as { validationContext?: string }).validationContext ?? 'body'] ?? '';
    const issues: InputIssue[] = err.validation.flatMap((v) => {
      const path = v.instancePath.split('/').filter(Boolean);
      const keys = (v.params as { keys?: unknown }).keys;
      // An unknown field is reported at its own path (`bogus`), not at its parent's.
      if (v.keyword === 'unrecognized_keys' && Array.isArray(keys)) {
        return keys.map((key) => ({
          path: prefix + [...path, String(key)].join('.'),
          message: 'unknown field',
        }));
      }
      return [{ path: prefix + path.join('.'), message: v.message ?? 'invalid' }];
    });
    return {
      status: 400,
      body: { error: 'SMSQ_INVALID_INPUT', message: 'Invalid request', issues },
      serverFault: false,
    };
  }
  if (err instanceof SmsqError) {
    const status = STATUS_OF.find(([cls]) => err instanceof cls)?.[1];
    if (status !== undefined) {
      const body: ErrorBody = { error: err.code, message: err.message };
      if (err instanceof InputError) body.issues = err.issues;
      return { status, body, serverFault: status >= 500 };
    }
  }
  const code = (err as Partial<FastifyError> | undefined)?.code;
  const known = code ? FASTIFY_ERRORS[code] : undefined;
  if (known)
    return { status: known.status, body: { error: known.error, message: known.message }, serverFault: false };
  const statusCode = (err as Partial<FastifyError> | undefined)?.statusCode;
  if (!isResponseSerializationError(err) && statusCode && statusCode >= 400 && statusCode < 500) {
    return {
      status: statusCode,
      body: { error: 'SMSQ_BAD_REQUEST', message: 'Bad request' },
      serverFault: false,
    };
  }
  return { status: 500, body: { error: 'SMSQ_INTERNAL', message: 'Internal error' }, serverFault: true };
}

/**
 * One error handler and one 404 handler for the whole app (encapsulated plugins inherit them).
 * 4xx answers are logged by code only: their messages can quote the body (numbers, text).
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body, serverFault } = httpErrorOf(err);
    if (serverFault && status === 503)
      request.log.warn({ code: body.error }, 'Redis unavailable; answered 503');
    else if (serverFault) request.log.error({ err }, 'Request failed');
    else request.log.info({ code: body.error, statusCode: status }, 'Request refused');
    if (status === 503) void reply.header('Retry-After', '1');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) => {
    return reply.code(404).send({ error: 'SMSQ_NOT_FOUND', message: 'No such route' } satisfies ErrorBody);
  });
}
