import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createDataset, serverEntity } from './helpers.js';

/**
 * Issue 11, "a client library people can install": `entity-sync/client` is built JavaScript
 * with .d.ts types (npm run build:client, which `npm install` runs through `prepare`). A
 * project beside the repo that depends on it (node_modules/entity-sync → the repo) imports
 * it by name in plain `node`, no loader, syncs against a started server over the socket, and
 * exits as soon as it closes the client (graphql-ws's lazy-close timer once kept it alive for
 * a minute). Its TypeScript finds the types.
 */

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
let t: TestApp;
let dir: string;
beforeAll(async () => {
  // The package as `npm install` leaves it: dist/client, built by the script prepare runs.
  await run('npm', ['run', 'build:client'], { cwd: root });
  t = await startTestApp({ flushIntervalSeconds: 0 });
  dir = await mkdtemp(join(tmpdir(), 'entity-sync-consumer-'));
  await mkdir(join(dir, 'node_modules'));
  await symlink(root, join(dir, 'node_modules', 'entity-sync'), 'dir');
  // What the consumer brings itself: a WebSocket for Node (20 has none built in), and TypeScript's view of Node.
  await symlink(join(root, 'node_modules', 'ws'), join(dir, 'node_modules', 'ws'), 'dir');
  await mkdir(join(dir, 'node_modules', '@types'));
  for (const types of ['node', 'ws']) await symlink(join(root, 'node_modules', '@types', types), join(dir, 'node_modules', '@types', types), 'dir');
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
});
afterAll(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

const SCRIPT = `
import WebSocket from 'ws';
import { createMemoryStorage, createSyncClient, SyncError, TransportError } from 'entity-sync/client';

const [url, dataset] = process.argv.slice(2);
const client = await createSyncClient({ url, deviceId: 'node-script', storage: createMemoryStorage(), webSocketImpl: WebSocket, datasets: [dataset] });
const events = [];
// A live subscription at close: close() must end it too.
client.subscribe('subscription($ds: String!) { entityChanged(dataset: $ds) { entityId version } }', { ds: dataset }, { next: (v) => events.push(v), error: (e) => events.push(String(e)), complete: () => {} });
const id = await client.create(dataset, { label: 'Oak', data: { height: 3 } });
await client.update(id, { height: 4 });
const summary = await client.sync();
console.log(JSON.stringify({ id, summary, transport: client.transport(), view: client.view(id), errors: [typeof SyncError, typeof TransportError] }));
await client.close();
console.log('closed');
`;

/** Runs the consumer's script; resolves with its output and how long it lived after printing "closed". */
function runScript(file: string, args: string[]): Promise<{ code: number | null; lines: string[]; stderr: string; afterClose: number }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [file, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let closedAt = 0;
    // A bound for a hung process, so the test fails with its output instead of timing out.
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
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

describe('entity-sync/client, installed and imported by name', () => {
  it('a plain node script imports it, syncs over the socket, and exits at once after close()', async () => {
    const ds = await createDataset(t, ['height']);
    const file = join(dir, 'sync.mjs');
    await writeFile(file, SCRIPT);
    const r = await runScript(file, [t.url, ds]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines).toHaveLength(2);
    const printed = JSON.parse(r.lines[0]!);
    expect(printed).toMatchObject({ summary: { pushed: 2, pulled: 2, pending: 0, held: 0 }, transport: 'socket', errors: ['function', 'function'] });
    expect(printed.view).toMatchObject({ id: printed.id, label: 'Oak', data: { height: 4 }, serverVersion: 2, pending: 0 });
    expect(r.lines[1]).toBe('closed');
    expect(r.afterClose).toBeLessThan(2000);
    expect(await serverEntity(t, printed.id)).toMatchObject({ label: 'Oak', version: 2, data: { height: 4 } });
  });

  it('TypeScript finds its types through the `types` condition', async () => {
    await writeFile(
      join(dir, 'check.ts'),
      `import WebSocket from 'ws';
import { createMemoryStorage, createSyncClient, type SyncClient } from 'entity-sync/client';
import { createFileStorage } from 'entity-sync/client/file-storage';
const client: SyncClient = await createSyncClient({ url: 'http://localhost/graphql', deviceId: 'd', storage: createMemoryStorage(), webSocketImpl: WebSocket });
const files = createFileStorage('/tmp/x');
export const pending: number = client.pending().length + (files ? 0 : 1);
// A wrong use must fail the check, or the types were not found (any).
// @ts-expect-error update takes values or operations, not a number
await client.update('id', 5);
`,
    );
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, files: ['check.ts'] }));
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: dir }).then(
      () => ({ ok: true, out: '' }),
      (e: { stdout: string }) => ({ ok: false, out: e.stdout }),
    );
    expect(r).toEqual({ ok: true, out: '' });
  });
});
