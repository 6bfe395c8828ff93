import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { extractRequests, parseShown, project } from '../helpers/readme.js';

/**
 * README "A session" is run, not mirrored: every request of that section is extracted from
 * README.md and sent in order, with the admin token, to a started server on a fresh database,
 * and each answer's `data` is compared with the comment shown under it (the section's format:
 * test/helpers/readme.ts).
 */

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
    const requests = extractRequests(await readFile(resolve(import.meta.dirname, '../../README.md'), 'utf8'), 'A session');
    expect(requests.length).toBeGreaterThan(10);
    for (const r of requests) {
      const res = await t.gqlAs(admin, r.document, r.variables);
      expect({ line: r.line, status: res.status, errors: res.errors }).toEqual({ line: r.line, status: 200, errors: undefined });
      expect({ line: r.line, data: project(r.shown, res.data) }).toEqual({ line: r.line, data: r.shown });
    }
  });
});
