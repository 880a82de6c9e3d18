import { describe, expect, it } from 'vitest';
import { parseCampaign, parseRunSpec } from '../../src/campaigns/definition.js';
import { parseIsoDuration } from '../../src/campaigns/duration.js';
import { compileTemplate } from '../../src/campaigns/template.js';
import { InputError } from '../../src/errors.js';

const base = {
  id: 'spring-promo',
  cron: '0 10 * * 1',
  timezone: 'Europe/Paris',
  text: 'Hola {{name}}',
  recipients: { csv: '/data/promo.csv' },
};

function issuesOf(input: unknown): { path: string; message: string }[] {
  try {
    parseCampaign(input);
  } catch (err) {
    if (err instanceof InputError) return err.issues;
    throw err;
  }
  throw new Error('expected an InputError');
}

describe('campaign definition', () => {
  it('accepts a campaign and fills the phone column default', () => {
    const campaign = parseCampaign({
      ...base,
      window: { preset: 'fr-commercial' },
      expiresAfter: 'PT4H',
      maxCredits: 5000,
      sender: 'Tienda',
      provider: 'simulator',
    });
    expect(campaign.recipients).toEqual({ csv: '/data/promo.csv', phoneColumn: 'phone' });
  });

  it('accepts a seconds-level (6-field) cron pattern and an inline list', () => {
    const campaign = parseCampaign({
      ...base,
      cron: '*/2 * * * * *',
      recipients: { list: [{ to: '+34600000001', name: 'Ana', visits: 3 }] },
    });
    expect(campaign.cron).toBe('*/2 * * * * *');
  });

  it.each([
    [{ ...base, cron: 'every monday' }, 'cron'],
    [{ ...base, cron: '61 * * * *' }, 'cron'],
    [{ ...base, timezone: 'Europe/Atlantis' }, 'timezone'],
    [{ ...base, id: 'Spring Promo' }, 'id'],
    [{ ...base, recipients: { csv: 'relative/promo.csv' } }, 'recipients.csv'],
    [{ ...base, window: { days: [1], from: '20:00', to: '08:00' } }, 'window.to'],
    [{ ...base, window: { days: [0], from: '08:00', to: '20:00' } }, 'window.days.0'],
    [{ ...base, window: { preset: 'fr-weekend' } }, 'window'],
    [{ ...base, expiresAfter: 'P1M' }, 'expiresAfter'],
    [{ ...base, maxCredits: 0 }, 'maxCredits'],
    [{ ...base, sender: 'ThisSenderIsTooLong' }, 'sender'],
  ])('refuses %j at %s', (input, path) => {
    expect(issuesOf(input).map((i) => i.path)).toContain(path);
  });

  it('names the bad cron pattern in the issue', () => {
    const [issue] = issuesOf({ ...base, cron: 'every monday' });
    expect(issue?.message).toMatch(/not a valid cron pattern/);
  });

  it('requires a time zone with a window for one-off runs', () => {
    expect(() =>
      parseRunSpec({ text: 'Hola', recipients: { csv: '/x.csv' }, window: { preset: 'fr-commercial' } }),
    ).toThrow(InputError);
    expect(parseRunSpec({ text: 'Hola', recipients: { csv: '/x.csv' } }).recipients).toEqual({
      csv: '/x.csv',
      phoneColumn: 'phone',
    });
  });
});

describe('ISO 8601 durations', () => {
  it.each([
    ['PT30S', 30_000],
    ['PT4H', 4 * 3_600_000],
    ['PT1H30M', 5_400_000],
    ['P1D', 86_400_000],
    ['P1DT12H', 1.5 * 86_400_000],
    ['P2W', 14 * 86_400_000],
    ['PT0.5S', 500],
  ])('%s is %i ms', (value, ms) => {
    expect(parseIsoDuration(value)).toBe(ms);
  });

  it.each(['P', 'PT', '4h', 'P1Y', 'P1M', 'PT0S', 'P1H', ''])('refuses %j', (value) => {
    expect(parseIsoDuration(value)).toBeUndefined();
  });
});

describe('message templates', () => {
  it('fills {{column}} placeholders, spaces inside the braces allowed', () => {
    const t = compileTemplate('Hola {{name}}, tu cita es el {{ date }} ({{name}})');
    expect(t.columns).toEqual(['name', 'date']);
    const row: Record<string, string> = { name: 'Ana', date: 'lunes' };
    expect(t.render((c) => row[c])).toEqual({ ok: true, text: 'Hola Ana, tu cita es el lunes (Ana)' });
  });

  it('reports a missing column as a row error', () => {
    const t = compileTemplate('Hola {{name}}');
    expect(t.render(() => undefined)).toEqual({ ok: false, error: 'no value for column "name"' });
  });

  it('refuses a text that renders empty, keeps an empty value otherwise', () => {
    expect(compileTemplate('{{name}}').render(() => '  ').ok).toBe(false);
    expect(compileTemplate('Hola {{name}}').render(() => '')).toEqual({ ok: true, text: 'Hola ' });
  });

  it('leaves a text without placeholders as it is', () => {
    const t = compileTemplate('Rebajas: 20% {hoy}');
    expect(t.constant).toBe(true);
    expect(t.render(() => undefined)).toEqual({ ok: true, text: 'Rebajas: 20% {hoy}' });
  });
});
