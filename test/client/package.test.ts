import { execFile, spawn } from 'node:child_process';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { CLIENT_DIR, consumerFolder, dryRunFiles, npmInstall, packClient } from '../helpers/client-package.js';
import { serverEntity } from './helpers.js';

/**
 * Issue 18 item 1, the client library as a field app installs it: `npm pack` of packages/client
 * (its prepack builds dist/), the tarball installed with `npm install <tarball>` in a new folder
 * under the OS's temporary folder with nothing else, and used there by plain `node`: the quick
 * start of the package's README as written, then a socket client with `ws` added. Its
 * TypeScript types are found the same way. The browser bundle is test/dashboard/client-bundle.spec.ts's.
 */

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
let t: TestApp;
let packDir = '';
let app = '';
let tarball = '';
let packed: string[] = [];
let collector = '';
// The socket test's own folder, token and dataset: the tests of this file run in any order (CI
// shuffles them), and neither ws in the folder nor its records may change what the others see.
let wsApp = '';
let hedgeCollector = '';

beforeAll(async () => {
  // Requests without a token may only read (serverEntity): the scripts must send their token to write.
  t = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: 'reviewer' } });
  const admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  collector = (await createToken(t.database.db, { name: 'tablet 7', role: 'collector', deviceId: 'tablet-7', datasets: ['trees'] })).secret;
  await t.gqlAs(admin, `mutation { createDataset(name: "trees", properties: ["species", "height"]) { __typename } }`);
  await t.gqlAs(admin, `mutation { createDataset(name: "hedges", properties: ["species", "height"]) { __typename } }`);
  hedgeCollector = (await createToken(t.database.db, { name: 'tablet 8', role: 'collector', deviceId: 'tablet-8', datasets: ['hedges'] })).secret;
  // Another device's tree, for the quick start to pull.
  const birch = await t.gqlAs(admin, `mutation { submitChange(change: { id: "0b9d6a3e-1c55-4f0a-9a1e-5d7c2f3b8a01", deviceId: "office-1",
    dataset: "trees", entityId: "7f3c9e2a-4b1d-4e8f-a6c5-2d9b0e1f3a77", action: CREATE, label: "Birch by the pond", data: { species: "birch" } }) { outcome } }`);
  expect(birch.data).toEqual({ submitChange: { outcome: 'APPLIED' } });
  packDir = await consumerFolder('entity-sync-pack-');
  ({ tarball, files: packed } = await packClient(packDir));
  app = await consumerFolder('entity-sync-field-app-');
  await npmInstall(app, [tarball]);
  wsApp = await consumerFolder('entity-sync-field-app-ws-');
}, 240_000);

afterAll(async () => {
  await t?.close();
  for (const dir of [packDir, app, wsApp]) if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `node file args` in the app folder; its exit code, stdout lines, stderr, and how long it lived after printing "closed". */
function node(file: string, args: string[], env: Record<string, string> = {}, cwd = app): Promise<{ code: number | null; lines: string[]; stderr: string; afterClose: number }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [file, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let closedAt = 0;
    // A bound for a hung process, so the test fails with its output instead of timing out.
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!closedAt && out.split('\n').includes('closed')) closedAt = Date.now();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('exit', (code) => {
      clearTimeout(kill);
      done({ code, lines: out.trim().split('\n'), stderr, afterClose: closedAt ? Date.now() - closedAt : Infinity });
    });
  });
}

describe('the packed client', () => {
  it('npm pack --dry-run lists only the built files, the README, the licence and package.json', async () => {
    const files = await dryRunFiles();
    expect(files).toEqual(packed);
    expect(files.filter((f) => !/^(dist\/[\w-]+\.(js|d\.ts)|README\.md|LICENSE|package\.json)$/.test(f))).toEqual([]);
    const manifest = JSON.parse(await readFile(join(CLIENT_DIR, 'package.json'), 'utf8'));
    const targets = Object.values(manifest.exports as Record<string, string | Record<string, string>>).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e)));
    // Every file an export names is in the tarball, and every built file is there.
    expect(targets.map((p) => p.replace(/^\.\//, '')).filter((p) => !files.includes(p))).toEqual([]);
    expect((await readdir(join(CLIENT_DIR, 'dist'))).map((f) => `dist/${f}`).filter((f) => !files.includes(f))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/file-storage.js', 'dist/file-storage.d.ts']));
  });

  it('installs alone from its tarball: graphql-ws (and its peer graphql) from the registry, nothing of the service', async () => {
    const lock = JSON.parse(await readFile(join(app, 'package-lock.json'), 'utf8'));
    const installed = Object.keys(lock.packages as Record<string, unknown>).filter((p) => p !== '').map((p) => p.replace(/^node_modules\//, '')).sort();
    expect(installed).toEqual(['@entity-sync/client', 'graphql', 'graphql-ws']);
    const manifest = JSON.parse(await readFile(join(app, 'node_modules/@entity-sync/client/package.json'), 'utf8'));
    expect(manifest).toMatchObject({ name: '@entity-sync/client', type: 'module', dependencies: { 'graphql-ws': expect.any(String) } });
    expect(Object.keys(manifest.dependencies)).toEqual(['graphql-ws']);
  });

  it('its main entry imports nothing of Node, only graphql-ws; the file storage entry imports node:fs', async () => {
    const dist = join(app, 'node_modules/@entity-sync/client/dist');
    /** The packages a built file imports, following its imports of other built files (shared chunks). */
    const packagesOf = async (file: string, seen = new Set<string>()): Promise<string[]> => {
      if (seen.has(file)) return [];
      seen.add(file);
      const code = await readFile(join(dist, file), 'utf8');
      const specifiers = [...code.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)|(?:^|\n)\s*import\s*["']([^"']+)["']/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
      const nested = await Promise.all(specifiers.filter((x) => x.startsWith('./')).map((x) => packagesOf(x.slice(2), seen)));
      return [...new Set([...specifiers.filter((x) => !x.startsWith('./')), ...nested.flat()])].sort();
    };
    expect(await packagesOf('index.js')).toEqual(['graphql-ws']);
    expect(await packagesOf('file-storage.js')).toEqual(['node:fs/promises', 'node:path']);
  });

  it("runs its README's quick start as written in plain node: creates, syncs over HTTP (Node 20 has no WebSocket), pulls another device's entity", async () => {
    const readme = await readFile(join(app, 'node_modules/@entity-sync/client/README.md'), 'utf8');
    const code = /## Quick start[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(code).toContain("from '@entity-sync/client'");
    const swapped = code!.replace("'http://127.0.0.1:4000/graphql'", JSON.stringify(t.url));
    expect(swapped).not.toContain('4000');
    await writeFile(join(app, 'app.mjs'), swapped);
    const r = await node('app.mjs', [], { ENTITY_SYNC_TOKEN: collector });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // console.log's rendering of the three values, one after the other (an object may span lines).
    const out = r.lines.join('\n');
    expect(out.startsWith('{ pushed: 2, pulled: 3, pending: 0, held: 0 }\n')).toBe(true);
    const view = /\n(\{[\s\S]*?\})\n\[/.exec(out)?.[1] ?? '';
    const id = /id: '([0-9a-f-]{36})'/.exec(view)?.[1];
    expect(view.replace(/\s+/g, ' ')).toBe(`{ id: '${id}', localId: null, dataset: 'trees', label: 'Oak by the gate', data: { height: 13, species: 'oak' }, deleted: false, serverVersion: 2, pending: 0 }`);
    const labels = out.slice(out.lastIndexOf('\n[') + 1).replace(/\s+/g, ' ');
    expect(["[ 'Birch by the pond', 'Oak by the gate' ]", "[ 'Oak by the gate', 'Birch by the pond' ]"]).toContain(labels);
    expect(await serverEntity(t, id!)).toMatchObject({ label: 'Oak by the gate', version: 2, data: { species: 'oak', height: 13 } });
  });

  it('with ws added, a node script syncs over the socket, and exits at once after close()', async () => {
    await npmInstall(wsApp, [tarball, 'ws']);
    await writeFile(
      join(wsApp, 'socket.mjs'),
      `import WebSocket from 'ws';
import { createMemoryStorage, createSyncClient, SyncError, TransportError } from '@entity-sync/client';

const [url, token] = process.argv.slice(2);
const client = await createSyncClient({ url, token, deviceId: 'tablet-8', storage: createMemoryStorage(), webSocketImpl: WebSocket, datasets: ['hedges'] });
const events = [];
// A live subscription at close: close() must end it too.
client.subscribe('subscription { entityChanged(dataset: "hedges") { entityId version } }', {}, { next: (v) => events.push(v), error: (e) => events.push(String(e)), complete: () => {} });
const id = await client.create('hedges', { label: 'Ash', data: { height: 3 } });
await client.update(id, { height: 4 });
const summary = await client.sync();
console.log(JSON.stringify({ id, summary, transport: client.transport(), view: client.view(id), errors: [typeof SyncError, typeof TransportError] }));
await client.close();
console.log('closed');
`,
    );
    const r = await node('socket.mjs', [t.url, hedgeCollector], {}, wsApp);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines).toHaveLength(2);
    const printed = JSON.parse(r.lines[0]!);
    expect(printed).toMatchObject({ summary: { pushed: 2, pending: 0, held: 0 }, transport: 'socket', errors: ['function', 'function'] });
    expect(printed.view).toMatchObject({ id: printed.id, label: 'Ash', data: { height: 4 }, serverVersion: 2, pending: 0 });
    expect(r.lines[1]).toBe('closed');
    expect(r.afterClose).toBeLessThan(2000);
    expect(await serverEntity(t, printed.id)).toMatchObject({ label: 'Ash', version: 2, data: { height: 4 } });
  });

  it('TypeScript finds its types through the `types` condition, for a browser app and for Node, without @types/node', async () => {
    await writeFile(
      join(app, 'check.ts'),
      `import { createMemoryStorage, createSyncClient, type SyncClient, type StorageAdapter } from '@entity-sync/client';
import { createFileStorage } from '@entity-sync/client/file-storage';
const client: SyncClient = await createSyncClient({ url: 'http://localhost/graphql', deviceId: 'd', storage: createMemoryStorage() });
const files: StorageAdapter = createFileStorage('/tmp/x');
export const pending: number = client.pending().length + (files ? 0 : 1);
// A wrong use must fail the check, or the types were not found (any).
// @ts-expect-error update takes values or operations, not a number
await client.update('id', 5);
`,
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const base = { target: 'ES2022', strict: true, noEmit: true, types: [], lib: ['ES2022', 'DOM'] };
    for (const resolution of [{ module: 'NodeNext', moduleResolution: 'NodeNext' }, { module: 'ESNext', moduleResolution: 'Bundler' }]) {
      await writeFile(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...base, ...resolution }, files: ['check.ts'] }));
      const r = await run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json')], { cwd: app }).then(
        () => ({ ok: true, out: '' }),
        (e: { stdout: string }) => ({ ok: false, out: e.stdout }),
      );
      expect({ resolution: resolution.moduleResolution, ...r }).toEqual({ resolution: resolution.moduleResolution, ok: true, out: '' });
    }
    // Two runs of tsc: about 10 s on an idle machine, several times that on a loaded one.
  }, 180_000);
});
