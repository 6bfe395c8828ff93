import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../src/server/static.js';
import { createToken } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { CHROMIUM, launchBrowser, type TestBrowser } from './browser.js';
import { scenario } from './scenario.js';

/**
 * Issue 20 item 6 in a real browser: an administrator's Tokens view lists each token's role,
 * device, datasets and subset; a record's view says which devices' shares hold it. Controls and
 * tables are found by role and accessible name.
 */

const t = useApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0 });
const tokens = { admin: '', reviewer: '' };
const s = scenario(t, () => tokens.admin);
let b: TestBrowser;
let origin = '';
const DS = 'households';
let visited = '';

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!existsSync(join(DASHBOARD_DIR, 'index.html'))) throw new Error('the dashboard is not built: npm run build:dashboard');
  const db = t.database.db;
  tokens.admin = (await createToken(db, { name: 'admin', role: 'admin' })).secret;
  tokens.reviewer = (await createToken(db, { name: 'reviewer', role: 'reviewer', datasets: [DS] })).secret;
  await s.d.createDataset(['district', 'status'], DS);
  visited = await s.d.create(DS, 'Household 12', { district: 'd2', status: 'visited' });
  await createToken(db, { name: 'Tablet 7', role: 'collector', deviceId: 'tablet-7', datasets: [DS], subset: [{ property: 'district', values: ['d1', 'd2'] }, { property: 'status', values: ['visited'] }] });
  await createToken(db, { name: 'Tablet 9', role: 'collector', deviceId: 'tablet-9', datasets: [DS], subset: [{ property: 'district', values: ['d3'] }] });
  origin = new URL(t.url).origin;
  b = await launchBrowser(origin);
});

afterAll(async () => {
  await b?.close();
});

async function signIn(token: string): Promise<Page> {
  const page = await b.page();
  page.setDefaultTimeout(10_000);
  await page.goto(`${origin}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Datasets' }).waitFor();
  return page;
}

describe('subsets in the dashboard', () => {
  it("an administrator's Tokens view shows each token's role, device, datasets and subset", async () => {
    const page = await signIn(tokens.admin);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
    await page.getByRole('heading', { level: 1, name: 'Tokens' }).waitFor();
    const table = page.getByRole('table', { name: /^API tokens with/ });
    await table.getByRole('rowheader', { name: 'Tablet 9' }).waitFor();
    const rows = (await table.getByRole('row').allInnerTexts()).slice(1).map((r) => r.replace(/\s+/g, ' ').replace(/ (just now|\d+ (s|min) ago).*$/, '').trim());
    expect(rows).toEqual([
      'admin admin any all whole datasets',
      `reviewer reviewer any ${DS} whole datasets`,
      `Tablet 7 collector tablet-7 ${DS} district is d1 or d2, and status is visited`,
      `Tablet 9 collector tablet-9 ${DS} district is d3`,
    ]);
    await b.screenshot(page, 'tokens');
    await page.close();
  });

  it("a record's view says which devices' shares hold it; a reviewer is offered no Tokens view", async () => {
    const page = await signIn(tokens.reviewer);
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).count()).toBe(0);
    await page.goto(`${origin}/#/entities/${visited}`);
    await page.getByRole('heading', { level: 1, name: 'Household 12' }).waitFor();
    const share = page.getByRole('region', { name: 'In the share of' });
    await share.waitFor();
    expect((await share.getByRole('listitem').allInnerTexts()).map((x) => x.trim())).toEqual(['Tablet 7 (device tablet-7): district is d1 or d2, and status is visited']);
    await page.close();
  });
  it('the Tokens view shows 100 tokens at a time, oldest first, and the next ones on "Show more tokens"', async () => {
    // 4 tokens so far; 100 more make 104.
    for (let i = 0; i < 100; i++) await createToken(t.database.db, { name: `Spare ${String(i).padStart(3, '0')}`, role: 'collector', deviceId: `spare-${i}`, datasets: [DS] });
    const page = await signIn(tokens.admin);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
    const table = page.getByRole('table', { name: /^API tokens with/ });
    await table.getByRole('rowheader', { name: 'Spare 095' }).waitFor();
    const names = async () => (await table.getByRole('rowheader').allInnerTexts()).map((x) => x.trim());
    expect(await names()).toEqual(['admin', 'reviewer', 'Tablet 7', 'Tablet 9', ...Array.from({ length: 96 }, (_, i) => `Spare ${String(i).padStart(3, '0')}`)]);
    await page.getByRole('button', { name: 'Show more tokens' }).click();
    await table.getByRole('rowheader', { name: 'Spare 099' }).waitFor();
    expect((await names()).slice(96)).toEqual(['Spare 092', 'Spare 093', 'Spare 094', 'Spare 095', 'Spare 096', 'Spare 097', 'Spare 098', 'Spare 099']);
    expect(await names()).toHaveLength(104);
    expect(await page.getByRole('button', { name: 'Show more tokens' }).count()).toBe(0);
    await page.close();
  });
});
