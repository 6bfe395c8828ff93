import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import sirv from 'sirv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, createLogger } from 'vite';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { consumerFolder, npmInstall, packClient } from '../helpers/client-package.js';
import { CHROMIUM, launchBrowser, type TestBrowser } from './browser.js';

/**
 * Issue 18 item 1 in a browser: a web field app, in a new folder outside the repository, installs
 * the packed client from its tarball (`npm install <tarball>`, nothing else), Vite bundles it for
 * the browser, and the bundle, served from the app's own origin (allowed by CORS_ORIGINS), syncs
 * with the service from the page over the browser's own WebSocket and fetch: it creates a tree,
 * pushes it, pulls another device's, and shows both.
 */

let t: TestApp;
let b: TestBrowser;
let packDir = '';
let app = '';
let server: Server;
let appOrigin = '';
let collector = '';
let admin = '';
const warnings: string[] = [];

// The field app: its page and its script, as a developer would write them.
const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><link rel="icon" href="data:," /><title>Field app</title></head>
  <body>
    <h1>Field app</h1>
    <pre aria-label="Sync result"></pre>
    <script type="module" src="./main.js"></script>
  </body>
</html>
`;
const MAIN_JS = `import { createMemoryStorage, createSyncClient } from '@entity-sync/client';

// Where the service is and the device's token: given in the URL's fragment by the test.
const { url, token } = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const out = document.querySelector('pre');
try {
  const client = await createSyncClient({ url, token, deviceId: 'tablet-9', storage: createMemoryStorage(), datasets: ['trees'] });
  const rowan = await client.create('trees', { label: 'Rowan by the path', data: { species: 'rowan' } });
  await client.update(rowan, { height: 3 });
  const summary = await client.sync();
  const result = { summary, transport: client.transport(), view: client.view(rowan), labels: client.list('trees').map((e) => e.label).sort() };
  await client.close();
  out.textContent = JSON.stringify(result);
} catch (error) {
  out.textContent = 'failed: ' + error;
}
`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  packDir = await consumerFolder('entity-sync-pack-');
  const { tarball } = await packClient(packDir);
  app = await consumerFolder('entity-sync-web-app-');
  await npmInstall(app, [tarball]);
  await writeFile(join(app, 'index.html'), INDEX_HTML);
  await writeFile(join(app, 'main.js'), MAIN_JS);
  // Vite's own logger, keeping its warnings (a Node built-in in the bundle is one: "externalized for browser compatibility").
  const logger = createLogger('warn');
  logger.warn = (msg) => void warnings.push(msg);
  logger.warnOnce = (msg) => void warnings.push(msg);
  await build({ root: app, configFile: false, logLevel: 'warn', customLogger: logger, build: { outDir: 'dist', target: 'es2022' } });
  server = createServer(sirv(join(app, 'dist')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  appOrigin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: null }, corsOrigins: [appOrigin] });
  admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  collector = (await createToken(t.database.db, { name: 'tablet 9', role: 'collector', deviceId: 'tablet-9', datasets: ['trees'] })).secret;
  await t.gqlAs(admin, `mutation { createDataset(name: "trees", properties: ["species", "height"]) { __typename } }`);
  const oak = await t.gqlAs(admin, `mutation { submitChange(change: { id: "0b9d6a3e-1c55-4f0a-9a1e-5d7c2f3b8a01", deviceId: "office-1",
    dataset: "trees", entityId: "7f3c9e2a-4b1d-4e8f-a6c5-2d9b0e1f3a77", action: CREATE, label: "Oak by the gate", data: { species: "oak" } }) { outcome } }`);
  expect(oak.data).toEqual({ submitChange: { outcome: 'APPLIED' } });
  b = await launchBrowser([appOrigin, new URL(t.url).origin]);
}, 240_000);

afterAll(async () => {
  await b?.close();
  await t?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  for (const dir of [packDir, app]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the client library bundled by Vite for a browser', () => {
  it('bundles without a Node built-in or a warning, and without the Node-only file storage', async () => {
    expect(warnings).toEqual([]);
    const assets = await readdir(join(app, 'dist', 'assets'));
    const js = (await Promise.all(assets.filter((f) => f.endsWith('.js')).map((f) => readFile(join(app, 'dist', 'assets', f), 'utf8')))).join('\n');
    // The client and graphql-ws are in the bundle; nothing of node:fs, ws or the file storage is.
    expect(js).toContain('graphql-transport-ws');
    expect(js).toContain('submitChanges');
    expect(js.match(/node:[\w/]+|createFileStorage/g) ?? []).toEqual([]);
  });

  it('syncs from the page: creates and pushes over the socket, pulls another device\'s tree, shows both', async () => {
    const page = await b.page();
    page.setDefaultTimeout(20_000);
    await page.goto(`${appOrigin}/#${encodeURIComponent(JSON.stringify({ url: t.url, token: collector }))}`);
    const shown = page.getByLabel('Sync result');
    await shown.filter({ hasText: /\S/ }).waitFor();
    const text = await shown.textContent();
    expect(text).not.toMatch(/^failed/);
    const result = JSON.parse(text!);
    expect(result).toMatchObject({
      summary: { pushed: 2, pulled: 3, pending: 0, held: 0 },
      transport: 'socket',
      view: { label: 'Rowan by the path', data: { species: 'rowan', height: 3 }, serverVersion: 2, pending: 0 },
      labels: ['Oak by the gate', 'Rowan by the path'],
    });
    const stored = await t.gqlAs(admin, 'query($id: ID!) { entity(id: $id) { label version data } }', { id: result.view.id });
    expect(stored.data).toEqual({ entity: { label: 'Rowan by the path', version: 2, data: { height: 3, species: 'rowan' } } });
    // The page reached only its own origin and the service, the socket included.
    const socket = t.url.replace(/^http/, 'ws');
    expect(b.requests).toContain(socket);
    expect(b.requests.filter((u) => !u.startsWith(appOrigin) && !u.startsWith(new URL(t.url).origin) && !u.startsWith(socket))).toEqual([]);
  });
});
