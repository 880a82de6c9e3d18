import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** One relative import of a source file: `import type` and re-exports included. */
export interface ImportEdge {
  from: string;
  to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.ts$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
}

/**
 * Every relative import between the `.ts` files below `root`, paths relative to `root`
 * (`queue/workers.ts`). Read with the TypeScript scanner, so type-only imports, re-exports and
 * dynamic `import()` count like any other: a type import that runs up the layers is still a
 * dependency a reader must follow.
 */
export function scanImports(root: string): { files: string[]; edges: ImportEdge[] } {
  const files = sourceFiles(root).map((f) => path.relative(root, f));
  const known = new Set(files);
  const edges: ImportEdge[] = [];
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true);
    for (const ref of info.importedFiles) {
      if (!ref.fileName.startsWith('.')) continue;
      const target = path.normalize(path.join(path.dirname(file), ref.fileName)).replace(/\.js$/, '.ts');
      if (known.has(target)) edges.push({ from: file, to: target });
    }
  }
  return { files, edges };
}

/** Import cycles, each as the list of files around it (first file repeated at the end). */
export function findCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const to of next.get(file) ?? []) {
      const s = state.get(to);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(to)), to]);
      else if (s === undefined) visit(to);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...next.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}
