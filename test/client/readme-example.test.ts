import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { trackSubscriptions, waitUntil } from '../helpers/live.js';
import { serverEntity } from './helpers.js';

/**
 * README "Client library": the example is not mirrored but extracted from README.md and run
 * as it stands, against a started server. Only three things are swapped: its `url` for the
 * test server's, and the two import specifiers for absolute paths (the extracted file lives in
 * a temp folder; the source, so this runs what is edited: the built package, imported by name,
 * is package.test.ts's, installed from its tarball). Its token comes from ENTITY_SYNC_TOKEN, as the README says.
 * What it prints is compared with the comments in the README.
 */

let t: TestApp;
let dir: string;
beforeAll(async () => {
  // Anonymous requests may only read: the example must send its token to create and submit.
  t = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: 'reviewer' } });
  process.env.ENTITY_SYNC_TOKEN = (await createToken(t.database.db, { name: 'readme', role: 'admin' })).secret;
  dir = await mkdtemp(join(tmpdir(), 'entity-sync-readme-'));
});
afterAll(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

async function extractExample(): Promise<string> {
  const readme = await readFile(resolve(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Client library'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!code) throw new Error('no ts block in the README section "Client library"');
  return code;
}

describe('README: the client library example', () => {
  it('runs as written and prints what its comments say', async () => {
    const code = await extractExample();
    const require = createRequire(import.meta.url);
    const swapped = code
      .replace(/const url = '[^']*';/, `const url = ${JSON.stringify(t.url)};`)
      .replace(`from '@entity-sync/client'`, `from ${JSON.stringify(resolve(import.meta.dirname, '../../packages/client/src/sync-client.ts'))}`)
      .replace(`from 'ws'`, `from ${JSON.stringify(require.resolve('ws').replace(/index\.js$/, 'wrapper.mjs'))}`);
    expect(swapped).not.toContain('4000');
    const file = join(dir, 'example.ts');
    await writeFile(file, swapped);

    // Counts the server's live subscriptions, to see the example unsubscribe at the end.
    const tracker = trackSubscriptions(t.app.bus);
    const printed: unknown[][] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args));
    try {
      await import(/* @vite-ignore */ file);
    } finally {
      log.mockRestore();
    }

    const text = printed.map((args) => args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    const view = JSON.parse(text[0]!);
    const oak = view.id as string;
    expect(view).toEqual({ id: oak, localId: null, dataset: 'trees', label: 'Oak by the gate', data: { species: 'oak', height: 13, health: 'good' }, deleted: false, serverVersion: null, pending: 3 });
    expect(JSON.parse(text[1]!)).toEqual({ pushed: 3, pulled: 3, pending: 0, held: 0 });
    expect(text).toContain('HARD conflict on height at version 5');
    expect(text).toContain(`office sees ${JSON.stringify({ entityId: oak, version: 5, type: 'HARD', conflictingProperties: ['height'] })}`);
    const data = { species: 'oak', height: 15, health: 'fair' };
    const printedData = text.slice(-2).map((l) => JSON.parse(l));
    expect(printedData).toEqual([data, data]);
    expect(text.filter((l) => l.startsWith('rejected') || l.startsWith('now over'))).toEqual([]);
    expect((await serverEntity(t, oak))!).toMatchObject({ label: 'Oak by the gate', data, version: 5, conflict: 'HARD' });
    await waitUntil(() => tracker.active() === 0, 'the example to unsubscribe');
  });
});
