import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

/**
 * README "A session" is run, not mirrored: every request of that section is extracted from
 * README.md and sent in order, with the admin token, to a started server on a fresh database,
 * and each answer's `data` is compared with the comment shown under it.
 *
 * How the section is written, so it can be read by this test:
 * - every code block in it is a ```graphql block; a request is its GraphQL lines, then an
 *   optional `# variables: {…}` comment, then `# {…}`, the `data` it answers (continuation
 *   lines start with `#` and two or more spaces);
 * - a request that is only `# variables:` sends the latest document above that takes variables;
 * - in a shown answer, `…` outside a string stands for what is left out (more members of an
 *   object; more elements of an array, before or after those shown), `…` inside a string for
 *   any characters, and a timestamp for any timestamp.
 */

interface Request {
  document: string;
  variables?: Record<string, unknown>;
  shown: unknown;
  /** Where it is, for failure messages. */
  line: number;
}

/** JSON with the section's elisions, made parseable: a bare `…` becomes a marker member or element. */
function parseShown(text: string): unknown {
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
function project(shown: unknown, actual: unknown): unknown {
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

/** The requests of the section, in order. */
function extractRequests(readme: string): Request[] {
  const start = readme.indexOf('## A session');
  if (start < 0) throw new Error('README has no section "A session"');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const firstLine = readme.slice(0, start).split('\n').length;
  const requests: Request[] = [];
  let previous: string | null = null;
  for (const block of section.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)) {
    // The line of the block's opening fence; its content begins on the next.
    const fenceLine = firstLine + section.slice(0, block.index).split('\n').length - 1;
    if (block[1] !== 'graphql') throw new Error(`README line ${fenceLine}: a \`\`\`${block[1]} block in "A session"; every block there is a request the test runs`);
    let doc: string[] = [];
    let segments: { kind: 'variables' | 'shown'; text: string }[] = [];
    let line = fenceLine + 1;
    const flush = () => {
      if (doc.length === 0 && segments.length === 0) return;
      const document = doc.length ? doc.join('\n') : previous;
      const shown = segments.find((s) => s.kind === 'shown');
      const variables = segments.find((s) => s.kind === 'variables');
      if (!document) throw new Error(`README line ${line}: variables without a request that takes them above`);
      if (!shown) throw new Error(`README line ${line}: a request without the answer shown under it`);
      requests.push({ document, shown: parseShown(shown.text), line, ...(variables ? { variables: JSON.parse(variables.text) } : {}) });
      if (/\(\s*\$/.test(document)) previous = document;
      doc = [];
      segments = [];
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
      if (/^ {2,}/.test(body) && segments.length) segments.at(-1)!.text += body.trim();
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

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: null } });
  admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
});
afterAll(() => t.close());

describe('README: the session', () => {
  it('the extraction reads elisions as the section uses them', () => {
    const shown = parseShown('{"a":"c3000000-…03","b":[ …, {"v":3, …}],"at":"2026-11-26T13:52:15.449Z", …}');
    expect(project(shown, { a: 'c3000000-0000-4000-8000-000000000003', b: [{ v: 1 }, { v: 3, x: 1 }], at: '2030-01-01T00:00:00.000Z', more: true })).toEqual(shown);
    // And it does not hide a difference.
    expect(project(shown, { a: 'c3000000-0000-4000-8000-000000000004', b: [{ v: 1 }, { v: 3 }], at: 'soon' })).not.toEqual(shown);
    expect(project(parseShown('{"a":1}'), { a: 1, b: 2 })).not.toEqual({ a: 1 });
    expect(project(parseShown('[1, 2]'), [1, 2, 3])).not.toEqual([1, 2]);
  });

  it('every request in it answers what the README shows, in order', async () => {
    const requests = extractRequests(await readFile(resolve(import.meta.dirname, '../../README.md'), 'utf8'));
    expect(requests.length).toBeGreaterThan(10);
    for (const r of requests) {
      const res = await t.gqlAs(admin, r.document, r.variables);
      expect({ line: r.line, status: res.status, errors: res.errors }).toEqual({ line: r.line, status: 200, errors: undefined });
      expect({ line: r.line, data: project(r.shown, res.data) }).toEqual({ line: r.line, data: r.shown });
    }
  });
});
