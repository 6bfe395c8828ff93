import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { extractRequests, project } from '../helpers/readme.js';
import { pullable } from '../helpers/subset-device.js';

/**
 * README "Subsets: each device its share" is run, not mirrored: its requests are sent in order to
 * a started server on a fresh database (format: test/helpers/readme.ts), with the admin token or,
 * under `# as: NAME`, the token of that name made earlier in the section; in variables,
 * "<last cursor>" is the cursor of the last pull and "<id of NAME>" that token's id.
 */

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: null } });
  admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
});
afterAll(() => t.close());

describe('README: subsets', () => {
  it('every request in it answers what the README shows, in order', async () => {
    const requests = extractRequests(await readFile(resolve(import.meta.dirname, '../../README.md'), 'utf8'), 'Subsets: each device its share');
    expect(requests.length).toBeGreaterThan(6);
    const tokens = new Map<string, { secret: string; id: string }>();
    let cursor: string | null = null;
    for (const r of requests) {
      const variables = JSON.parse(JSON.stringify(r.variables ?? {}), (_k, v: unknown) => {
        if (v === '<last cursor>') return cursor;
        const named = typeof v === 'string' ? /^<id of (.+)>$/.exec(v) : null;
        return named ? tokens.get(named[1]!)!.id : v;
      }) as Record<string, unknown>;
      const secret = r.as ? tokens.get(r.as)?.secret : admin;
      expect(secret, `line ${r.line}: a token named ${r.as}`).toBeDefined();
      if (r.document.includes('changesSince')) await pullable(t.database.db);
      const res = await t.gqlAs(secret!, r.document, variables);
      expect({ line: r.line, status: res.status, errors: res.errors }).toEqual({ line: r.line, status: 200, errors: undefined });
      expect({ line: r.line, data: project(r.shown, res.data) }).toEqual({ line: r.line, data: r.shown });
      const made = res.data?.createApiToken?.data;
      if (made) tokens.set(/name: "([^"]+)"/.exec(r.document)![1]!, { secret: made.secret, id: made.token.id });
      cursor = res.data?.changesSince?.data?.cursor ?? cursor;
    }
  });
});
