import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import type { OutboundMessage } from '../message/types.js';

/**
 * Brotli quality 2: a 1,000-row personalised chunk (≈ 120 KB of JSON) compresses to a few KB in
 * a fraction of a millisecond; higher qualities cost more time than the bytes they save are worth
 * while the chunk waits in Redis for its turn to be enqueued.
 */
const QUALITY = 2;

/** A chunk's messages as they wait in Redis (the run's `staged` hash) to become a send request. */
export function encodeStagedChunk(messages: readonly OutboundMessage[]): Buffer {
  const json = Buffer.from(JSON.stringify(messages));
  return brotliCompressSync(json, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: json.length,
    },
  });
}

export function decodeStagedChunk(payload: Buffer): OutboundMessage[] {
  return JSON.parse(brotliDecompressSync(payload).toString('utf8')) as OutboundMessage[];
}
