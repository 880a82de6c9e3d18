import { describe, expect, it } from 'vitest';
import { analyzeText } from '../../src/message/segments.js';

describe('analyzeText', () => {
  it.each([
    ['a'.repeat(160), 'GSM-7', 1],
    ['a'.repeat(161), 'GSM-7', 2],
    ['a'.repeat(306), 'GSM-7', 2],
    ['a'.repeat(307), 'GSM-7', 3],
    // An escape pair never straddles two parts: 152 + € (2 septets) + 152 = 306 septets but 3 parts.
    ['a'.repeat(152) + '€' + 'a'.repeat(152), 'GSM-7', 3],
    ['€'.repeat(80), 'GSM-7', 1],
    ['€'.repeat(81), 'GSM-7', 2],
    ['ñÑüé¿¡ Hola', 'GSM-7', 1],
    ['á'.repeat(70), 'UCS-2', 1],
    ['á'.repeat(71), 'UCS-2', 2],
    ['Tu cita es mañana a las 10:30, ¿vienes? ú', 'UCS-2', 1],
    ['😀'.repeat(35), 'UCS-2', 1],
    ['a'.repeat(66) + '😀' + 'a'.repeat(66), 'UCS-2', 3],
  ])('%#: counts encoding and parts', (text, encoding, segments) => {
    expect(analyzeText(text)).toMatchObject({ encoding, segments });
  });
});
