import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { domain, ok } from '../helpers/domain.js';
import { waitUntil } from '../helpers/live.js';

/**
 * README "Webhooks": the receiver snippet is extracted from README.md and run as it stands
 * (its port and import path swapped, its server exported so the test can close it), against a
 * started service: it verifies and prints each event once, and refuses a forged request.
 */

let t: TestApp;
let dir: string;
let server: Server | undefined;
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0, webhooks: { pollMs: 100, timeoutMs: 2000 } });
  dir = await mkdtemp(join(tmpdir(), 'entity-sync-readme-webhook-'));
});
afterAll(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

it('the README receiver verifies, prints each event once, and refuses a forged request', async () => {
  const readme = await readFile(resolve(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Webhooks'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!code) throw new Error('no ts block in the README section "Webhooks"');
  const port = await freePort();
  const swapped = code
    .replace(`from 'standardwebhooks'`, `from ${JSON.stringify(createRequire(import.meta.url).resolve('standardwebhooks'))}`)
    .replace('createServer(async', 'export const server = createServer(async')
    .replace('.listen(8080)', `.listen(${port}, '127.0.0.1')`);
  expect(swapped).toContain(`listen(${port}`);
  const file = join(dir, 'receiver.ts');
  await writeFile(file, swapped);

  const d = domain(t);
  const ds = await d.createDataset(['height', 'species']);
  const made = ok(await t.gql(`mutation($url: String!, $ds: [String!]) { createWebhook(url: $url, datasets: $ds, events: [CONFLICT_DETECTED]) {
    ... on MutationCreateWebhookSuccess { data { secret } } } }`, { url: `http://127.0.0.1:${port}/`, ds: [ds] })).createWebhook.data;
  process.env.ENTITY_SYNC_WEBHOOK_SECRET = made.secret;
  const printed: unknown[][] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args));
  try {
    server = ((await import(/* @vite-ignore */ file)) as { server: Server }).server;
    await new Promise((r) => (server!.listening ? r(undefined) : server!.once('listening', r)));
    const id = await d.create(ds, 'Oak', { height: 1 });
    await d.update(ds, id, 1, { height: 2 });
    await d.update(ds, id, 1, { species: 'oak' });
    await waitUntil(() => printed.length >= 1, 'the receiver to print the event', 15_000);
    expect(printed).toEqual([['conflictDetected', { dataset: ds, entityId: id, version: 3, conflict: 'SOFT', conflictingProperties: [] }]]);

    // A forged signature is refused; a replay of a real request is answered but not acted on again.
    const body = JSON.stringify({ type: 'conflictDetected', timestamp: new Date().toISOString(), data: { forged: true } });
    const send = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const now = new Date();
    const wrongKey = new Webhook(`whsec_${Buffer.from('not the secret').toString('base64')}`);
    expect((await send({ 'webhook-id': 'forged', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': wrongKey.sign('forged', now, body) })).status).toBe(401);
    const right = new Webhook(made.secret);
    const replay = { 'webhook-id': 'same-id', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': right.sign('same-id', now, body) };
    expect((await send(replay)).status).toBe(204);
    expect((await send(replay)).status).toBe(204);
    expect(printed).toHaveLength(2);
  } finally {
    log.mockRestore();
  }
});
