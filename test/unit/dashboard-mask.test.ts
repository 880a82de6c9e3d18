import { describe, expect, it } from 'vitest';
import { maskJobData, maskNumber, maskString, maskText } from '../../src/http/mask.js';

describe('dashboard masking', () => {
  it.each([
    ['+34600000789', '+34*****789'],
    ['+34 600 000 789', '+34*****789'],
    ['0034600000789', '003*****789'],
    ['600000789', '600*****789'],
    ['12345', '*****'],
  ])('masks the number %s as %s', (raw, masked) => {
    expect(maskNumber(raw)).toBe(masked);
  });

  it('replaces a text by its length in characters', () => {
    expect(maskText('Hola, tu cita es mañana')).toBe('[23 chars]');
    expect(maskText('👋🏽 hi')).toBe('[5 chars]');
  });

  it('masks numbers inside free text but leaves dates, ids and counts alone', () => {
    expect(maskString('Descom rejected +34600000789 and +33 6 12 34 56 78')).toBe(
      'Descom rejected +34*****789 and +33*****678',
    );
    expect(maskString('2025-01-31T09:00:00.000Z')).toBe('2025-01-31T09:00:00.000Z');
    expect(maskString('r8b972a79893542faa8817b53c91da801-0')).toBe('r8b972a79893542faa8817b53c91da801-0');
    expect(maskString('batch 12 of 40')).toBe('batch 12 of 40');
    expect(maskString('600 000 789')).toBe('600*****789');
  });

  it('masks a send job deeply: every number of every message, every text', () => {
    const data = {
      requestId: 'r1',
      provider: 'simulator',
      messages: [
        { text: 'Secreto 4321', to: ['+34600000001', '+34600000002'] },
        { text: 'Otro', to: ['+34600000003'] },
      ],
      sendAt: '2025-01-31T09:00:00.000Z',
      nested: { deeper: [{ phone: '612345678', note: 'call +34600000004 first' }] },
      count: 3,
      flag: true,
      none: null,
    };
    const masked = maskJobData(data);
    expect(masked).toEqual({
      requestId: 'r1',
      provider: 'simulator',
      messages: [
        { text: '[12 chars]', to: ['+34*****001', '+34*****002'] },
        { text: '[4 chars]', to: ['+34*****003'] },
      ],
      sendAt: '2025-01-31T09:00:00.000Z',
      nested: { deeper: [{ phone: '612*****678', note: 'call +34*****004 first' }] },
      count: 3,
      flag: true,
      none: null,
    });
    const json = JSON.stringify(masked);
    for (const raw of ['+34600000001', '600000002', 'Secreto', '612345678', '600000004'])
      expect(json).not.toContain(raw);
    // The input is not modified.
    expect(data.messages[0]!.to[0]).toBe('+34600000001');
  });

  it('survives cycles and leaves non-objects as they are', () => {
    const a: Record<string, unknown> = { to: '+34600000001' };
    a.self = a;
    expect(maskJobData(a)).toEqual({ to: '+34*****001', self: '[circular]' });
    expect(maskJobData(undefined)).toBeUndefined();
    expect(maskJobData(42)).toBe(42);
  });
});
