import { describe, expect, it } from 'vitest';
import { listedDescomReports } from '../../src/providers/descom/delivery-reports.js';
import { parseOvhPushedReport } from '../../src/providers/ovh/delivery-reports.js';
import { nextPollAt, pollOffsetMs, validityHorizonMs } from '../../src/queue/delivery-schedule.js';

describe('OVH pushed reports, in every spelling', () => {
  it.each([
    [
      { id: '27000427', dlr: '1', ptt: '4' },
      { providerId: '27000427', status: 'delivered', code: '4' },
    ],
    [
      { id: '5', description: '2', ptt: '5' },
      { providerId: '5', status: 'undelivered', code: '5' },
    ],
    [
      { id: 5, dlr: 16 },
      { providerId: '5', status: 'undelivered', code: '16' },
    ],
    [
      { id: '5', ptt: '4' },
      { providerId: '5', status: 'delivered', code: '4' },
    ],
    [
      { id: '5', ptt: '23' },
      { providerId: '5', status: 'undelivered', code: '23' },
    ],
  ])('%j → %j', (params, expected) => {
    expect(parseOvhPushedReport(params)).toMatchObject(expected);
  });

  it.each([
    [{ id: '5', dlr: '4' }],
    [{ id: '5', ptt: '3' }],
    [{ id: '5', ptt: '24' }],
    [{ dlr: '1' }],
    [{ id: 'abc', dlr: '1' }],
    [{}],
  ])('no final status or no id: %j → undefined', (params) => {
    expect(parseOvhPushedReport(params)).toBeUndefined();
  });

  it('reads the date in OVH’s forms, else takes now', () => {
    expect(parseOvhPushedReport({ id: '1', dlr: '1', date: '2025-03-01 10:00:04' })?.at).toBe(
      Date.parse('2025-03-01T10:00:04'),
    );
    expect(parseOvhPushedReport({ id: '1', dlr: '1', date: '1740823204' })?.at).toBe(1_740_823_204_000);
    const before = Date.now();
    expect(parseOvhPushedReport({ id: '1', dlr: '1', date: 'yesterday' })!.at).toBeGreaterThanOrEqual(before);
  });
});

describe('the report schedule', () => {
  it('polls at 30 s, 1, 2, 5, 10, 30 min, then hourly, by default', () => {
    const minutes = [0, 1, 2, 3, 4, 5, 6, 7].map((step) => pollOffsetMs(step, 30_000) / 60_000);
    expect(minutes).toEqual([0.5, 1, 2, 5, 10, 30, 90, 150]);
  });

  it('ends at the validity plus an hour, every step scaled by the unit', () => {
    expect(validityHorizonMs(2_880, 30_000)).toBe(49 * 3_600_000);
    expect(validityHorizonMs(2_880, 30)).toBe(49 * 3_600);
    expect(nextPollAt(100, 1_000, 5_000, 30_000)).toBe(5_000);
    expect(nextPollAt(0, 1_000, 1e12, 30)).toBe(1_030);
  });
});

describe('Descom shipments', () => {
  const ctx = { recipients: ['+34600000001', '+34600000002', '+34600000003'], pending: new Set([0, 1, 2]) };
  it('reports only recipients listed with a final state', () => {
    const reports = listedDescomReports(
      {
        id: 1,
        messages: [
          { to: '600000001', status: 'DELIVERED' },
          { phone: '0034600000002', state: 'rejected' },
          { to: '600000003', status: 'queued' },
        ],
      },
      ctx,
      123,
    );
    expect(reports).toEqual([
      { index: 0, status: 'delivered', at: 123, code: 'DELIVERED' },
      { index: 1, status: 'undelivered', at: 123, code: 'rejected' },
    ]);
  });

  it('reports nothing for the documented shipment fields alone', () => {
    expect(listedDescomReports({ id: 1, num_messages: 3, num_sms: 3, cost_credits: 3 }, ctx, 1)).toEqual([]);
  });
});
