import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ConsoleMessage, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR, GRAPHIQL_CSP } from '../../src/server/static.js';
import { createToken } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { CHROMIUM, launchBrowser, type TestBrowser } from './browser.js';

/**
 * Issue 17 item 12: `GET /graphql` (GraphiQL's page, which holds a token in its Headers editor)
 * had no Content-Security-Policy and no frame-ancestors, so any site could frame it. It now has a
 * strict policy of its own, and GraphiQL still works under it: no violation while it loads its
 * editors and workers, runs a query and a subscription; a page of another origin cannot frame it.
 */

const t = useApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0 });
let b: TestBrowser;
let origin = '';
let admin = '';
let framer: Server;
let framerOrigin = '';

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!existsSync(join(DASHBOARD_DIR, 'graphiql.html'))) throw new Error('GraphiQL is not built: npm run build:dashboard');
  admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  origin = new URL(t.url).origin;
  // Another origin (another port) whose page frames GraphiQL.
  framer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>framer</title><iframe id="target" src="${origin}/graphql" width="800" height="600"></iframe>`);
  });
  await new Promise<void>((resolve) => framer.listen(0, '127.0.0.1', resolve));
  framerOrigin = `http://127.0.0.1:${(framer.address() as AddressInfo).port}`;
  b = await launchBrowser([origin, framerOrigin]);
});

afterAll(async () => {
  await b?.close();
  framer?.close();
});

/** Console messages of the page that report a blocked load or script (Chromium logs CSP violations there). */
function violations(page: Page): string[] {
  const found: string[] = [];
  page.on('console', (m: ConsoleMessage) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) found.push(m.text().slice(0, 300));
  });
  page.on('pageerror', (e) => found.push(`pageerror: ${e.message}`));
  return found;
}

/** Replaces the text of GraphiQL's Monaco editor whose model ends in `file` with `text`. */
async function typeInto(page: Page, file: string, text: string) {
  await page.locator(`.monaco-editor[data-uri$="${file}"]`).click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(text);
  await page.keyboard.press('Shift+Control+End');
  await page.keyboard.press('Delete');
}

describe("GraphiQL's page under its content security policy", () => {
  it('is served with a strict CSP, frame-ancestors none and X-Frame-Options DENY', async () => {
    const res = await fetch(`${origin}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(GRAPHIQL_CSP);
    expect(GRAPHIQL_CSP).toContain("script-src 'self';");
    expect(GRAPHIQL_CSP).toContain("frame-ancestors 'none'");
    expect(GRAPHIQL_CSP).not.toMatch(/unsafe-eval|script-src[^;]*unsafe-inline|\*/);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    // The API's own answers are not pages: no page policy on them.
    const api = await fetch(`${origin}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` }, body: '{"query":"{ viewer { role } }"}' });
    expect(await api.json()).toEqual({ data: { viewer: { role: 'ADMIN' } } });
  });

  it('still loads, runs a query and a subscription over its socket, with no violation', async () => {
    const page = await b.page();
    page.setDefaultTimeout(20_000);
    const blocked = violations(page);
    const loaded = await page.goto(`${origin}/graphql`);
    expect(loaded!.headers()['content-security-policy']).toBe(GRAPHIQL_CSP);
    await typeInto(page, 'headers.json', JSON.stringify({ Authorization: `Bearer ${admin}` }));
    await typeInto(page, 'operation.graphql', '{ viewer { role } }');
    await page.getByRole('button', { name: /^Execute query/ }).click();
    await expect.poll(async () => (await page.locator('.graphiql-response').innerText()).replace(/\s+/g, '')).toContain('"role":"ADMIN"');

    // A subscription goes over the socket (connect-src 'self' must allow ws: of this host).
    await typeInto(page, 'operation.graphql', 'subscription { entityChanged(dataset: "nowhere") { version } }');
    // GraphiQL takes the editor's text a moment after the keys (seen on CI: a click at once ran the
    // previous query over HTTP), so Execute is pressed again until the socket opens; while no
    // socket has opened no subscription runs, so a second press cannot stop one.
    const socketOpened = () => b.requests.some((u) => u.startsWith(origin.replace(/^http/, 'ws')));
    await expect
      .poll(
        async () => {
          if (!socketOpened()) await page.getByRole('button', { name: /^Execute query/ }).click();
          return socketOpened();
        },
        { timeout: 20_000, interval: 1000 },
      )
      .toBe(true);
    await page.waitForTimeout(500);
    expect(blocked).toEqual([]);
    await page.close();
  });

  it('a page of another origin cannot frame it', async () => {
    const page = await b.page();
    const blocked = violations(page);
    await page.goto(`${framerOrigin}/`);
    await expect.poll(() => blocked.some((m) => m.includes("frame-ancestors 'none'"))).toBe(true);
    // The frame shows no GraphiQL.
    const frame = page.frames().find((f) => f !== page.mainFrame());
    expect(await frame?.locator('.graphiql-container').count().catch(() => 0)).toBe(0);
    await page.close();
  });
});
