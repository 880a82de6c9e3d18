/** A message text with `{{column}}` placeholders, compiled once per run and rendered per row. */
export interface Template {
  /** Columns the text refers to, in order of first use. */
  readonly columns: readonly string[];
  /** True when the text has no placeholder (every row gets the same text). */
  readonly constant: boolean;
  render(
    value: (column: string) => string | undefined,
  ): { ok: true; text: string } | { ok: false; error: string };
}

const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;

export function compileTemplate(text: string): Template {
  const literals: string[] = [];
  const refs: string[] = [];
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    literals.push(text.slice(last, match.index));
    refs.push(match[1]!);
    last = match.index + match[0].length;
  }
  literals.push(text.slice(last));
  const columns = [...new Set(refs)];

  return {
    columns,
    constant: refs.length === 0,
    render(value) {
      if (refs.length === 0) return { ok: true, text };
      let out = literals[0]!;
      for (let i = 0; i < refs.length; i += 1) {
        const v = value(refs[i]!);
        if (v === undefined) return { ok: false, error: `no value for column "${refs[i]}"` };
        out += v + literals[i + 1]!;
      }
      if (out.trim() === '') return { ok: false, error: 'the text renders empty' };
      return { ok: true, text: out };
    },
  };
}
