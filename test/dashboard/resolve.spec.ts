import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../src/server/static.js';
import { createToken } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { ok } from '../helpers/domain.js';
import { CHROMIUM, launchBrowser, type TestBrowser } from './browser.js';
import { scenario } from './scenario.js';

/**
 * Issue 19's reviewer verdicts in a real browser (items 7, 8 and 13), and issue 17's bad address
 * (item 12): choosing between competing values with a confirmation, the stale guard, marking many
 * resolved from the inbox, who did what in the history. Controls are found by role and name.
 */

const t = useApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0 });
const tokens = { admin: '', reviewer: '' };
const s = scenario(t, () => tokens.admin);
let b: TestBrowser;
let origin = '';
const DS = 'trees';
const PLOTS = 'plots';

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!existsSync(join(DASHBOARD_DIR, 'index.html'))) throw new Error('the dashboard is not built: npm run build:dashboard');
  tokens.admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  tokens.reviewer = (await createToken(t.database.db, { name: 'Ana (reviewer)', role: 'reviewer', datasets: [DS, PLOTS] })).secret;
  await s.d.createDataset(['species', 'height', 'health'], DS);
  await s.d.createDataset(['species', 'height', 'health'], PLOTS);
  origin = new URL(t.url).origin;
  b = await launchBrowser(origin);
});

afterAll(async () => {
  await b?.close();
});

async function signIn(token: string, hash = ''): Promise<Page> {
  const page = await b.page();
  page.setDefaultTimeout(10_000);
  await page.goto(`${origin}/${hash}`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('banner').getByText('Signed in as').waitFor();
  return page;
}

async function entity(id: string) {
  return ok(
    await t.gqlAs(
      tokens.admin,
      `query($id: ID!) { entity(id: $id) { version conflict deleted data versions { version source conflict resolved } resolutions { nodes { by note kind atVersion versionWritten } } } }`,
      { id },
    ),
  ).entity;
}

const squash = (text: string) => text.replace(/\s+/g, ' ').trim();
/** A radio's name without its time (the time is the server's clock, in the browser's format). */
const radioNames = async (page: Page, group: string) =>
  (await page.getByRole('group', { name: group }).getByRole('radio').evaluateAll((rs) => rs.map((r) => r.closest('label')!.innerText))).map((n) =>
    squash(n).replace(/ · [^·]+$/, ''),
  );

describe('resolving a record by choosing values (issue 19, item 7)', () => {
  let page: Page;
  let oak = '';
  beforeAll(async () => {
    oak = await s.oakSession(DS);
    page = await signIn(tokens.reviewer, `#/entities/${oak}`);
    await page.getByRole('heading', { level: 1, name: 'Oak by the gate' }).waitFor();
  });
  afterAll(async () => {
    await page.close();
  });

  it('shows the candidates side by side with their device and version, and writes the chosen one as a new version after confirming', async () => {
    const height = page.getByRole('group', { name: 'height' });
    await height.waitFor();
    expect(await radioNames(page, 'height')).toEqual([
      'Now 16 version 6 · device office-1',
      "Author's value 14 version 4 · device tablet-7",
      'Other write 13 version 2 · device office-1',
      'Before the conflict 12 version 1 · no device named',
      'Your value read as JSON when it is (16, true, "16"), as text otherwise',
    ]);
    expect(await height.getByRole('radio', { name: /^Now 16/ }).isChecked()).toBe(true);
    await b.screenshot(page, 'resolve-choices');

    await height.getByRole('radio', { name: /^Author's value 14/ }).check();
    await page.getByLabel('Note (optional, kept in the history)').fill("kept the tablet's height");
    await page.getByRole('button', { name: 'Resolve with these values' }).click();
    const dialog = page.getByRole('dialog', { name: 'Write version 7 and resolve?' });
    await dialog.waitFor();
    expect(squash(await dialog.innerText())).toContain("A new version from you, on top of version 6, sets: height: 16 → 14 (number) Then the conflict is marked resolved. Your note: “kept the tablet's height”");
    await b.screenshot(page, 'resolve-confirm');
    // Nothing is written before the confirmation.
    expect((await entity(oak)).version).toBe(6);
    await dialog.getByRole('button', { name: 'Write version 7 and resolve' }).click();
    await page.getByRole('status').filter({ hasText: 'Resolved: version 7 written with your choices, and the conflict is cleared.' }).waitFor();

    const e = await entity(oak);
    expect(e).toMatchObject({ version: 7, conflict: null, data: { height: 14, species: 'Quercus robur', health: 'good' } });
    expect(e.versions.at(-1)).toEqual({ version: 7, source: 'REVIEW', conflict: null, resolved: false });
    expect(e.resolutions.nodes).toEqual([{ by: 'Ana (reviewer)', note: "kept the tablet's height", kind: 'RESOLVE', atVersion: 6, versionWritten: 7 }]);

    // The new version appears in the history, with who wrote it and why (item 13).
    const v7 = page.getByRole('article', { name: 'Version 7: Changed' });
    await v7.waitFor();
    expect(squash(await v7.innerText())).toMatch(/written by a reviewer .*Written by Ana \(reviewer\) on .+, resolving the conflict seen at version 6: “kept the tablet's height”/);
    expect(squash(await page.getByRole('article', { name: 'Version 4: Changed' }).innerText())).toMatch(
      /Conflict resolved by Ana \(reviewer\) on .+, at version 6, choosing the values written as version 7: “kept the tablet's height”/,
    );
    await page.getByRole('article', { name: 'Version 7: Changed' }).evaluate((a) => a.scrollIntoView());
    await b.screenshot(page, 'resolve-history');
  });

  it('a record that moved on while the reviewer decided is refused with STALE_VERSION and a reload, never overwritten', async () => {
    await s.conflictOn(DS, oak, 1);
    const height = page.getByRole('group', { name: 'height' });
    await height.getByRole('radio', { name: /^Now \d+ version 8/ }).waitFor();
    await page.getByLabel('Your value for height').fill('15');
    expect(await height.getByRole('radio', { name: /^Your value/ }).isChecked()).toBe(true);

    // Another edit lands while the reviewer is choosing: the page says so at once.
    await s.conflictOn(DS, oak, 1);
    const moved = page.getByRole('alert').filter({ hasText: 'This record changed while you were deciding: it is now at version 9' });
    await moved.waitFor();
    // Their choices stay on screen, for version 8.
    await height.getByRole('radio', { name: /^Now \d+ version 8/ }).waitFor();

    await page.getByRole('button', { name: 'Resolve with these values' }).click();
    await page.getByRole('dialog', { name: 'Write version 9 and resolve?' }).getByRole('button', { name: 'Write version 9 and resolve' }).click();
    const refused = page.getByRole('alert').filter({ hasText: 'Not resolved: the entity has moved past the version the reviewer looked at' });
    await refused.waitFor();
    expect(squash(await refused.innerText())).toContain('it is at version 9, not 8');
    // The last verdict's "Resolved" is not left standing beside a new conflict.
    expect(await page.getByText('Resolved: version 7 written').count()).toBe(0);
    await refused.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    await b.screenshot(page, 'resolve-stale');
    expect(await entity(oak)).toMatchObject({ version: 9, conflict: 'HARD' });

    await refused.getByRole('button', { name: 'Reload the record' }).click();
    await refused.waitFor({ state: 'detached' });
    await height.getByRole('radio', { name: /^Now \d+ version 9/ }).waitFor();
    expect(await page.getByLabel('Your value for height').inputValue()).toBe('');
    // A typed value, read as JSON: 15 is a number.
    await page.getByLabel('Your value for height').fill('15');
    await page.getByRole('button', { name: 'Resolve with these values' }).click();
    await page.getByRole('dialog', { name: 'Write version 10 and resolve?' }).getByRole('button', { name: 'Write version 10 and resolve' }).click();
    await page.getByRole('status').filter({ hasText: 'Resolved: version 10 written' }).waitFor();
    expect(await entity(oak)).toMatchObject({ version: 10, conflict: null, data: { height: 15 } });
  });

  it('"Mark resolved" changes no value, after a confirmation that can be cancelled', async () => {
    const birch = await s.softBirch(DS);
    await page.goto(`${origin}/#/entities/${birch}`);
    await page.getByRole('heading', { level: 1, name: 'Birch by the pond' }).waitFor();
    // A SOFT conflict overwrote nothing: there is nothing to choose, only to mark resolved.
    expect(await page.getByRole('button', { name: 'Resolve with these values' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Mark resolved' }).click();
    const dialog = page.getByRole('dialog', { name: 'Mark the conflict on Birch by the pond resolved?' });
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain('No value changes: the record stays as it is at version 3, and its open conflict is marked resolved.');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(await entity(birch)).toMatchObject({ version: 3, conflict: 'SOFT' });

    await page.getByRole('button', { name: 'Mark resolved' }).click();
    await dialog.getByRole('button', { name: 'Mark resolved' }).click();
    await page.getByRole('status').filter({ hasText: 'Resolved: the conflict is marked resolved; no value changed.' }).waitFor();
    const e = await entity(birch);
    expect(e).toMatchObject({ version: 3, conflict: null });
    expect(e.resolutions.nodes).toEqual([{ by: 'Ana (reviewer)', note: null, kind: 'RESOLVE', atVersion: 3, versionWritten: null }]);
    // The history is read again after the verdict (no new version: the same rows, now with their activity line).
    await expect
      .poll(async () => squash(await page.getByRole('article', { name: 'Version 3: Changed' }).innerText()))
      .toMatch(/Conflict resolved by Ana \(reviewer\) on .+, at version 3, values kept as they were\./);
  });

  it('works by keyboard alone: arrows pick a value, Tab reaches the button, Enter confirms', async () => {
    const id = await s.oakSession(DS);
    await page.goto(`${origin}/#/entities/${id}`);
    const now = page.getByRole('group', { name: 'height' }).getByRole('radio', { name: /^Now 16/ });
    await now.waitFor();
    await now.focus();
    await page.keyboard.press('ArrowDown');
    expect(await page.getByRole('radio', { name: /^Author's value 14/ }).isChecked()).toBe(true);
    const focused = () => page.evaluate(() => (document.activeElement as HTMLElement).getAttribute('aria-label') ?? (document.activeElement as HTMLElement).innerText ?? '');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('Your value for height');
    await page.keyboard.press('Tab');
    await page.keyboard.type('by keyboard');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('Resolve with these values');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: 'Write version 7 and resolve?' }).waitFor();
    expect(await focused()).toBe('Write version 7 and resolve');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Resolved: version 7 written' }).waitFor();
    expect(await entity(id)).toMatchObject({ version: 7, conflict: null, data: { height: 14 } });
  });

  it('a deleted record is restored after a confirmation, and the history says who restored it (item 13)', async () => {
    const id = await s.d.create(DS, 'Elm by the road', { species: 'elm', height: 20 });
    expect(await s.d.remove(DS, id, 1, { deviceId: 'tablet-2' })).toMatchObject({ outcome: 'APPLIED', version: 2 });
    await page.goto(`${origin}/#/entities/${id}`);
    await page.getByRole('heading', { level: 1, name: 'Elm by the road' }).waitFor();
    await page.getByLabel('Note (optional, kept in the history)').fill('deleted by mistake');
    await page.getByRole('button', { name: 'Restore' }).click();
    await page.getByRole('dialog', { name: 'Restore Elm by the road?' }).getByRole('button', { name: 'Restore' }).click();
    await page.getByRole('status').filter({ hasText: 'Restored: version 3 brings the record back.' }).waitFor();
    expect(await entity(id)).toMatchObject({ version: 3, deleted: false, data: { species: 'elm', height: 20 } });
    const v3 = page.getByRole('article', { name: 'Version 3: Changed' });
    await v3.waitFor();
    expect(squash(await v3.innerText())).toMatch(/Restored by Ana \(reviewer\) on .+: “deleted by mistake”/);
  });
});

describe('the inbox: competing values, devices, a total and "Mark selected resolved" (issue 19, item 8)', () => {
  it('marks the selected records resolved in one request and shows the ones that changed since as not resolved', async () => {
    const oak = await s.oakSession(PLOTS);
    const birch = await s.softBirch(PLOTS);
    const ash = await s.d.create(PLOTS, 'Ash on the hill', { species: 'ash', height: 5 });
    await s.d.update(PLOTS, ash, 1, { height: 6 }, { deviceId: 'office-3' });
    expect(await s.d.update(PLOTS, ash, 1, { height: 7 }, { deviceId: 'tablet-5' })).toMatchObject({ conflict: 'HARD' });

    const page = await signIn(tokens.reviewer, `#/datasets/${PLOTS}/conflicts`);
    await page.getByRole('heading', { level: 1, name: `Conflict inbox: ${PLOTS}` }).waitFor();
    await page.getByRole('status').filter({ hasText: '3 open conflicts in all: 2 hard, 1 soft.' }).waitFor();
    const row = (name: string) => page.getByRole('row', { name: new RegExp(name) });
    await row('Ash on the hill').waitFor();
    const cells = async (name: string) => (await row(name).getByRole('cell').allInnerTexts()).map(squash);
    expect((await cells('Ash on the hill')).slice(2, 4)).toEqual(['height: 7 now (tablet-5) vs 6 (office-3)', 'office-3, tablet-5']);
    expect((await cells('Oak by the gate')).slice(2, 4)).toEqual(['height: 16 now (office-1) vs 14 (tablet-7) vs 13 (office-1)', 'office-1, tablet-7']);
    expect((await cells('Birch by the pond')).slice(2, 4)).toEqual(['none overwritten', '–']);

    await page.getByRole('checkbox', { name: 'Select Ash on the hill' }).check();
    await page.getByRole('checkbox', { name: 'Select Birch by the pond' }).check();
    // The ash moves on after the reviewer ticked it: its verdict must not clear the new conflict.
    await s.d.update(PLOTS, ash, 1, { height: 8 }, { deviceId: 'tablet-6' });
    await expect.poll(async () => (await cells('Ash on the hill'))[2]).toBe('height: 8 now (tablet-6) vs 7 (tablet-5) vs 6 (office-3)');
    await b.screenshot(page, 'inbox-selected');

    await page.getByRole('button', { name: 'Mark selected resolved (2)' }).click();
    const dialog = page.getByRole('dialog', { name: 'Mark 2 records resolved?' });
    await dialog.getByLabel('Note for all of them (optional)').fill('looked over on the map');
    await dialog.getByRole('button', { name: 'Mark resolved' }).click();
    await page.getByRole('status').filter({ hasText: '1 record marked resolved; 1 not: see the rows marked "Not resolved".' }).waitFor();
    await row('Birch by the pond').waitFor({ state: 'detached' });
    expect(squash(await row('Ash on the hill').getByRole('rowheader').innerText())).toBe(
      'Ash on the hill Not resolved: changed since you selected it (the entity has moved past the version the reviewer looked at (reload it and decide again): it is at version 4, not 3)',
    );
    await page.getByRole('status').filter({ hasText: '2 open conflicts in all: 2 hard, 0 soft.' }).waitFor();
    await b.screenshot(page, 'inbox-bulk-result');

    expect(await entity(birch)).toMatchObject({ conflict: null, resolutions: { nodes: [{ by: 'Ana (reviewer)', note: 'looked over on the map', kind: 'RESOLVE', atVersion: 3 }] } });
    expect(await entity(ash)).toMatchObject({ version: 4, conflict: 'HARD', resolutions: { nodes: [] } });
    expect((await entity(oak)).conflict).toBe('HARD');
    expect(await page.getByRole('button', { name: 'Mark selected resolved' }).isDisabled()).toBe(true);
    await page.close();
  });
});

describe('a bad address (issue 17, item 12)', () => {
  it('#/datasets/%/conflicts says the address is not valid instead of blanking the dashboard, and the links still work', async () => {
    const errors: string[] = [];
    const page = await signIn(tokens.reviewer);
    page.on('pageerror', (e) => void errors.push(e.message));
    await page.goto(`${origin}/#/datasets/%/conflicts`);
    await page.getByRole('heading', { level: 1, name: 'Not found: this address is not valid' }).waitFor();
    expect(await page.getByRole('alert').innerText()).toContain('The address has a part that cannot be read');
    await b.screenshot(page, 'bad-address');
    expect(errors).toEqual([]);
    await page.getByRole('link', { name: 'Back to the datasets' }).click();
    await page.getByRole('heading', { level: 1, name: 'Datasets' }).waitFor();
    await page.goto(`${origin}/#/datasets/${PLOTS}/conflicts`);
    await page.getByRole('heading', { level: 1, name: `Conflict inbox: ${PLOTS}` }).waitFor();
    await page.close();
  });
});
