import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../src/server/static.js';
import { createToken } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { domain, ok } from '../helpers/domain.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { CHROMIUM, launchBrowser, type TestBrowser } from './browser.js';

/**
 * Issue 21's dashboard view in a real browser: an administrator creates a webhook (the secret is
 * shown once), sees its deliveries (status, attempts, last error), and deletes it after
 * confirming; other roles are not offered it. Controls are found by role and accessible name.
 */

const t = useApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0, webhooks: { pollMs: 100, timeoutMs: 1000, retry: { retryForMs: 1500, backoffBaseMs: 200, maxBackoffMs: 400 } } });
const tokens = { admin: '', reviewer: '' };
let b: TestBrowser;
let origin = '';
let receiver: Receiver;
const DS = 'trees';
const asAdmin = () => ({ url: t.url, gql: (q: string, v?: Record<string, unknown>) => t.gqlAs(tokens.admin, q, v) }) as never;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!existsSync(join(DASHBOARD_DIR, 'index.html'))) throw new Error('the dashboard is not built: npm run build:dashboard');
  tokens.admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  tokens.reviewer = (await createToken(t.database.db, { name: 'reviewer', role: 'reviewer' })).secret;
  await domain(asAdmin()).createDataset(['height'], DS);
  await domain(asAdmin()).createDataset(['wingspan'], 'birds');
  receiver = await startReceiver();
  origin = new URL(t.url).origin;
  b = await launchBrowser(origin);
});
afterAll(async () => {
  await b?.close();
  await receiver?.close();
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

describe('webhooks in the dashboard', () => {
  it('an admin creates one (secret shown once), sees its deliveries, a refused URL, and deletes one after confirming', async () => {
    const page = await signIn(tokens.admin);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    await page.getByText('No webhooks yet. Create one below.').waitFor();

    // A URL the service refuses: its sentence, and nothing made.
    await page.getByLabel('Endpoint URL').fill('ftp://files.example.org/hook');
    await page.getByRole('button', { name: 'Create webhook' }).click();
    expect(await page.getByRole('alert').innerText()).toBe('a webhook URL must be an absolute http(s) URL without credentials or fragment: only http and https URLs are sent to, not ftp:');

    await page.getByLabel('Endpoint URL').fill(receiver.url);
    await page.getByLabel('Only these:').check();
    await page.getByRole('group', { name: 'Datasets' }).getByLabel(DS).check();
    await page.getByLabel('Conflict detected').uncheck();
    await page.getByLabel('Record changed').check();
    await page.getByLabel('Change refused').check();
    await page.getByRole('button', { name: 'Create webhook' }).click();
    const shown = page.getByRole('region', { name: `Signing secret for ${receiver.url}` });
    await shown.waitFor();
    const secret = await shown.getByLabel('Signing secret').innerText();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    receiver.secret = secret;
    await b.screenshot(page, 'webhook-secret');
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await shown.waitFor({ state: 'detached' });

    // Changes through the API reach the receiver, signed with that secret.
    const d = domain(asAdmin());
    const id = await d.create(DS, 'Oak', { height: 1 });
    expect(await d.update(DS, id, 1, { colour: 'red' })).toMatchObject({ outcome: 'REJECTED' });
    const got = await receiver.waitFor(2);
    expect(got.map((r) => [r.body.type, r.verified])).toEqual([
      ['entityChanged', true],
      ['changeRejected', true],
    ]);
    // A second webhook to where nothing listens: it fails within its (short) retry time.
    ok(await t.gqlAs(tokens.admin, 'mutation { createWebhook(url: "http://127.0.0.1:9/nothing", datasets: ["birds"], events: [ENTITY_CHANGED]) { __typename } }'));
    await d.create('birds', 'Robin', { wingspan: 20 });

    const table = page.getByRole('table', { name: 'Webhooks, oldest first, with their deliveries' });
    await table.getByRole('link', { name: `Deliveries to ${receiver.url}: 2 delivered, 0 pending, 0 failed` }).waitFor({ timeout: 15_000 });
    await table.getByRole('link', { name: 'Deliveries to http://127.0.0.1:9/nothing: 0 delivered, 0 pending, 1 failed' }).waitFor({ timeout: 15_000 });
    expect(await table.getByRole('row').allInnerTexts()).toHaveLength(3);
    // The secret is never shown again.
    expect(await page.content()).not.toContain(secret);
    await b.screenshot(page, 'webhooks', { fullPage: true });

    await table.getByRole('link', { name: /^Deliveries to http:\/\/127\.0\.0\.1:9\/nothing/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Deliveries to http://127.0.0.1:9/nothing' }).waitFor();
    const failedRow = page.getByRole('table', { name: 'Deliveries, newest first' }).getByRole('row').nth(1);
    expect((await failedRow.innerText()).replace(/\s+/g, ' ')).toMatch(/^Record changed [0-9a-f]{8} birds: [0-9a-f]{8} Failed \d+ connect ECONNREFUSED 127\.0\.0\.1:9 /);
    await page.getByLabel('Pending only').check();
    await page.getByText('No deliveries pending.').waitFor();
    await page.getByLabel('Failed only').check();
    await page.getByRole('table', { name: 'Deliveries, newest first' }).waitFor();
    await b.screenshot(page, 'webhook-deliveries');

    // Delete, after a confirmation that can be cancelled.
    await page.getByRole('link', { name: 'Webhooks' }).first().click();
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    const row = page.getByRole('row', { name: new RegExp(receiver.url) });
    await row.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog', { name: `Delete the webhook to ${receiver.url}?` });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await row.count()).toBe(1);
    await row.getByRole('button', { name: 'Delete' }).click();
    await dialog.getByRole('button', { name: 'Delete webhook' }).click();
    await page.getByRole('status').filter({ hasText: `The webhook to ${receiver.url} was deleted.` }).waitFor();
    await row.waitFor({ state: 'detached' });
    expect(ok(await t.gqlAs(tokens.admin, '{ webhooks { url } }')).webhooks).toEqual([{ url: 'http://127.0.0.1:9/nothing' }]);
    await page.close();
  });

  it('a reviewer is not offered webhooks', async () => {
    const page = await signIn(tokens.reviewer);
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).count()).toBe(0);
    await page.goto(`${origin}/#/webhooks`);
    await page.getByRole('heading', { level: 1, name: 'Nothing here' }).waitFor();
    await page.close();
  });
});
