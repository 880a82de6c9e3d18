import { SegmentedMessage } from 'sms-segments-calculator';

export type Encoding = 'GSM-7' | 'UCS-2';

export interface TextAnalysis {
  encoding: Encoding;
  segments: number;
  characters: number;
}

/** GSM-7 vs UCS-2 and the number of SMS parts one copy of `text` takes. */
export function analyzeText(text: string): TextAnalysis {
  const message = new SegmentedMessage(text, 'auto');
  return {
    encoding: message.encodingName === 'GSM-7' ? 'GSM-7' : 'UCS-2',
    segments: message.segmentsCount,
    characters: message.numberOfCharacters,
  };
}
