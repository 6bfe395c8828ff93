import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../src/server/static.js';
import { createToken } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { ok } from '../helpers/domain.js';
import { CHROMIUM, launchBrowser, TABLET, type TestBrowser } from './browser.js';
import { scenario } from './scenario.js';

/**
 * Issue 14 in a real browser: Debian's chromium driven by playwright-core against a started
 * server (PGlite, or Postgres with DATABASE_URL), finding every control by its role and
 * accessible name, and refusing every request that is not to the server.
 */

const t = useApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0 });
const tokens = { admin: '', reviewer: '', collector: '' };
const s = scenario(t, () => tokens.admin);
let b: TestBrowser;
let origin = '';
const DS = 'trees';
let birch = '';
let oak = '';

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!existsSync(join(DASHBOARD_DIR, 'index.html'))) throw new Error('the dashboard is not built: npm run build:dashboard');
  const db = t.database.db;
  tokens.admin = (await createToken(db, { name: 'admin', role: 'admin' })).secret;
  tokens.reviewer = (await createToken(db, { name: 'reviewer', role: 'reviewer', datasets: [DS] })).secret;
  tokens.collector = (await createToken(db, { name: 'tablet 7', role: 'collector', deviceId: 'tablet-7', datasets: [DS] })).secret;
  await s.d.createDataset(['species', 'height', 'health'], DS);
  await s.d.createDataset(['wingspan', 'species'], 'birds');
  birch = await s.softBirch(DS);
  origin = new URL(t.url).origin;
  b = await launchBrowser(origin);
});

afterAll(async () => {
  await b?.close();
});

async function signIn(token: string, viewport?: { width: number; height: number }): Promise<Page> {
  const page = await b.page(viewport);
  page.setDefaultTimeout(10_000);
  await page.goto(`${origin}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Datasets' }).waitFor();
  return page;
}

const rowTexts = async (page: Page, tableCaption: RegExp) =>
  (await page.getByRole('table', { name: tableCaption }).getByRole('row').allInnerTexts()).slice(1).map((r) => r.replace(/\s+/g, ' ').trim());

describe('signing in', () => {
  it('refuses a wrong token with a clear message and keeps nothing', async () => {
    const page = await b.page();
    await page.goto(`${origin}/`);
    await page.getByLabel('API token').fill('est_not-a-token-anyone-made');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.innerText()).toBe('The service did not accept this token: it is wrong, incomplete or has been revoked.');
    expect(await page.evaluate(() => sessionStorage.getItem('entity-sync.token'))).toBeNull();
    expect(await page.getByRole('heading', { name: 'Datasets' }).count()).toBe(0);
    await b.screenshot(page, 'sign-in-refused');
    await page.close();
  });

  it('with an admin token shows the datasets at a glance, live, and signs out', async () => {
    const page = await signIn(tokens.admin);
    await page.getByRole('status').filter({ hasText: 'Live updates: on' }).waitFor();
    await expect.poll(() => rowTexts(page, /^Datasets with/)).toEqual(['birds 0 none none –', `${DS} 1 1 open 1 soft none –`]);
    expect(await page.getByText('Signed in as admin').count()).toBe(1);
    await b.screenshot(page, 'datasets');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('entity-sync.token'))).toBeNull();
    await page.close();
  });
});

describe('reviewing as an admin', () => {
  let page: Page;
  beforeAll(async () => {
    page = await signIn(tokens.admin);
  });
  afterAll(async () => {
    await page.close();
  });

  it('a conflict made through the API appears in the inbox live, newest first', async () => {
    let loads = 0;
    page.on('load', () => loads++);
    await page.getByRole('link', { name: `Conflict inbox of ${DS}: 1 open` }).click();
    await page.getByRole('heading', { level: 1, name: `Conflict inbox: ${DS}` }).waitFor();
    await page.getByRole('link', { name: 'Birch by the pond' }).waitFor();

    oak = await s.oakSession(DS);
    await page.getByRole('link', { name: 'Oak by the gate' }).waitFor();
    const rows = await rowTexts(page, /^Open conflicts in/);
    expect(rows.map((r) => r.replace(/ \d+ (s|min) ago.*| just now.*/, ''))).toEqual([
      'Oak by the gate Hard conflict height: 16 now (office-1) vs 14 (tablet-7) vs 13 (office-1) office-1, tablet-7',
      'Birch by the pond Soft conflict none overwritten –',
    ]);
    expect(loads).toBe(0);

    await page.getByLabel('Soft only').check();
    await page.getByRole('link', { name: 'Birch by the pond' }).waitFor();
    expect(await rowTexts(page, /^Open conflicts in/)).toHaveLength(1);
    await page.getByLabel('All').check();
    await page.getByRole('link', { name: 'Oak by the gate' }).waitFor();
    await b.screenshot(page, 'conflict-inbox');
  });

  it("the entity view shows the author's and the server's values side by side, and why an author's view is missing", async () => {
    await page.getByRole('link', { name: 'Oak by the gate' }).click();
    await page.getByRole('heading', { level: 1, name: 'Oak by the gate' }).waitFor();
    const v6 = page.getByRole('article', { name: 'Version 6: Changed' });
    await v6.waitFor();
    expect(await v6.getByText('from device office-1').count()).toBe(1);
    const author = v6.getByRole('region', { name: "Author's view of version 6" });
    const server = v6.getByRole('region', { name: "Server's view of version 6" });
    expect((await author.getByRole('row', { name: /height/ }).innerText()).replace(/\s+/g, ' ')).toBe('height also changed meanwhile 13 → 16');
    expect((await server.getByRole('row', { name: /height/ }).innerText()).replace(/\s+/g, ' ')).toBe('height also changed meanwhile 14 → 16');
    expect(await server.innerText()).toContain('What changed compared with version 5, the one before it. The change was applied against version 2.');

    const v4 = page.getByRole('article', { name: 'Version 4: Changed' });
    expect(await v4.innerText()).toContain('released: it was held until the step before it in its run arrived');
    expect(await v4.getByRole('region', { name: "Author's view of version 4" }).innerText()).toContain('Not available: an earlier change of the run was applied in conflict');
    expect((await v4.getByRole('region', { name: "Server's view of version 4" }).getByRole('row', { name: /height/ }).innerText()).replace(/\s+/g, ' ')).toBe(
      'height also changed meanwhile 13 → 14',
    );
    const runs = page.getByRole('region', { name: 'Offline runs' });
    expect((await runs.getByRole('row').nth(1).innerText()).replace(/\s+/g, ' ')).toMatch(/^[0-9a-f]{8} version 1 step 1: version 3 step 2: version 4 step 3: version 5 nothing$/);
    await b.screenshot(page, 'entity');
    await b.screenshot(page, 'entity-full', { fullPage: true });
    await v6.scrollIntoViewIfNeeded();
    await page.getByRole('heading', { level: 2, name: 'History' }).evaluate((h) => h.scrollIntoView());
    await b.screenshot(page, 'entity-history');
    const tablet = await b.page(TABLET);
    await tablet.goto(page.url());
    await tablet.getByLabel('API token').fill(tokens.admin);
    await tablet.getByRole('button', { name: 'Sign in' }).click();
    await tablet.getByRole('heading', { level: 1, name: 'Oak by the gate' }).waitFor();
    await b.screenshot(tablet, 'entity-tablet');
    await tablet.close();
  });

  it('"Mark resolved" (confirmed) clears the conflict on the server, and another reviewer\'s open inbox drops it live', async () => {
    expect((await s.entity(oak)).conflict).toBe('HARD');
    // A second reviewer with the inbox open in another tab.
    const other = await signIn(tokens.reviewer);
    await other.getByRole('link', { name: `Conflict inbox of ${DS}: 2 open` }).click();
    await other.getByRole('link', { name: 'Oak by the gate' }).waitFor();
    let loads = 0;
    other.on('load', () => loads++);

    await page.getByRole('button', { name: 'Mark resolved' }).click();
    await page.getByRole('dialog', { name: 'Mark the conflict on Oak by the gate resolved?' }).getByRole('button', { name: 'Mark resolved' }).click();
    await page.getByRole('status').filter({ hasText: 'Resolved: the conflict is marked resolved; no value changed.' }).waitFor();
    expect((await s.entity(oak)).conflict).toBeNull();
    const inbox = ok(await t.gqlAs(tokens.admin, `{ conflictInbox(dataset: "${DS}") { nodes { id } } }`)).conflictInbox.nodes;
    expect(inbox).toEqual([{ id: birch }]);
    await page.getByRole('button', { name: 'Mark resolved' }).waitFor({ state: 'detached' });
    await page.getByRole('status').filter({ hasText: 'Resolved: the conflict is marked resolved; no value changed.' }).waitFor();

    await other.getByRole('link', { name: 'Oak by the gate' }).waitFor({ state: 'detached' });
    expect(await rowTexts(other, /^Open conflicts in/)).toHaveLength(1);
    expect(loads).toBe(0);
    await other.close();
  });

  it('a held change appears live with its countdown, and "Force now" applies it', async () => {
    await page.getByRole('link', { name: 'Datasets' }).first().click();
    await page.getByRole('link', { name: `Held backlog of ${DS}: 0 held` }).click();
    await page.getByText('Nothing is held.').waitFor();
    const version = (await s.entity(oak)).version;
    const changeId = await s.heldChange(DS, oak, version);
    const row = page.getByRole('row', { name: /Oak by the gate/ });
    await row.waitFor();
    expect((await row.innerText()).replace(/\s+/g, ' ')).toMatch(
      new RegExp(`^Oak by the gate tablet-9 step 2 of the run, waits for step 1 run [0-9a-f]{8} Update health poor (just now|\\d+ s ago).* (5 min|4 min \\d+ s) Force now$`),
    );
    await b.screenshot(page, 'backlog');

    await row.getByRole('button', { name: 'Force now' }).click();
    await page.getByRole('dialog', { name: 'Force the change to Oak by the gate now?' }).getByRole('button', { name: 'Force it now' }).click();
    await page.getByRole('status').filter({ hasText: `Forced: change ${changeId.slice(0, 8)} is now version ${version + 1}.` }).waitFor();
    await row.waitFor({ state: 'detached' });
    expect(await s.held(DS)).toEqual([]);
    const e = await s.entity(oak);
    expect(e.versions.at(-1)).toEqual({ version: version + 1, source: 'FORCED', conflict: 'SOFT' });
    expect(e.data.health).toBe('poor');
  });

  it('shows the connection state and reconnects when the socket drops', async () => {
    const live = await b.page();
    live.setDefaultTimeout(10_000);
    const routes: { close(o: { code: number }): Promise<void> }[] = [];
    let refuseNext = 0;
    await live.routeWebSocket(/\/graphql$/, (ws) => {
      b.requests.push(ws.url());
      // The first attempts after the drop fail too, so "reconnecting" stays up long enough to be seen.
      if (refuseNext-- > 0) return ws.close({ code: 1012 });
      ws.connectToServer();
      routes.push(ws);
    });
    await live.goto(`${origin}/`);
    await live.getByLabel('API token').fill(tokens.admin);
    await live.getByRole('button', { name: 'Sign in' }).click();
    await live.getByRole('status').filter({ hasText: 'Live updates: on' }).waitFor();
    refuseNext = 2;
    await routes.at(-1)!.close({ code: 1012 });
    await live.getByRole('status').filter({ hasText: 'Live updates: reconnecting' }).waitFor();
    await live.getByRole('status').filter({ hasText: 'Live updates: on' }).waitFor();
    // Events flow again on the new socket: a new conflict reaches the overview (the forced change left the oak SOFT; now it turns HARD).
    await expect.poll(async () => (await rowTexts(live, /^Datasets with/))[1]).toBe(`${DS} 2 2 open 2 soft none –`);
    await s.conflictOn(DS, oak, 1);
    await expect.poll(async () => (await rowTexts(live, /^Datasets with/))[1], { timeout: 10_000 }).toBe(`${DS} 2 2 open 1 hard 1 soft none –`);
    await live.close();
  });
});

describe('what other tokens are offered', () => {
  it('a reviewer reviews and resolves, but is not offered "Force now"', async () => {
    const version = (await s.entity(oak)).version;
    await s.heldChange(DS, oak, version, 'tablet-4');
    const page = await signIn(tokens.reviewer);
    expect(await page.getByText(`Signed in as reviewer (${DS})`).count()).toBe(1);
    await page.getByRole('link', { name: `Held backlog of ${DS}: 1 held` }).click();
    await page.getByRole('row', { name: /tablet-4/ }).waitFor();
    expect(await page.getByRole('button', { name: 'Force now' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Oak by the gate' }).click();
    await page.getByRole('button', { name: 'Mark resolved' }).waitFor();
    await page.close();
  });

  it("a collector's view hides what it may not see", async () => {
    const page = await signIn(tokens.collector);
    await page.getByText('This is a collector token').waitFor();
    await page.getByRole('listitem').first().waitFor();
    expect(await page.getByRole('listitem').allInnerTexts()).toEqual([`${DS}: species, height, health`]);
    for (const name of [/Conflict inbox/, /Held backlog/, /Oak/]) expect(await page.getByRole('link', { name }).count()).toBe(0);
    expect(await page.getByRole('table').count()).toBe(0);
    await b.screenshot(page, 'collector');
    for (const route of [`#/datasets/${DS}/conflicts`, `#/datasets/${DS}/backlog`, `#/entities/${oak}`]) {
      await page.goto(`${origin}/${route}`);
      await page.getByRole('heading', { level: 1, name: 'Nothing here' }).waitFor();
      for (const name of ['Force now', 'Resolve', 'Mark resolved']) expect(await page.getByRole('button', { name }).count()).toBe(0);
    }
    await page.close();
  });
});

describe('GraphiQL', () => {
  it('loads without internet and authenticates its subscriptions with the token from its Headers tab', async () => {
    const page = await b.page();
    page.setDefaultTimeout(15_000);
    const sent: string[] = [];
    const received: string[] = [];
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => void sent.push(String(f.payload)));
      ws.on('framereceived', (f) => void received.push(String(f.payload)));
    });
    await page.goto(`${origin}/graphql`);
    const run = page.getByRole('button', { name: /^Execute query/ });
    await run.waitFor();
    /** Replaces a Monaco editor's text (insertText types no brackets for Monaco to auto-close; what it closed anyway is cut). */
    const replace = async (editor: string, text: string) => {
      await page.locator(`.monaco-editor[data-uri$="${editor}"]`).click();
      await page.keyboard.press('Control+A');
      await page.keyboard.insertText(text);
      await page.keyboard.press('Shift+Control+End');
      await page.keyboard.press('Delete');
      await page.keyboard.press('Control+Home');
    };
    await page.getByRole('button', { name: 'Headers' }).click();
    await replace('headers.json', JSON.stringify({ Authorization: `Bearer ${tokens.reviewer}` }));
    await replace('operation.graphql', `subscription { conflictDetected(dataset: "${DS}") { entityId type conflictingProperties } }`);
    await page.getByRole('button', { name: /^Prettify query/ }).click();
    await run.click();
    await expect.poll(() => received.some((m) => JSON.parse(m).type === 'connection_ack'), { timeout: 10_000 }).toBe(true);
    expect(JSON.parse(sent[0]!)).toEqual({ type: 'connection_init', payload: { Authorization: `Bearer ${tokens.reviewer}` } });

    await s.conflictOn(DS, birch, 1);
    const result = page.locator('.result-window');
    await result.getByText('"conflictDetected"').waitFor();
    const next = received.map((m) => JSON.parse(m)).find((m) => m.type === 'next');
    expect(next.payload).toEqual({ data: { conflictDetected: { entityId: birch, type: 'HARD', conflictingProperties: ['height'] } } });
    expect((await result.innerText()).replace(/\s+/g, ' ')).toContain(`"entityId": "${birch}", "type": "HARD"`);
    await b.screenshot(page, 'graphiql');
    await page.close();
  });
});

describe('offline', () => {
  it('no request left the server: every URL any page asked for is on 127.0.0.1', () => {
    expect(b.requests.length).toBeGreaterThan(20);
    const elsewhere = b.requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith(`${origin.replace(/^http/, 'ws')}/`));
    expect(elsewhere).toEqual([]);
    expect(origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
