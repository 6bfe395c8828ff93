import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../src/server/static.js';
import { createToken } from '../../src/sync/tokens.js';
import type { TestApp } from '../helpers/app.js';
import { useApp } from '../helpers/app.js';
import { ok, sync } from '../helpers/domain.js';
import { CHROMIUM, launchBrowser, TABLET, type TestBrowser } from './browser.js';
import { scenario } from './scenario.js';

/**
 * Issue 19 items 9, 11 and 12 in a real browser (PGlite, or Postgres with DATABASE_URL): the records
 * of a dataset paged, searched and filtered; the changes it refused; its devices and its last 30
 * days as charts with their numbers in words. Controls are found by role and accessible name.
 */

const t = useApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0 });
const tokens = { admin: '', reviewer: '' };
const s = scenario(t, () => tokens.admin);
const asAdmin = {
  get url() {
    return t.url;
  },
  get database() {
    return t.database;
  },
  gql: (query: string, variables?: Record<string, unknown>) => t.gqlAs(tokens.admin, query, variables),
} as TestApp;
const pulls = sync(asAdmin);
let b: TestBrowser;
let origin = '';
const DS = 'parks';
const ids: Record<string, string> = {};
const limes: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!existsSync(join(DASHBOARD_DIR, 'index.html'))) throw new Error('the dashboard is not built: npm run build:dashboard');
  const db = t.database.db;
  tokens.admin = (await createToken(db, { name: 'admin', role: 'admin' })).secret;
  tokens.reviewer = (await createToken(db, { name: 'reviewer', role: 'reviewer', datasets: [DS, 'empty_one'] })).secret;
  await s.d.createDataset(['species', 'height', 'health', 'district'], DS);
  await s.d.createDataset(['species'], 'empty_one');
  // 28 records in one batch: two pages of 25. Labels sort with their ids, not by name, so tests look for names, not places.
  const trees = Array.from({ length: 26 }, (_, i) => ({
    dataset: DS,
    entityId: s.newId(),
    action: 'CREATE' as const,
    label: `Lime ${String(i + 1).padStart(2, '0')}`,
    data: { species: 'lime', height: 10 + (i % 3), district: i % 2 === 0 ? 'north' : 'south' },
    deviceId: 'office-1',
  }));
  for (const r of await s.d.submit(...trees)) expect(r.outcome).toBe('APPLIED');
  limes.push(...trees.map((tr) => tr.entityId));
  ids.oak = await s.d.create(DS, 'Old oak', { species: 'oak', height: 21, district: 'north' });
  ids.birch = await s.softBirch(DS);
  // A HARD conflict on the oak's height, from two devices.
  await s.d.update(DS, ids.oak, 1, { height: 22 }, { deviceId: 'tablet-5' });
  expect(await s.d.update(DS, ids.oak, 1, { height: 23 }, { deviceId: 'tablet-6' })).toMatchObject({ conflict: 'HARD' });

  // Refused: three from tablet-5 (one names a property the dataset does not declare), 26 from tablet-6.
  await s.d.expectRejected(await s.d.update(DS, ids.oak, 3, { colour: 'red', height: 30 }, { deviceId: 'tablet-5' }), 'UNKNOWN_PROPERTY');
  await s.d.expectRejected(await s.d.update(DS, s.newId(), 1, { height: 2 }, { deviceId: 'tablet-5' }), 'ENTITY_NOT_FOUND');
  await s.d.expectRejected(await s.d.update(DS, ids.oak, 3, { colour: 'blue' }, { deviceId: 'tablet-5' }), 'UNKNOWN_PROPERTY');
  const bad = Array.from({ length: 26 }, (_, i) => ({ dataset: DS, entityId: ids.birch!, action: 'UPDATE' as const, baseVersion: 3, data: { leaves: i }, deviceId: 'tablet-6' }));
  for (const r of await s.d.submit(...bad)) expect(r.outcome).toBe('REJECTED');
  // A device that only pulls, and a held change of tablet-9.
  await pulls.pull(DS, { deviceId: 'tablet-8' });
  await s.heldChange(DS, ids.oak, 3);
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

/** A table's body rows as text, ages said as "recently" and the full dates read to screen readers left out. */
const rowTexts = async (page: Page, tableCaption: RegExp) =>
  (await page.getByRole('table', { name: tableCaption }).getByRole('row').allInnerTexts())
    .slice(1)
    .map((r) =>
      r
        .replace(/\s*\([^()]*\d{4}[^()]*\)/g, '')
        .replace(/just now|\d+ (s|min) ago/g, 'recently')
        .replace(/\s+/g, ' ')
        .trim(),
    );

const labels = async (page: Page) => (await rowTexts(page, /^Records in/)).map((r) => r.split(/ (Hard conflict|Soft conflict|none) /)[0]!);

describe('records of a dataset (item 9)', () => {
  let page: Page;
  beforeAll(async () => {
    page = await signIn(tokens.reviewer);
  });
  afterAll(async () => {
    await page.close();
  });

  it('the datasets view links to them; 25 a page, with Next and Previous', async () => {
    await page.getByRole('link', { name: `Records of ${DS}` }).click();
    await page.getByRole('heading', { level: 1, name: `Records: ${DS}` }).waitFor();
    await page.getByRole('table', { name: `Records in ${DS}, page 1` }).waitFor();
    const first = await labels(page);
    expect(first).toHaveLength(25);
    expect(await page.getByRole('navigation', { name: `Views of ${DS}` }).getByRole('link', { name: 'Records' }).getAttribute('aria-current')).toBe('page');
    const headers = await page.getByRole('table', { name: /^Records in/ }).getByRole('columnheader').allInnerTexts();
    expect(headers).toEqual(['Record', 'Conflict', 'species', 'height', 'health', 'district', 'Version', 'Last changed']);
    expect(await page.getByRole('button', { name: 'Previous page' }).isDisabled()).toBe(true);
    await b.screenshot(page, 'records');

    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByRole('table', { name: `Records in ${DS}, page 2` }).waitFor();
    const second = await labels(page);
    expect(second).toHaveLength(3);
    expect(new Set([...first, ...second]).size).toBe(28);
    expect([...first, ...second].sort()).toEqual([...Array.from({ length: 26 }, (_, i) => `Lime ${String(i + 1).padStart(2, '0')}`), 'Old oak', 'Birch by the pond'].sort());
    expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await page.getByRole('table', { name: `Records in ${DS}, page 1` }).waitFor();
    expect(await labels(page)).toEqual(first);
  });

  it('searches the label in any letter case, and says when nothing matches', async () => {
    await page.getByRole('searchbox', { name: 'Label contains' }).fill('OAK');
    await page.getByRole('button', { name: 'Show records' }).click();
    await page.getByRole('table', { name: `Records in ${DS}, filtered, page 1` }).waitFor();
    expect(await rowTexts(page, /^Records in/)).toEqual(['Old oak Hard conflict oak 23 (not set) north 3 recently']);
    expect(await page.getByRole('navigation', { name: 'Pages of records' }).count()).toBe(0);

    await page.getByRole('searchbox', { name: 'Label contains' }).fill('maple');
    await page.getByRole('button', { name: 'Show records' }).click();
    await page.getByRole('status').filter({ hasText: 'No record matches these filters.' }).waitFor();
  });

  it("filters by a property's value (a number as a number, text in quotes as text) and by conflict state", async () => {
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.getByRole('combobox', { name: 'Property' }).selectOption('height');
    await page.getByRole('textbox', { name: 'Value' }).fill('12');
    await page.getByRole('button', { name: 'Show records' }).click();
    await page.getByRole('table', { name: `Records in ${DS}, filtered, page 1` }).waitFor();
    // Limes 3, 6, … 24: height 10 + (i % 3) is 12 for i = 2, 5, … 23.
    expect((await labels(page)).sort()).toEqual(['Lime 03', 'Lime 06', 'Lime 09', 'Lime 12', 'Lime 15', 'Lime 18', 'Lime 21', 'Lime 24']);
    await page.getByRole('textbox', { name: 'Value' }).fill('"12"');
    await page.getByRole('button', { name: 'Show records' }).click();
    await page.getByRole('status').filter({ hasText: 'No record matches these filters.' }).waitFor();

    await page.getByRole('combobox', { name: 'Property' }).selectOption('district');
    await page.getByRole('textbox', { name: 'Value' }).fill('north');
    await page.getByRole('radio', { name: 'In conflict' }).check();
    await page.getByRole('button', { name: 'Show records' }).click();
    await expect.poll(() => labels(page)).toEqual(['Old oak']);

    await page.getByRole('combobox', { name: 'Property' }).selectOption('');
    await page.getByRole('radio', { name: 'Soft conflict' }).check();
    await page.getByRole('button', { name: 'Show records' }).click();
    await expect.poll(() => labels(page)).toEqual(['Birch by the pond']);
    await page.getByRole('radio', { name: 'No conflict' }).check();
    await page.getByRole('button', { name: 'Show records' }).click();
    await page.getByRole('table', { name: `Records in ${DS}, filtered, page 1` }).waitFor();
    await expect.poll(async () => (await labels(page)).filter((l) => !l.startsWith('Lime'))).toEqual([]);
    expect(await labels(page)).toHaveLength(25);
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByRole('table', { name: `Records in ${DS}, filtered, page 2` }).waitFor();
    expect(await labels(page)).toHaveLength(1);
  });

  it('a row opens the record view', async () => {
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.getByRole('searchbox', { name: 'Label contains' }).fill('old');
    await page.getByRole('button', { name: 'Show records' }).click();
    await page.getByRole('link', { name: 'Old oak' }).click();
    await page.getByRole('heading', { level: 1, name: 'Old oak' }).waitFor();
    expect(page.url()).toBe(`${origin}/#/entities/${ids.oak}`);
  });

  it('a dataset with no records says so; an unknown one says it does not exist', async () => {
    await page.goto(`${origin}/#/datasets/empty_one/records`);
    await page.getByRole('heading', { level: 1, name: 'Records: empty_one' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'This dataset has no records yet.' }).waitFor();
    await page.goto(`${origin}/#/datasets/no_such_one/records`);
    await page.getByRole('heading', { level: 1, name: 'Records: no_such_one' }).waitFor();
    expect(await page.getByRole('alert').innerText()).toMatch(/^Could not load the records: /);
    // A malformed escape in the address names a dataset, it does not blank the page.
    await page.goto(`${origin}/#/datasets/%/records`);
    await page.getByRole('heading', { level: 1, name: 'Records: %' }).waitFor();
  });
});

describe('refused changes (item 11)', () => {
  let page: Page;
  beforeAll(async () => {
    page = await signIn(tokens.admin);
  });
  afterAll(async () => {
    await page.close();
  });

  it('lists what was refused, newest first: device, when, code, message and what it would have set, 25 a page', async () => {
    await page.getByRole('link', { name: `Records of ${DS}` }).click();
    await page.getByRole('navigation', { name: `Views of ${DS}` }).getByRole('link', { name: 'Refused changes' }).click();
    await page.getByRole('heading', { level: 1, name: `Refused changes: ${DS}` }).waitFor();
    const table = page.getByRole('table', { name: `Refused changes in ${DS}, newest first, page 1` });
    await table.waitFor();
    const rows = await rowTexts(page, /^Refused changes in/);
    expect(rows).toHaveLength(25);
    // The batch of 26 from tablet-6 came last: its rows fill the first page.
    for (const r of rows) expect(r).toMatch(/^recently tablet-6 UNKNOWN_PROPERTY .*leaves/);
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByRole('table', { name: `Refused changes in ${DS}, newest first, page 2` }).waitFor();
    const second = await rowTexts(page, /^Refused changes in/);
    expect(second).toHaveLength(4);
    const api = ok(await t.gqlAs(tokens.admin, `{ rejectedChanges(dataset: "${DS}", deviceId: "tablet-5") { nodes { errorMessage } } }`)).rejectedChanges.nodes;
    expect(second[2]).toBe(`recently tablet-5 ENTITY_NOT_FOUND ${api[1].errorMessage} Update ${second[2]!.match(/Update ([0-9a-f]{8})/)![1]} on version 1 height 2`);
    expect(second[3]).toBe(`recently tablet-5 UNKNOWN_PROPERTY ${api[2].errorMessage} Update ${ids.oak!.slice(0, 8)} on version 3 colour red height 30`);
    await b.screenshot(page, 'rejected');
  });

  it("one device's, from the devices view or typed", async () => {
    await page.getByRole('textbox', { name: 'Device' }).fill('tablet-5');
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    await page.getByRole('table', { name: `Refused changes in ${DS} from tablet-5, newest first, page 1` }).waitFor();
    expect((await rowTexts(page, /^Refused changes in/)).map((r) => r.split(' ').slice(1, 3).join(' '))).toEqual(['tablet-5 UNKNOWN_PROPERTY', 'tablet-5 ENTITY_NOT_FOUND', 'tablet-5 UNKNOWN_PROPERTY']);
    await page.getByRole('textbox', { name: 'Device' }).fill('tablet-8');
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Nothing from tablet-8 was refused.' }).waitFor();
  });
});

describe('devices and activity (item 12)', () => {
  let page: Page;
  const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
  /** What the charts must show, by day: conflicts opened and resolved. */
  const opened = new Map<string, number>();
  const resolved = new Map<string, number>();
  const add = (m: Map<string, number>, day: string) => m.set(day, (m.get(day) ?? 0) + 1);
  beforeAll(async () => {
    const db = t.database.db;
    const resolve = async (id: string, version: number) =>
      expect(ok(await t.gqlAs(tokens.admin, `mutation($id: ID!, $v: Int!) { resolveConflict(entityId: $id, version: $v) { __typename } }`, { id, v: version })).resolveConflict.__typename).toBe(
        'MutationResolveConflictSuccess',
      );
    // The month behind: the oak's conflict opened three days ago, the birch's today and resolved yesterday;
    // eight limes in conflict every three days from 23 days ago, every other one resolved a day later.
    await db.execute(sql`update entity_versions set created_at = now() - interval '3 days' where entity_id = ${ids.oak}::uuid and conflict is not null`);
    add(opened, daysAgo(3));
    add(opened, daysAgo(0));
    await resolve(ids.birch!, 3);
    await db.execute(sql`update resolutions set created_at = now() - interval '1 day' where entity_id = ${ids.birch}::uuid`);
    add(resolved, daysAgo(1));
    for (let i = 0; i < 8; i++) {
      const lime = limes[i]!;
      const ago = 23 - i * 3;
      await s.d.update(DS, lime, 1, { height: 20 }, { deviceId: 'office-1' });
      expect(await s.d.update(DS, lime, 1, { height: 21 }, { deviceId: 'tablet-6' })).toMatchObject({ conflict: 'HARD' });
      await db.execute(sql`update entity_versions set created_at = now() - make_interval(days => ${ago}) where entity_id = ${lime}::uuid and version = 3`);
      add(opened, daysAgo(ago));
      if (i % 2 === 0) {
        await resolve(lime, 3);
        await db.execute(sql`update resolutions set created_at = now() - make_interval(days => ${ago - 1}) where entity_id = ${lime}::uuid`);
        add(resolved, daysAgo(ago - 1));
      }
    }
    // Three more of tablet-9's changes held since 12, 8 and 5 days ago: the backlog grows from 1 to 4.
    for (const [k, ago] of [12, 8, 5].entries()) {
      const changeId = await s.heldChange(DS, limes[20 + k]!, 1);
      await db.execute(sql`update held_changes set held_since = now() - make_interval(days => ${ago}) where change_id = ${changeId}`);
    }
    page = await signIn(tokens.reviewer);
  });
  afterAll(async () => {
    await page.close();
  });

  it('lists each device: last change received, held now, refused in the last day, last pull', async () => {
    await page.goto(`${origin}/#/datasets/${DS}/devices`);
    await page.getByRole('heading', { level: 1, name: `Devices and activity: ${DS}` }).waitFor();
    await page.getByRole('table', { name: `Devices of ${DS}, by id` }).waitFor();
    const rows = await rowTexts(page, /^Devices of/);
    expect(rows).toEqual([
      'office-1 recently 0 0 never',
      'tablet-3 recently 0 0 never',
      'tablet-5 recently 0 3 never',
      'tablet-6 recently 0 26 never',
      'tablet-8 never 0 0 recently',
      'tablet-9 recently 4 0 never',
    ]);
  });

  it('draws the backlog and the conflicts per day as charts, each with its summary in words and its numbers', async () => {
    const backlog = page.getByRole('img', { name: 'Held backlog at the end of each day' });
    expect(await backlog.getAttribute('aria-describedby')).toBeTruthy();
    expect(await page.locator('svg desc').first().textContent()).toMatch(/^Held changes at the end of each day over the last 30 days: 4 now, at most 4 \(.+\)\.$/);
    const conflicts = page.getByRole('img', { name: 'Conflicts opened and resolved per day' });
    await conflicts.waitFor();
    expect(await page.locator('svg desc').nth(1).textContent()).toMatch(/^Over the last 30 days, 10 conflicts opened and 5 resolved; the most opened on .+ \(1\)\.$/);
    // Bars are drawn only for days with something: the backlog on its last 13 days, one per day a conflict opened or was resolved.
    expect(await backlog.locator('rect').count()).toBe(13);
    expect(await conflicts.locator('rect.series-opened').count()).toBe(opened.size);
    expect(await conflicts.locator('rect.series-resolved').count()).toBe(resolved.size);
    await b.screenshot(page, 'devices', { fullPage: true });

    await page.getByText('Conflicts opened and resolved per day: the numbers').click();
    const table = page.getByRole('table', { name: 'Conflicts opened and resolved per day, per day' });
    const rows = (await table.getByRole('row').allInnerTexts()).slice(1).map((r) => r.replace(/\s+/g, ' '));
    expect(rows).toHaveLength(30);
    const expected = Array.from({ length: 30 }, (_, i) => daysAgo(29 - i))
      .map((d) => `${d} ${opened.get(d) ?? 0} ${resolved.get(d) ?? 0}`)
      .filter((r) => !r.endsWith(' 0 0'));
    expect(rows.filter((r) => !r.endsWith(' 0 0'))).toEqual(expected);
    await page.getByText('Held backlog at the end of each day: the numbers').click();
    const held = (await page.getByRole('table', { name: 'Held backlog at the end of each day, per day' }).getByRole('row').allInnerTexts()).slice(1).map((r) => r.replace(/\s+/g, ' '));
    expect(held.filter((r) => !r.endsWith(' 0'))).toEqual([
      ...[12, 11, 10, 9].map((n) => `${daysAgo(n)} 1`),
      ...[8, 7, 6].map((n) => `${daysAgo(n)} 2`),
      ...[5, 4, 3, 2, 1, 0].map((n) => `${daysAgo(n)} ${n === 0 ? 4 : 3}`),
    ]);
  });

  it('a device\'s refused count opens its refused changes', async () => {
    await page.getByRole('link', { name: '26 refused from tablet-6: show them' }).click();
    await page.getByRole('table', { name: `Refused changes in ${DS} from tablet-6, newest first, page 1` }).waitFor();
    expect(await page.getByRole('textbox', { name: 'Device' }).inputValue()).toBe('tablet-6');
  });

  it('reads on a tablet', async () => {
    const tablet = await signIn(tokens.reviewer, TABLET);
    await tablet.goto(`${origin}/#/datasets/${DS}/devices`);
    await tablet.getByRole('img', { name: 'Conflicts opened and resolved per day' }).waitFor();
    await b.screenshot(tablet, 'devices-tablet', { fullPage: true });
    await tablet.close();
  });
});
