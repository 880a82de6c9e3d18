import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findCycles, scanImports, type ImportEdge } from '../helpers/import-graph.js';

const src = fileURLToPath(new URL('../../src/', import.meta.url));

/**
 * The flow, bottom up: a file may import its own layer and the ones below, never one above.
 * Top-level files are the shared base, except config.ts and logger.ts, which compose what the
 * providers declare (their env schemas, their redaction paths), and the public entry points.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['abort.ts', 'errors.ts', 'env-fields.ts', 'redis.ts'],
  ['message'],
  ['providers'],
  ['config.ts', 'logger.ts'],
  // Webhook delivery is a queue of its own, started beside the batch workers.
  ['queue', 'webhooks'],
  ['campaigns', 'client.ts'],
  ['http'],
  ['service'],
  ['cli'],
  ['index.ts'],
];

/** The layer of a file (`queue/workers.ts` → the queue's), by its folder or its own name. */
function layerOf(file: string): number {
  const unit = file.split(path.sep)[0] ?? file;
  const layer = LAYERS.findIndex((names) => names.includes(unit));
  if (layer < 0) throw new Error(`${file}: not in any layer; add ${unit} to LAYERS`);
  return layer;
}

/** Imports that run back up the flow. */
function upwardImports(edges: readonly ImportEdge[]): string[] {
  return edges.filter((e) => layerOf(e.to) > layerOf(e.from)).map((e) => `${e.from} -> ${e.to}`);
}

describe('layering of src/', () => {
  const { files, edges } = scanImports(src);

  it('puts every file in a layer', () => {
    expect(() => files.forEach(layerOf)).not.toThrow();
  });

  it('has no import cycle (type-only imports included)', () => {
    expect(findCycles(edges)).toEqual([]);
  });

  it('has no import that runs back up the flow (message ← providers ← queue ← campaigns/http ← service ← cli)', () => {
    expect(upwardImports(edges)).toEqual([]);
  });

  it('catches a cycle and an upward import when there is one', () => {
    const bad: ImportEdge[] = [
      { from: 'message/batch-plan.ts', to: 'providers/types.ts' },
      { from: 'providers/ovh/errors.ts', to: 'providers/ovh/client.ts' },
      { from: 'providers/ovh/client.ts', to: 'providers/ovh/errors.ts' },
    ];
    expect(upwardImports(bad)).toEqual(['message/batch-plan.ts -> providers/types.ts']);
    expect(findCycles(bad)).toEqual([
      ['providers/ovh/client.ts', 'providers/ovh/errors.ts', 'providers/ovh/client.ts'],
    ]);
  });
});
