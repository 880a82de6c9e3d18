import { SegmentedMessage } from 'sms-segments-calculator';
import { describe, expect, it } from 'vitest';
import { analyzeText } from '../../src/message/segments.js';

describe('analyzeText fast path', () => {
  const library = (text: string) => {
    const m = new SegmentedMessage(text, 'auto');
    return { encoding: m.encodingName, segments: m.segmentsCount, characters: m.numberOfCharacters };
  };

  it.each([
    '',
    'Hola Ana, tu cita es mañana a las 10:00',
    'x'.repeat(160),
    'x'.repeat(161),
    'y'.repeat(306),
    'y'.repeat(307),
    'Précio: 10€ [oferta]',
    'Crème brûlée à 5 €',
    'Olá 😀',
    'línea 1\r\nlínea 2',
    'línea 1\nlínea 2',
    'ü'.repeat(400),
  ])('answers like the calculator: %j', (text) => {
    expect(analyzeText(text)).toEqual(library(text));
  });

  it('answers like the calculator on random texts', () => {
    const alphabet = 'abcXYZ019 ,.;:!?@_\nñÑüéèàìò¿¡£$ΔΩ€[]{}~^|\\áâêç😀\r';
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 500; i += 1) {
      const length = Math.floor(random() * 400);
      const chars = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]);
      // Half the texts stay within the basic set, where the fast path answers.
      const text = (
        i % 2 === 0 ? chars.filter((c) => /[a-zA-Z0-9 ,.;:!?@_ñÑüéèàìò¿¡£$ΔΩ\n]/.test(c!)) : chars
      ).join('');
      expect(analyzeText(text)).toEqual(library(text));
    }
  });
});
