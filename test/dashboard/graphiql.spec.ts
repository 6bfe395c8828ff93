import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../src/server/static.js';
import { createToken } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { CHROMIUM, launchBrowser, type TestBrowser } from './browser.js';

/**
 * Issue 18 item 3: GraphiQL loads its schema with the token it has, without "Re-fetch". GraphiQL
 * introspects as it mounts; its Headers editor did not exist yet, so the introspection went
 * without the token (two 401s) and the Docs explorer said "Error fetching schema".
 */

const t = useApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0 });
let b: TestBrowser;
let origin = '';
let admin = '';

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!existsSync(join(DASHBOARD_DIR, 'graphiql.html'))) throw new Error('GraphiQL is not built: npm run build:dashboard');
  admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  origin = new URL(t.url).origin;
  b = await launchBrowser(origin);
});

afterAll(async () => {
  await b?.close();
});

interface Exchange {
  url: string;
  method: string;
  authorization: string | undefined;
  body: string;
  status: number;
}

/** Every HTTP exchange of the page with /graphql, as the network log shows it. */
function networkLog(page: Page): Exchange[] {
  const log: Exchange[] = [];
  page.on('response', (res) => {
    const req = res.request();
    if (new URL(req.url()).pathname !== '/graphql') return;
    log.push({ url: req.url(), method: req.method(), authorization: req.headers()['authorization'], body: req.postData() ?? '', status: res.status() });
  });
  return log;
}

const introspections = (log: Exchange[]) => log.filter((e) => e.method === 'POST' && e.body.includes('__schema'));

/** The Docs explorer, opened if it is not (GraphiQL remembers an open one in localStorage). */
async function openDocs(page: Page) {
  const toggle = page.getByRole('button', { name: /^(Show|Hide) Documentation Explorer$/ });
  await toggle.waitFor();
  if ((await toggle.getAttribute('aria-label'))!.startsWith('Show')) await toggle.click();
  return page.getByRole('region', { name: 'Documentation Explorer' });
}

/** The names the Docs explorer lists under "All Schema Types", once it lists them. */
async function docsTypes(page: Page): Promise<string[]> {
  const explorer = await openDocs(page);
  await explorer.getByText('All Schema Types').waitFor();
  return explorer.locator('.graphiql-doc-explorer-section-content a.graphiql-doc-explorer-type-name').allInnerTexts();
}

describe('GraphiQL loads its schema with its token', () => {
  it('opened from the dashboard: the first introspection carries the dashboard token, the Docs explorer lists the types, no 401', async () => {
    const page = await b.page();
    page.setDefaultTimeout(15_000);
    const log = networkLog(page);
    await page.goto(`${origin}/`);
    await page.getByLabel('API token').fill(admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Datasets' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'GraphiQL' }).click();
    await page.waitForURL(`${origin}/graphql`);

    const types = await docsTypes(page);
    expect(types).toEqual(expect.arrayContaining(['Query', 'Mutation', 'Subscription', 'Entity', 'EntityVersion', 'Dataset', 'ChangeInput', 'Role']));
    expect(await page.getByText('Error fetching schema').count()).toBe(0);
    // Nothing pressed: exactly one introspection, with the token, answered 200; nothing refused.
    expect(introspections(log).map((e) => [e.authorization, e.status])).toEqual([[`Bearer ${admin}`, 200]]);
    expect(log.filter((e) => e.status === 401)).toEqual([]);
    // The Headers tab shows the token it sent.
    expect((await page.locator('.monaco-editor[data-uri$="headers.json"]').innerText()).replace(/\s+/g, '')).toContain(`"Authorization":"Bearer${admin}"`);
    await page.close();
  });

  it('opened without a token: says so, then loads the schema as soon as a token is pasted in the Headers tab', async () => {
    const page = await b.page();
    page.setDefaultTimeout(15_000);
    const log = networkLog(page);
    await page.goto(`${origin}/graphql`);
    const explorer = await openDocs(page);
    await explorer.getByText('Error fetching schema').waitFor();
    await expect.poll(() => introspections(log).length).toBeGreaterThan(0);
    // The Headers tab's placeholder is not sent as a token: the service is told that none came.
    expect(introspections(log).every((e) => e.status === 401 && e.authorization === undefined)).toBe(true);

    // Paste the token over the placeholder; no Re-fetch pressed.
    await page.locator('.monaco-editor[data-uri$="headers.json"]').click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${admin}` }));
    await page.keyboard.press('Shift+Control+End');
    await page.keyboard.press('Delete');
    const types = await docsTypes(page);
    expect(types).toEqual(expect.arrayContaining(['Entity', 'Dataset', 'Role']));
    expect(introspections(log).at(-1)).toMatchObject({ authorization: `Bearer ${admin}`, status: 200 });
    await page.close();
  });
});
