import { isAbsolute } from 'node:path';
import { defaultRepeatStrategy } from 'bullmq';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { sendRequestSchema, zodIssues } from '../message/request.js';
import { PROVIDER_IDS } from '../providers/index.js';
import { parseIsoDuration } from './duration.js';
import { sendWindowSchema, timeZoneSchema } from '../message/send-window.js';

/** A campaign id: a slug (lowercase letters, digits, inner dashes), at most 64 characters. */
export const CAMPAIGN_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

/** At most this many entries in an inline list (`to` plus columns); larger sends use a CSV file. */
export const MAX_LIST_RECIPIENTS = 10_000;

const csvRecipientsSchema = z
  .object({
    /** Absolute path of a CSV file the campaign workers can read; read anew at each run. */
    csv: z
      .string()
      .min(1)
      .refine(isAbsolute, 'must be an absolute path (the campaign worker reads the file)'),
    /** Column holding the phone numbers (default `phone`). */
    phoneColumn: z.string().min(1).default('phone'),
    /** Field delimiter; default: detected from the header line (`,` or `;`). */
    delimiter: z.enum([',', ';']).optional(),
  })
  .strict();

const listRecipientsSchema = z
  .object({
    list: z
      .array(z.object({ to: z.string().min(1) }).catchall(z.union([z.string(), z.number(), z.boolean()])))
      .min(1)
      .max(MAX_LIST_RECIPIENTS),
  })
  .strict();

export const recipientsSchema = z.union([csvRecipientsSchema, listRecipientsSchema]);
export type CsvRecipients = z.output<typeof csvRecipientsSchema>;
export type Recipients = z.output<typeof recipientsSchema>;

const expiresAfterSchema = z
  .string()
  .refine(
    (v) => parseIsoDuration(v) !== undefined,
    'expected an ISO 8601 duration in weeks, days, hours, minutes or seconds (e.g. PT4H)',
  );

/** What one run needs, whether it comes from a campaign or a one-off import. */
const runFields = {
  /** Message text; `{{column}}` is replaced by the row's value of that column. */
  text: z.string().min(1).max(5_000),
  recipients: recipientsSchema,
  sender: sendRequestSchema.shape.sender,
  provider: z.enum(PROVIDER_IDS).optional(),
  /** When messages may go out, in `timezone`; checked for each batch just before it is sent. */
  window: sendWindowSchema.optional(),
  /** Messages not sent within this duration of the run's occurrence are dropped and counted `expired`. */
  expiresAfter: expiresAfterSchema.optional(),
  /** Credit budget of one run: chunks whose estimate would exceed it are not enqueued (`skippedForCredits`). */
  maxCredits: z.number().int().positive().optional(),
};

function validateCron(value: { cron: string; timezone: string }, ctx: z.RefinementCtx): void {
  let next: number | undefined;
  try {
    next = defaultRepeatStrategy(Date.now(), { pattern: value.cron, tz: value.timezone });
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      path: ['cron'],
      message: `not a valid cron pattern: ${err instanceof Error ? err.message : String(err)}`,
    });
    return;
  }
  if (next === undefined)
    ctx.addIssue({ code: 'custom', path: ['cron'], message: 'the pattern never fires' });
}

/** The fields of a campaign (the schema below adds its checks). */
export const campaignFields = {
  id: z.string().regex(CAMPAIGN_ID, 'a slug: lowercase letters, digits and dashes, at most 64 characters'),
  /** Cron pattern, 5 fields or 6 (with seconds first), read in `timezone`. */
  cron: z.string().min(1),
  /** IANA time zone of `cron` and `window`. */
  timezone: timeZoneSchema,
  ...runFields,
};

/** A campaign as `POST /v1/campaigns` and `smsq campaign add` take it. */
export const campaignSchema = z
  .object(campaignFields)
  .strict()
  .superRefine((value, ctx) => {
    // A bad time zone already has its own issue; the pattern is only checked in a valid one.
    if (timeZoneSchema.safeParse(value.timezone).success) validateCron(value, ctx);
  });

export type CampaignInput = z.input<typeof campaignSchema>;
export type Campaign = z.output<typeof campaignSchema>;

/** A one-off run (`smsq import`): a campaign without an id or a schedule. */
export const runSpecSchema = z
  .object({ ...runFields, timezone: timeZoneSchema.optional() })
  .strict()
  .superRefine((value, ctx) => {
    if (value.window && !value.timezone)
      ctx.addIssue({ code: 'custom', path: ['timezone'], message: 'required with window' });
  });

export type RunSpecInput = z.input<typeof runSpecSchema>;
export type RunSpec = z.output<typeof runSpecSchema>;

/** Validates a campaign; throws InputError with one issue per bad field. */
export function parseCampaign(input: unknown): Campaign {
  const parsed = campaignSchema.safeParse(input);
  if (!parsed.success) throw new InputError('Invalid campaign', zodIssues(parsed.error));
  return parsed.data;
}

export function parseRunSpec(input: unknown): RunSpec {
  const parsed = runSpecSchema.safeParse(input);
  if (!parsed.success) throw new InputError('Invalid import', zodIssues(parsed.error));
  return parsed.data;
}

/** The run-relevant part of a campaign. */
export function runSpecOf(campaign: Campaign): RunSpec {
  const { id: _id, cron: _cron, ...spec } = campaign;
  return spec;
}
