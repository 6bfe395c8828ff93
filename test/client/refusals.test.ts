import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { SyncError } from '../../packages/client/src/errors.js';
import type { FetchLike } from '../../packages/client/src/http.js';
import type { SyncClient } from '../../packages/client/src/sync-client.js';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createDataset, newClient, record, until } from './helpers.js';

/**
 * Issue 11, "clear refusals on sockets": a socket closed with 4401 (an unknown or revoked
 * token, at connection_init or while open) is final: the client emits `auth`, stops trying
 * sockets, and sync() rejects with UNAUTHENTICATED while the outbox keeps every edit. A socket
 * closed with 1013 (the server's database is out of reach) is retried. Against a scripted
 * graphql-transport-ws server that closes as told, and against the real server.
 */

type Script = { kind: 'close'; code: number; reason: string } | { kind: 'accept' };

/** A graphql-transport-ws server that answers connection_init as `script` says and a Probe query when it accepts. */
async function scriptedServer() {
  let script: Script = { kind: 'accept' };
  let connections = 0;
  let posts = 0;
  let subscriptions = 0;
  const http: Server = createServer((req, res) => {
    posts += 1;
    req.resume();
    // What the service answers while its database is out of reach.
    res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ message: 'the database is out of reach', extensions: { code: 'SERVICE_UNAVAILABLE' } }] }));
  });
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  wss.on('connection', (socket) => {
    connections += 1;
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as { type: string; id?: string; payload?: { query: string } };
      if (message.type === 'connection_init') {
        if (script.kind === 'close') socket.close(script.code, script.reason);
        else socket.send(JSON.stringify({ type: 'connection_ack' }));
      } else if (message.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      } else if (message.type === 'subscribe' && message.payload?.query.includes('Probe')) {
        socket.send(JSON.stringify({ type: 'next', id: message.id, payload: { data: { __typename: 'Query' } } }));
        socket.send(JSON.stringify({ type: 'complete', id: message.id }));
      } else if (message.type === 'subscribe') {
        subscriptions += 1;
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`,
    set: (s: Script) => (script = s),
    connections: () => connections,
    posts: () => posts,
    /** Subscriptions started (operations other than the Probe). */
    subscriptions: () => subscriptions,
    /** Closes every open socket, as a server does when a token is revoked. */
    closeAll: (code: number, reason: string) => wss.clients.forEach((c) => c.close(code, reason)),
    close: async () => {
      wss.clients.forEach((c) => c.terminate());
      await new Promise((resolve) => wss.close(resolve));
      await new Promise((resolve) => http.close(resolve));
    },
  };
}
type Scripted = Awaited<ReturnType<typeof scriptedServer>>;

let fake: Scripted;
const clients: SyncClient[] = [];
beforeAll(async () => {
  fake = await scriptedServer();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});
afterAll(() => fake.close());

async function client(url: string, extra: Parameters<typeof newClient>[1] = {}) {
  const c = await newClient(url, { token: 'est_not-a-token', socketRetry: { baseMs: 20, maxMs: 40 }, settleMs: 0, ...extra });
  clients.push(c);
  return c;
}

/** Lets backoffs of 20-40 ms come due several times: long enough for a retry that would happen. */
const severalBackoffs = () => new Promise((r) => setTimeout(r, 400));

const rejection = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as SyncError);

describe('a scripted server', () => {
  it('4401 at connection_init: auth event, sync rejects UNAUTHENTICATED, the edit stays, no socket is tried again', async () => {
    fake.set({ kind: 'close', code: 4401, reason: 'Unauthorized: unknown token' });
    const before = fake.connections();
    const posts = fake.posts();
    const c = await client(fake.url);
    const events = record(c);
    await c.create('trees', { label: 'Oak' });

    const error = await rejection(c.sync());
    expect(error).toBeInstanceOf(SyncError);
    expect([error?.code, error?.retryable]).toEqual(['UNAUTHENTICATED', false]);
    expect(error?.message).toContain('Unauthorized: unknown token');
    expect(events.auth).toEqual([{ code: 'UNAUTHENTICATED', reason: 'Unauthorized: unknown token' }]);
    expect(c.pending().map((e) => e.status)).toEqual(['pending']);

    await severalBackoffs();
    const again = await rejection(c.sync());
    expect(again?.code).toBe('UNAUTHENTICATED');
    // One socket, no HTTP fallback, no retries, one event.
    expect(fake.connections() - before).toBe(1);
    expect(fake.posts() - posts).toBe(0);
    expect(events.auth).toHaveLength(1);
    expect(events.transport).toEqual([]);
    expect(c.pending()).toHaveLength(1);
  });

  it('1013 at connection_init: retried with backoff (over HTTP meanwhile), and the socket takes over once it answers', async () => {
    fake.set({ kind: 'close', code: 1013, reason: 'the database is out of reach' });
    const before = fake.connections();
    const c = await client(fake.url);
    const events = record(c);
    await c.create('trees', { label: 'Oak' });

    const error = await rejection(c.sync());
    expect([error?.code, error?.retryable]).toEqual(['SERVICE_UNAVAILABLE', true]);
    expect(events.transport).toEqual([{ mode: 'http', reason: expect.stringContaining('1013') }]);
    await until(() => fake.connections() - before >= 3, 'the client to try the socket again, twice');
    expect(events.auth).toEqual([]);
    expect(c.pending()).toHaveLength(1);

    fake.set({ kind: 'accept' });
    await until(() => c.transport() === 'socket', 'the socket to take over');
    expect(events.transport.map((t) => t.mode)).toEqual(['http', 'socket']);
  });

  it('4401 while open (the token was revoked): final, the idle socket is not replaced', async () => {
    fake.set({ kind: 'accept' });
    const c = await client(fake.url);
    const events = record(c);
    const errors: unknown[] = [];
    const subscribed = fake.subscriptions();
    const stop = c.subscribe('subscription { entityChanged(dataset: "trees") { entityId } }', {}, { next: () => {}, error: (e) => errors.push(e), complete: () => {} });
    await until(() => fake.subscriptions() > subscribed, 'the subscription to reach the server');
    const before = fake.connections();
    fake.closeAll(4401, 'Unauthorized: token revoked');
    await until(() => events.auth.length === 1, 'the auth event');
    expect(events.auth).toEqual([{ code: 'UNAUTHENTICATED', reason: 'Unauthorized: token revoked' }]);
    await until(() => errors.length === 1, 'the subscription to end with an error');
    expect(errors[0]).toMatchObject({ code: 4401 });

    await c.create('trees', { label: 'Oak' });
    expect((await rejection(c.sync()))?.code).toBe('UNAUTHENTICATED');
    await severalBackoffs();
    expect(fake.connections()).toBe(before);
    stop();
  });
});

describe('the real server', () => {
  let t: TestApp;
  let admin: string;
  beforeAll(async () => {
    t = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: null, revocationSweepSeconds: 0.2 } });
    admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  });
  afterAll(() => t.close());

  /** Counts the client's HTTP requests. */
  const counting = () => {
    let n = 0;
    const fetchImpl: FetchLike = (url, init) => {
      n += 1;
      return fetch(url, init);
    };
    return { fetchImpl, count: () => n };
  };

  it('an unknown token: sync rejects UNAUTHENTICATED with an auth event, keeps the edit, and sends nothing more', async () => {
    const net = counting();
    const c = await client(t.url, { token: 'est_unknown', fetchImpl: net.fetchImpl });
    const events = record(c);
    await c.create('trees', { label: 'Oak' });
    expect((await rejection(c.sync()))?.code).toBe('UNAUTHENTICATED');
    expect(events.auth).toEqual([{ code: 'UNAUTHENTICATED', reason: expect.any(String) }]);
    const sent = net.count();
    expect((await rejection(c.sync()))?.code).toBe('UNAUTHENTICATED');
    expect(net.count()).toBe(sent);
    expect(c.pending().map((e) => e.status)).toEqual(['pending']);
  });

  it('a token revoked while the client is connected: the next sync rejects UNAUTHENTICATED, nothing is dropped', async () => {
    const { secret, token } = await createToken(t.database.db, { name: 'tablet', role: 'admin' });
    const ds = await createDataset({ gql: (q, v) => t.gqlAs(admin, q, v) } as TestApp, ['height']);
    const c = await client(t.url, { token: secret, datasets: [ds] });
    const events = record(c);
    const oak = await c.create(ds, { label: 'Oak', data: { height: 1 } });
    await c.sync();
    expect(c.transport()).toBe('socket');

    const r = await t.gqlAs(admin, 'mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }', { id: token.id });
    expect(r.data.revokeApiToken.__typename).toBe('MutationRevokeApiTokenSuccess');
    await c.update(oak, { height: 2 });
    const error = await rejection(c.sync());
    expect([error?.code, error?.retryable]).toEqual(['UNAUTHENTICATED', false]);
    expect(events.auth).toHaveLength(1);
    expect(c.pending().map((e) => [e.change.baseVersion, e.status])).toEqual([[1, 'pending']]);
    expect(events.rejected).toEqual([]);
  });
});
