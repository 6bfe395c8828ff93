/**
 * README sections that are run, not mirrored (test/graphql/readme-*.test.ts): every request of a
 * section is extracted from README.md and sent in order to a started server, and each answer's
 * `data` is compared with the comment shown under it.
 *
 * How such a section is written, so it can be read:
 * - every code block in it is a ```graphql block; a request is its GraphQL lines, then an
 *   optional `# variables: {…}` comment, then `# {…}`, the `data` it answers (continuation
 *   lines start with `#` and two or more spaces); a `# as: NAME` line before a request sends it
 *   with the token named NAME (made earlier in the section);
 * - a request that is only `# variables:` sends the latest document above that takes variables;
 * - in a shown answer, `…` outside a string stands for what is left out (more members of an
 *   object; more elements of an array, before or after those shown), `…` inside a string for
 *   any characters, and a timestamp for any timestamp.
 */

export interface Request {
  document: string;
  variables?: Record<string, unknown>;
  shown: unknown;
  /** Where it is, for failure messages. */
  line: number;
  /** Sent with the token of this name (a `# as: NAME` line above it); the admin's when absent. */
  as?: string;
}

/** JSON with the section's elisions, made parseable: a bare `…` becomes a marker member or element. */
export function parseShown(text: string): unknown {
  let out = '';
  let inString = false;
  const stack: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inString) {
      out += ch;
      if (ch === '\\') out += text[++i] ?? '';
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    if (ch === '{' || ch === '[') stack.push(ch);
    if (ch === '}' || ch === ']') stack.pop();
    out += ch === '…' ? (stack.at(-1) === '{' ? '"…":"…"' : '"…"') : ch;
  }
  return JSON.parse(out);
}

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `actual` in the shape of `shown`: where it matches an elision, the elision itself; members
 * and elements an elision leaves out, dropped. Equal to `shown` exactly when the answer is
 * what the README shows, and otherwise a readable diff.
 */
export function project(shown: unknown, actual: unknown): unknown {
  if (typeof shown === 'string' && typeof actual === 'string') {
    if (TIMESTAMP.test(shown)) return TIMESTAMP.test(actual) ? shown : actual;
    if (shown.includes('…')) {
      const pattern = new RegExp(`^${shown.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
      return pattern.test(actual) ? shown : actual;
    }
    return actual;
  }
  if (Array.isArray(shown) && Array.isArray(actual)) {
    const head = shown[0] === '…';
    const tail = shown.at(-1) === '…' && shown.length > 1;
    const inner = shown.slice(head ? 1 : 0, tail ? -1 : undefined);
    if (!head && !tail) return actual.map((a, i) => (i < shown.length ? project(shown[i], a) : a));
    if (actual.length < inner.length) return actual;
    const from = head ? actual.length - inner.length : 0;
    return [...(head ? ['…'] : []), ...inner.map((s, i) => project(s, actual[from + i])), ...(tail ? ['…'] : [])];
  }
  if (isObject(shown) && isObject(actual)) {
    const elided = '…' in shown;
    const keys = elided ? Object.keys(shown).filter((k) => k !== '…' && k in actual) : Object.keys(actual);
    const out: Record<string, unknown> = Object.fromEntries(keys.map((k) => [k, k in shown ? project(shown[k], actual[k]) : actual[k]]));
    if (elided) out['…'] = '…';
    return out;
  }
  return actual;
}

/** The requests of a section of README.md (by its title), in order. */
export function extractRequests(readme: string, title: string): Request[] {
  const start = readme.indexOf(`## ${title}`);
  if (start < 0) throw new Error(`README has no section "${title}"`);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const firstLine = readme.slice(0, start).split('\n').length;
  const requests: Request[] = [];
  let previous: string | null = null;
  for (const block of section.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)) {
    // The line of the block's opening fence; its content begins on the next.
    const fenceLine = firstLine + section.slice(0, block.index).split('\n').length - 1;
    if (block[1] !== 'graphql') throw new Error(`README line ${fenceLine}: a \`\`\`${block[1]} block in "${title}"; every block there is a request the test runs`);
    let doc: string[] = [];
    let segments: { kind: 'variables' | 'shown'; text: string }[] = [];
    let as: string | undefined;
    let line = fenceLine + 1;
    const flush = () => {
      if (doc.length === 0 && segments.length === 0) return;
      const document = doc.length ? doc.join('\n') : previous;
      const shown = segments.find((s) => s.kind === 'shown');
      const variables = segments.find((s) => s.kind === 'variables');
      if (!document) throw new Error(`README line ${line}: variables without a request that takes them above`);
      if (!shown) throw new Error(`README line ${line}: a request without the answer shown under it`);
      requests.push({ document, shown: parseShown(shown.text), line, ...(variables ? { variables: JSON.parse(variables.text) } : {}), ...(as ? { as } : {}) });
      if (/\(\s*\$/.test(document)) previous = document;
      doc = [];
      segments = [];
      as = undefined;
    };
    for (const [i, text] of block[2]!.split('\n').entries()) {
      if (text.trim() === '') continue;
      if (!text.startsWith('#')) {
        if (segments.length) flush();
        if (doc.length === 0) line = fenceLine + 1 + i;
        doc.push(text);
        continue;
      }
      const body = text.slice(1);
      if (body.startsWith(' as: ')) {
        if (segments.length) flush();
        as = body.slice(' as: '.length).trim();
      } else if (/^ {2,}/.test(body) && segments.length) segments.at(-1)!.text += body.trim();
      else if (body.startsWith(' variables:')) {
        if (segments.some((s) => s.kind === 'shown')) flush();
        if (doc.length === 0 && segments.length === 0) line = fenceLine + 1 + i;
        segments.push({ kind: 'variables', text: body.slice(' variables:'.length).trim() });
      } else segments.push({ kind: 'shown', text: body.trim() });
    }
    flush();
  }
  return requests;
}

