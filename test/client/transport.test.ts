import { connect, createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { TransportError } from '../../packages/client/src/errors.js';
import type { SyncClient } from '../../packages/client/src/sync-client.js';
import { buildApp, type App } from '../../src/server/app.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createDataset, newClient, record, serverEntity, until } from './helpers.js';

/**
 * Transport (DESIGN "Transport", issue 6): socket first with an ack deadline per batch; a cut
 * or silent socket sends the same batch again over HTTP, where the change ids make it land
 * once; the socket comes back when it answers; a server that is down and back loses nothing.
 */

let t: TestApp;
const clients: SyncClient[] = [];
/** The server side of every socket (the raw TCP socket the HTTP server upgraded). */
let serverSockets: Socket[] = [];
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0 });
  t.app.server.on('upgrade', (_req, socket: Socket) => serverSockets.push(socket));
});
afterAll(async () => {
  for (const c of clients) await c.close();
  for (const s of serverSockets) s.resume();
  await t.close();
});

/** A `ws` client socket that calls `onBatch` just before it sends a submitChanges batch. */
function spySocket(onBatch: () => void, sent: string[]) {
  return class extends WebSocket {
    override send(data: any, ...rest: any[]): void {
      if (String(data).includes('submitChanges')) {
        sent.push(String(data));
        onBatch();
      }
      (super.send as (...a: unknown[]) => void)(data, ...rest);
    }
  };
}

async function treeWithClient(opts: { onBatch?: () => void; ackTimeoutMs?: number } = {}) {
  const ds = await createDataset(t, ['height', 'note']);
  const sent: string[] = [];
  let onBatch = () => {};
  const client = await newClient(t.url, { datasets: [ds], webSocketImpl: spySocket(() => onBatch(), sent), ...(opts.ackTimeoutMs ? { ackTimeoutMs: opts.ackTimeoutMs } : {}) });
  clients.push(client);
  const events = record(client);
  const id = await client.create(ds, { label: 'Oak', data: { height: 1 } });
  await client.sync();
  expect(client.transport()).toBe('socket');
  expect(sent).toHaveLength(1);
  return { ds, id, client, events, sent, setOnBatch: (fn: () => void) => (onBatch = fn) };
}

/** How many changes this server has answered DUPLICATE (its /metrics counter). */
async function duplicatesCounted(): Promise<number> {
  const text = await (await fetch(t.url.replace(/\/graphql$/, '/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith('entity_sync_changes_total{outcome="DUPLICATE"}'));
  return Number(line?.split(' ')[1] ?? 0);
}

/**
 * A TCP front door on a port of its own, forwarding to whichever server is up (`to(port)`);
 * while none is (`to(null)`), it cuts each connection at once. The port stays this test's the
 * whole time, so nothing else can take it while the server is down and back.
 */
async function frontDoor() {
  let target: number | null = null;
  const open = new Set<Socket>();
  const server = createServer((inbound) => {
    open.add(inbound);
    inbound.on('close', () => open.delete(inbound));
    inbound.on('error', () => {});
    if (target === null) return void inbound.destroy();
    const outbound = connect(target, '127.0.0.1');
    outbound.on('error', () => inbound.destroy());
    outbound.on('close', () => inbound.destroy());
    inbound.on('close', () => outbound.destroy());
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    to(serverUrl: string | null) {
      target = serverUrl === null ? null : Number(new URL(serverUrl).port);
      if (target === null) for (const s of open) s.destroy();
    },
    close: () => new Promise<void>((resolve) => (open.forEach((s) => s.destroy()), server.close(() => resolve()))),
  };
}

async function expectEachOnce(id: string, changeIds: string[]) {
  const e = (await serverEntity(t, id))!;
  expect(e.versions.map((v) => v.changeId).slice(1)).toEqual(changeIds);
  return e;
}

describe('socket first, HTTP when it fails', () => {
  it('a socket the server cuts as the batch arrives: the batch lands once over HTTP, then the socket returns', async () => {
    const { id, client, events, sent, setOnBatch } = await treeWithClient();
    const logged = vi.spyOn(console, 'error');
    const ids = [await client.update(id, { height: 2 }), await client.update(id, { note: 'a' }), await client.update(id, { height: 3 })];
    // The server reads the frame, then drops the connection before it can answer.
    setOnBatch(() => {
      setOnBatch(() => {});
      for (const s of serverSockets) s.prependOnceListener('data', () => s.destroy());
    });
    const summary = await client.sync();
    expect(summary).toMatchObject({ pushed: 3, pending: 0 });
    expect(events.transport[0]).toMatchObject({ mode: 'http' });
    // Each change once, in order: the socket's copy (if the server ran it) and HTTP's are one.
    const e = await expectEachOnce(id, ids);
    expect(e).toMatchObject({ version: 4, data: { height: 3, note: 'a' } });
    expect(events.applied.filter((a) => ids.includes(a.changeId)).map((a) => a.changeId)).toEqual(ids);
    expect(client.view(id)).toMatchObject({ data: { height: 3, note: 'a' }, serverVersion: 4, pending: 0 });

    await until(() => client.transport() === 'socket', 'the socket to come back');
    expect(events.transport.map((x) => x.mode)).toEqual(['http', 'socket']);
    const before = sent.length;
    await client.update(id, { note: 'b' });
    await client.sync();
    expect(sent.length).toBe(before + 1);
    expect((await serverEntity(t, id))!).toMatchObject({ version: 5, data: { note: 'b' } });
    // The answer the server could not deliver is dropped quietly, not logged as an internal error.
    expect(logged.mock.calls.map((c) => String(c[0]))).toEqual([]);
    logged.mockRestore();
  });

  it('a socket that never answers: after the ack deadline the same batch goes over HTTP, and a late socket copy changes nothing', async () => {
    // Long enough for the first batch to open its socket and answer on a busy machine.
    const { id, client, events, setOnBatch } = await treeWithClient({ ackTimeoutMs: 1000 });
    const ids = [await client.update(id, { height: 5 }), await client.update(id, { height: 6 })];
    const stalled: Socket[] = [];
    setOnBatch(() => {
      setOnBatch(() => {});
      for (const s of serverSockets) if (!s.destroyed) (s.pause(), stalled.push(s));
    });
    const started = Date.now();
    await client.sync();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(events.transport[0]).toMatchObject({ mode: 'http', reason: expect.stringContaining('1000 ms') });
    expect(events.applied.slice(1).map((a) => [a.changeId, a.duplicate])).toEqual([[ids[0], false], [ids[1], false]]);
    // The server now reads the stalled frame: a resend it recognises, both changes DUPLICATE.
    const before = await duplicatesCounted();
    for (const s of stalled) s.resume();
    await until(async () => (await duplicatesCounted()) === before + 2, 'the late socket copy to be answered DUPLICATE twice');
    expect(await expectEachOnce(id, ids)).toMatchObject({ version: 3, data: { height: 6 } });
  });

  it('two missed pongs on an idle socket switch to HTTP; a later socket that answers takes over again', async () => {
    const { id, client, events } = await treeWithClient();
    for (const s of serverSockets) if (!s.destroyed) s.pause();
    await until(() => events.transport.length > 0, 'the switch to HTTP', 5000);
    expect(events.transport[0]).toEqual({ mode: 'http', reason: 'two keep-alive pongs missed' });
    await client.update(id, { note: 'over http' });
    await client.sync();
    await until(() => client.transport() === 'socket', 'the socket to come back');
    expect((await serverEntity(t, id))!).toMatchObject({ version: 2, data: { note: 'over http' } });
  });
});

describe('a server that is down for a while', () => {
  it('edits queue while it is down, sync fails without losing them, and lands them once it is back on the same database', async () => {
    // A second server on the test's database, reached through a front door whose port outlives it.
    const db = t.database.db;
    const door = await frontDoor();
    let app: App = buildApp({ db, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
    door.to(await app.start(0, '127.0.0.1'));
    const url = door.url;
    const gql = async (query: string, variables?: Record<string, unknown>) => (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) })).json()) as any;
    try {
      const ds = await createDataset({ gql } as TestApp, ['height']);
      const client = await newClient(url, { datasets: [ds] });
      clients.push(client);
      const events = record(client);
      const id = await client.create(ds, { label: 'Elm', data: { height: 1 } });
      await client.sync();
      await app.stop();
      door.to(null);

      const ids = [await client.update(id, { height: 2 }), await client.update(id, [{ op: 'INCREMENT', property: 'height', by: 10 }])];
      await expect(client.sync()).rejects.toBeInstanceOf(TransportError);
      await expect(client.sync()).rejects.toBeInstanceOf(TransportError);
      expect(client.view(id)).toMatchObject({ data: { height: 12 }, serverVersion: 1, pending: 2 });
      expect(client.pending().map((e) => e.status)).toEqual(['pending', 'pending']);

      app = buildApp({ db, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
      door.to(await app.start(0, '127.0.0.1'));
      expect(await client.sync()).toMatchObject({ pushed: 2, pending: 0 });
      expect(events.applied.slice(1).map((a) => [a.changeId, a.version])).toEqual([[ids[0], 2], [ids[1], 3]]);
      const e = (await serverEntity({ gql }, id))!;
      expect(e).toMatchObject({ version: 3, data: { height: 12 }, conflict: null });
      expect(e.versions.map((v) => v.changeId).slice(1)).toEqual(ids);
      expect(client.view(id)).toMatchObject({ data: { height: 12 }, serverVersion: 3, pending: 0 });
    } finally {
      await app.stop();
      await door.close();
    }
  });
});
