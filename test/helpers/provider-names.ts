import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** What the architecture test knows of a provider: its id and its env keys. */
export interface ProviderNames {
  id: string;
  envKeys: readonly string[];
}

/** One place outside a provider's folder (and the registry) that names it. */
export interface NameLeak {
  file: string;
  line: number;
  token: string;
  provider: string;
}

/** Files allowed to name providers: the registry, which lists the folders. */
const REGISTRY_FILES = new Set(['providers/modules.ts']);

const capitalised = (id: string) => id.charAt(0).toUpperCase() + id.slice(1);

/**
 * Every code token (comments excluded: prose may say "as OVH does") below `srcRoot` that names a
 * provider outside `providers/<id>/` and the registry: an identifier equal to its id or built on
 * it (`ovh`, `ovhModule`, `createOvhProvider`), a string or template text holding its id as a word
 * (`'ovh'`, `'batch-ovh'`), or any of its env keys.
 */
export function findProviderNameLeaks(srcRoot: string, providers: readonly ProviderNames[]): NameLeak[] {
  const leaks: NameLeak[] = [];
  const files = readdirSync(srcRoot, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(srcRoot, path.join(e.parentPath, e.name)));
  for (const file of files) {
    if (REGISTRY_FILES.has(file)) continue;
    const owner = /^providers\/([^/]+)\//.exec(file)?.[1];
    const others = providers.filter((p) => p.id !== owner);
    const text = readFileSync(path.join(srcRoot, file), 'utf8');
    const sourceFile = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      const token = tokenText(node);
      if (token !== undefined) {
        for (const p of others) {
          if (names(token, node, p)) {
            const { line } = sourceFile.getLineAndCharacterOfPosition(node.getStart());
            leaks.push({ file, line: line + 1, token, provider: p.id });
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sourceFile);
  }
  return leaks;
}

function tokenText(node: ts.Node): string | undefined {
  if (ts.isIdentifier(node) || ts.isPrivateIdentifier(node)) return node.text;
  if (ts.isStringLiteralLike(node) || ts.isTemplateLiteralToken(node)) return node.text;
  return undefined;
}

function names(token: string, node: ts.Node, p: ProviderNames): boolean {
  if (p.envKeys.some((key) => new RegExp(`\\b${key}\\b`).test(token))) return true;
  if (ts.isIdentifier(node) || ts.isPrivateIdentifier(node)) {
    const id = p.id;
    const cap = capitalised(id);
    return (
      token === id ||
      (token.startsWith(`${id}`) && /^[A-Z_]/.test(token.slice(id.length))) ||
      new RegExp(`[a-z]${cap}(?:[A-Z_]|$)`).test(token) ||
      (token.startsWith(cap) && /^(?:[A-Z_]|$)/.test(token.slice(cap.length))) ||
      (token.toUpperCase() === token && new RegExp(`(^|_)${id.toUpperCase()}(_|$)`).test(token))
    );
  }
  return new RegExp(`\\b${p.id}\\b`, 'i').test(token);
}
