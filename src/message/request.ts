import { z } from 'zod';
import { sendWindowSchema, timeZoneSchema } from './send-window.js';
import { InputError, TooLargeError, type InputIssue } from '../errors.js';
import { distinctNumbers, normalizeRecipients, type InvalidRecipient } from './recipients.js';
import { analyzeText, type Encoding } from './segments.js';
import type { OutboundMessage } from './types.js';

/** Hard limits of one request; larger sends go through CSV import, which streams. */
export const MAX_RECIPIENTS_PER_REQUEST = 10_000;
export const MAX_REQUEST_BYTES = 1_000_000;

const recipientsField = z.union([z.string().min(1), z.array(z.string()).min(1)]);
const isoDateTime = z.iso.datetime({ offset: true });

/** What producers send (HTTP body, client, CLI). One of `to` + `text`, or `messages`. */
export const sendRequestSchema = z
  .object({
    to: recipientsField.optional(),
    text: z.string().min(1).optional(),
    messages: z
      .array(z.object({ to: recipientsField, text: z.string().min(1) }))
      .min(1)
      .optional(),
    /** Alphanumeric sender (≤ 11 characters) or a number; must be validated with the provider. */
    sender: z
      .string()
      .regex(/^(?:[A-Za-z0-9 ._-]{1,11}|\+?\d{3,15})$/, 'alphanumeric, at most 11 characters, or a number')
      .optional(),
    /** A provider id; {@link sendRequestSchemaFor} narrows it to the registry's ids. */
    provider: z.string().min(1).optional(),
    /** `false`: this request's batches wait for their provider instead of failing over (SMSQ_ROUTES). Default true. */
    failover: z.boolean().optional(),
    sendAt: isoDateTime.optional(),
    expiresAt: isoDateTime.optional(),
    callbackUrl: z.url().optional(),
    tag: z.string().max(64).optional(),
    dryRun: z.boolean().optional(),
    /**
     * `high` goes before everything else waiting for the same provider (one-time codes), `low`
     * after it (campaigns). Default: `high` for a single recipient, else `normal`.
     */
    priority: z.enum(['high', 'normal', 'low']).optional(),
    /** Send window: batches outside it wait for its next opening, at dispatch (campaigns set it). */
    window: sendWindowSchema.optional(),
    /** IANA time zone the window is read in; required with `window`. */
    timezone: timeZoneSchema.optional(),
  })
  .strict()
  .superRefine((value, ctx) => {
    const single = value.to !== undefined || value.text !== undefined;
    if (single && value.messages) {
      ctx.addIssue({
        code: 'custom',
        path: ['messages'],
        message: 'give either to + text, or messages, not both',
      });
    } else if (!value.messages) {
      if (value.to === undefined) ctx.addIssue({ code: 'custom', path: ['to'], message: 'required' });
      if (value.text === undefined) ctx.addIssue({ code: 'custom', path: ['text'], message: 'required' });
    }
    if (value.window && !value.timezone) {
      ctx.addIssue({ code: 'custom', path: ['timezone'], message: 'required with window' });
    }
    if (value.sendAt && value.expiresAt && Date.parse(value.expiresAt) <= Date.parse(value.sendAt)) {
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be after sendAt' });
    }
  });

/**
 * {@link sendRequestSchema} with `provider` one of `providerIds` (the registry's: the message layer
 * names no provider). Built once per list.
 */
export function sendRequestSchemaFor(providerIds: readonly [string, ...string[]]) {
  const known = schemasByIds.get(providerIds);
  if (known) return known;
  const schema = withProviderIds(providerIds);
  schemasByIds.set(providerIds, schema);
  return schema;
}

const withProviderIds = (providerIds: readonly [string, ...string[]]) =>
  sendRequestSchema.safeExtend({ provider: z.enum(providerIds).optional() });

const schemasByIds = new WeakMap<readonly string[], ReturnType<typeof withProviderIds>>();

export type SendRequestInput = z.input<typeof sendRequestSchema>;
export type RequestPriority = NonNullable<z.output<typeof sendRequestSchema>['priority']>;
export type SendRequest = z.output<typeof sendRequestSchema>;

/** A validated, normalised request, ready to enqueue. */
export interface PreparedRequest {
  request: SendRequest;
  messages: OutboundMessage[];
  invalid: InvalidRecipient[];
  duplicates: number;
  /** Deliveries (recipient × message) after normalisation, invalid ones included. */
  total: number;
  recipients: number;
  /** SMS parts per copy (the largest over the request's texts). */
  segments: number;
  encoding: Encoding;
  estimatedCredits: number;
}

export function zodIssues(error: z.ZodError): InputIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}

function parseSendRequest(input: unknown, providerIds?: readonly [string, ...string[]]): SendRequest {
  const schema = providerIds ? sendRequestSchemaFor(providerIds) : sendRequestSchema;
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new InputError('Invalid send request', zodIssues(parsed.error));
  return parsed.data;
}

function asList(to: string | string[]): string[] {
  return typeof to === 'string' ? [to] : to;
}

/**
 * Validates and normalises a send request. Throws InputError (every bad field) or TooLargeError.
 * `validated`: `input` is already the output of that schema (the HTTP route's body), so it is not
 * parsed a second time. `normalized`: every `to` is already an E.164 number `normalizeNumber`
 * accepted, so none is parsed again (a campaign's chunk, its numbers checked as its rows were read).
 */
export function prepareRequest(
  input: unknown,
  opts: {
    defaultCountry: string;
    providerIds?: readonly [string, ...string[]];
    validated?: boolean;
    normalized?: boolean;
  },
): PreparedRequest {
  const request = opts.validated ? (input as SendRequest) : parseSendRequest(input, opts.providerIds);
  const rawMessages = request.messages ?? [{ to: request.to!, text: request.text! }];
  const fieldOf = request.messages ? (i: number) => `messages.${i}.to` : () => 'to';

  const rawCount = rawMessages.reduce((n, m) => n + asList(m.to).length, 0);
  if (rawCount > MAX_RECIPIENTS_PER_REQUEST) {
    throw new TooLargeError(
      `${rawCount} recipients in one request; the limit is ${MAX_RECIPIENTS_PER_REQUEST}. Use CSV import (smsq import) for larger sends.`,
    );
  }

  const messages: OutboundMessage[] = [];
  const invalid: InvalidRecipient[] = [];
  const issues: InputIssue[] = [];
  let duplicates = 0;
  let segments = 0;
  let encoding: Encoding = 'GSM-7';
  let estimatedCredits = 0;
  const seenPerText = new Map<string, Set<string>>();
  const invalidPerText = new Map<string, Set<string>>();

  rawMessages.forEach((message, i) => {
    const list = asList(message.to);
    const normalized = opts.normalized
      ? distinctNumbers(list)
      : normalizeRecipients(list, opts.defaultCountry);
    const seen = seenPerText.get(message.text) ?? new Set<string>();
    seenPerText.set(message.text, seen);
    const to = normalized.valid.filter((n) => {
      if (seen.has(n)) {
        duplicates += 1;
        return false;
      }
      seen.add(n);
      return true;
    });
    duplicates += normalized.duplicates;
    const seenInvalid = invalidPerText.get(message.text) ?? new Set<string>();
    invalidPerText.set(message.text, seenInvalid);
    for (const bad of normalized.invalid) {
      if (seenInvalid.has(bad.to.trim())) {
        duplicates += 1;
        continue;
      }
      seenInvalid.add(bad.to.trim());
      invalid.push(bad);
      issues.push({ path: `${fieldOf(i)}.${list.indexOf(bad.to)}`, message: bad.reason });
    }
    const analysis = analyzeText(message.text);
    segments = Math.max(segments, analysis.segments);
    if (analysis.encoding === 'UCS-2') encoding = 'UCS-2';
    estimatedCredits += analysis.segments * to.length;
    if (to.length > 0) messages.push({ text: message.text, to });
  });

  const recipients = messages.reduce((n, m) => n + m.to.length, 0);
  if (recipients === 0)
    throw new InputError('No valid recipient in the request', issues, 'SMSQ_NO_VALID_RECIPIENT');
  return {
    request,
    messages,
    invalid,
    duplicates,
    total: recipients + invalid.length,
    recipients,
    segments,
    encoding,
    estimatedCredits,
  };
}
