import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../src/server/static.js';
import { createToken } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { ok } from '../helpers/domain.js';
import { audit, unreachableByTab } from './a11y.js';
import { CHROMIUM, launchBrowser, type TestBrowser } from './browser.js';
import { scenario } from './scenario.js';

/**
 * Issue 19, item 14: every view of the dashboard, in the states a reviewer meets (rows, an open
 * conflict, a confirmation open, a refusal), audited by axe-core in the browser; a serious or
 * critical violation fails the view. The views with forms are also walked with Tab alone.
 * A view added to the dashboard gets a line in VIEWS.
 */

const t = useApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0, webhooks: { pollMs: 100, timeoutMs: 1000, retry: { retryForMs: 500, backoffBaseMs: 100, maxBackoffMs: 200 } } });
const tokens = { admin: '', reviewer: '', collector: '' };
const s = scenario(t, () => tokens.admin);
let b: TestBrowser;
let origin = '';
const DS = 'trees';
const ids = { oak: '', birch: '', elm: '', webhook: '' };

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!existsSync(join(DASHBOARD_DIR, 'index.html'))) throw new Error('the dashboard is not built: npm run build:dashboard');
  tokens.admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  tokens.reviewer = (await createToken(t.database.db, { name: 'reviewer', role: 'reviewer', datasets: [DS] })).secret;
  tokens.collector = (await createToken(t.database.db, { name: 'tablet 7', role: 'collector', deviceId: 'tablet-7', datasets: [DS] })).secret;
  await s.d.createDataset(['species', 'height', 'health'], DS);
  ids.webhook = ok(
    await t.gqlAs(tokens.admin, 'mutation { createWebhook(url: "http://127.0.0.1:9/nothing", events: [ENTITY_CHANGED]) { ... on MutationCreateWebhookSuccess { data { webhook { id } } } } }'),
  ).createWebhook.data.webhook.id;
  ids.birch = await s.softBirch(DS);
  ids.oak = await s.oakSession(DS);
  ids.elm = await s.d.create(DS, 'Elm by the road', { species: 'elm' });
  await s.d.remove(DS, ids.elm, 1);
  await s.heldChange(DS, ids.birch, 3);
  expect(await s.d.update(DS, ids.oak, 6, { colour: 'red' }, { deviceId: 'tablet-5' })).toMatchObject({ outcome: 'REJECTED' });
  origin = new URL(t.url).origin;
  b = await launchBrowser(origin);
});

afterAll(async () => {
  await b?.close();
});

async function open(token: string | null, hash: string | (() => string), heading: string | RegExp): Promise<Page> {
  const page = await b.page();
  page.setDefaultTimeout(10_000);
  await page.goto(`${origin}/${typeof hash === 'string' ? hash : hash()}`);
  if (token) {
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  return page;
}

interface View {
  name: string;
  token: () => string | null;
  /** A function where it names a record made in beforeAll. */
  hash: string | (() => string);
  heading: string | RegExp;
  /** What must be on screen before the audit (the view's data, not only its frame). */
  ready?: (page: Page) => Promise<void>;
  /** Brings the view into a further state to audit too (a dialog open, a refusal shown). */
  then?: (page: Page) => Promise<void>;
}

const VIEWS: View[] = [
  { name: 'sign-in', token: () => null, hash: '', heading: 'entity-sync dashboard' },
  {
    name: 'sign-in, refused',
    token: () => null,
    hash: '',
    heading: 'entity-sync dashboard',
    then: async (page) => {
      await page.getByLabel('API token').fill('est_not-a-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
    },
  },
  { name: 'datasets (admin)', token: () => tokens.admin, hash: '', heading: 'Datasets', ready: (p) => p.getByRole('link', { name: /Conflict inbox of trees/ }).waitFor() },
  { name: 'datasets (collector)', token: () => tokens.collector, hash: '', heading: 'Datasets', ready: (p) => p.getByText('This is a collector token').waitFor() },
  {
    name: 'conflict inbox',
    token: () => tokens.reviewer,
    hash: `#/datasets/${DS}/conflicts`,
    heading: `Conflict inbox: ${DS}`,
    ready: (p) => p.getByRole('link', { name: 'Oak by the gate' }).waitFor(),
    then: async (page) => {
      await page.getByRole('checkbox', { name: 'Select Oak by the gate' }).check();
      await page.getByRole('button', { name: 'Mark selected resolved (1)' }).click();
      await page.getByRole('dialog', { name: 'Mark 1 record resolved?' }).waitFor();
    },
  },
  {
    name: 'record with a hard conflict, and its history (timeline)',
    token: () => tokens.reviewer,
    hash: () => `#/entities/${ids.oak}`,
    heading: 'Oak by the gate',
    ready: (p) => p.getByRole('article', { name: 'Version 6: Changed' }).waitFor(),
    then: async (page) => {
      await page.getByRole('radio', { name: /^Author's value 14/ }).check();
      await page.getByRole('button', { name: 'Resolve with these values' }).click();
      await page.getByRole('dialog', { name: 'Write version 7 and resolve?' }).waitFor();
    },
  },
  {
    name: 'record moved on while deciding',
    token: () => tokens.reviewer,
    hash: () => `#/entities/${ids.birch}`,
    heading: 'Birch by the pond',
    ready: (p) => p.getByRole('button', { name: 'Mark resolved' }).waitFor(),
    then: async (page) => {
      await page.getByLabel('Note (optional, kept in the history)').fill('checked');
      await s.conflictOn(DS, ids.birch, 1);
      await page.getByRole('alert').filter({ hasText: 'This record changed while you were deciding' }).waitFor();
    },
  },
  { name: 'deleted record', token: () => tokens.reviewer, hash: () => `#/entities/${ids.elm}`, heading: 'Elm by the road', ready: (p) => p.getByRole('button', { name: 'Restore' }).waitFor() },
  { name: 'held backlog', token: () => tokens.admin, hash: `#/datasets/${DS}/backlog`, heading: `Held backlog: ${DS}`, ready: (p) => p.getByRole('button', { name: 'Force now' }).waitFor() },
  { name: 'records', token: () => tokens.reviewer, hash: `#/datasets/${DS}/records`, heading: `Records: ${DS}`, ready: (p) => p.getByRole('table', { name: `Records in ${DS}, page 1` }).waitFor() },
  {
    name: 'refused changes',
    token: () => tokens.reviewer,
    hash: `#/datasets/${DS}/rejected`,
    heading: `Refused changes: ${DS}`,
    ready: (p) => p.getByRole('table', { name: `Refused changes in ${DS}, newest first, page 1` }).waitFor(),
  },
  {
    name: 'devices and activity charts',
    token: () => tokens.reviewer,
    hash: `#/datasets/${DS}/devices`,
    heading: `Devices and activity: ${DS}`,
    ready: async (p) => {
      await p.getByRole('table', { name: `Devices of ${DS}, by id` }).waitFor();
      await p.getByRole('img', { name: 'Conflicts opened and resolved per day' }).waitFor();
    },
  },
  { name: 'tokens', token: () => tokens.admin, hash: '#/tokens', heading: 'Tokens', ready: (p) => p.getByRole('row', { name: /tablet 7/ }).waitFor() },
  {
    name: 'webhooks',
    token: () => tokens.admin,
    hash: '#/webhooks',
    heading: 'Webhooks',
    ready: (p) => p.getByRole('button', { name: 'Delete' }).waitFor(),
    then: async (page) => {
      await page.getByRole('button', { name: 'Delete' }).click();
      await page.getByRole('dialog').waitFor();
    },
  },
  { name: 'webhook deliveries', token: () => tokens.admin, hash: () => `#/webhooks/${ids.webhook}`, heading: 'Deliveries to http://127.0.0.1:9/nothing', ready: (p) => p.getByRole('row').nth(1).waitFor() },
  { name: 'nothing here', token: () => tokens.reviewer, hash: '#/no/such/view', heading: 'Nothing here' },
  { name: 'bad address', token: () => tokens.reviewer, hash: '#/datasets/%/conflicts', heading: 'Not found: this address is not valid' },
];

describe('axe-core finds no serious or critical violation', () => {
  it('(the audit itself: a nameless button and a field without a label are caught)', async () => {
    const page = await open(tokens.admin, '', 'Datasets');
    await page.evaluate(() => {
      document.querySelector('main')!.insertAdjacentHTML('beforeend', '<button type="button"></button><input type="text">');
    });
    expect((await audit(page)).map((v) => [v.id, v.impact])).toEqual([
      ['button-name', 'critical'],
      ['label', 'critical'],
    ]);
    await page.close();
  });

  for (const view of VIEWS) {
    it(view.name, async () => {
      const page = await open(view.token(), view.hash, view.heading);
      await view.ready?.(page);
      expect(await audit(page)).toEqual([]);
      if (view.then) {
        await view.then(page);
        expect(await audit(page)).toEqual([]);
      }
      await page.close();
    });
  }
});

describe('the views with forms work by keyboard: Tab reaches every control', () => {
  it('(the walk itself: a button taken out of the Tab order is reported)', async () => {
    const page = await open(tokens.admin, '', 'Datasets');
    await page.evaluate(() => {
      document.querySelector('main')!.insertAdjacentHTML('beforeend', '<button type="button" tabindex="-1">Out of reach</button>');
    });
    expect(await unreachableByTab(page)).toEqual(['button "Out of reach"']);
    await page.close();
  });

  for (const view of VIEWS.filter((v) => ['conflict inbox', 'record with a hard conflict, and its history (timeline)', 'webhooks', 'sign-in'].includes(v.name))) {
    it(view.name, async () => {
      const page = await open(view.token(), view.hash, view.heading);
      await view.ready?.(page);
      expect(await unreachableByTab(page)).toEqual([]);
      await page.close();
    });
  }
});
