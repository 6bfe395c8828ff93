import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildApp, type App } from '../../src/server/app.js';
import { createDataset } from '../../src/sync/datasets.js';
import { freshDatabase } from '../helpers/database.js';
import { spawnService, trackSubscriptions, waitUntil, within, wsUrl, type Tracker } from '../helpers/live.js';

/**
 * Keep-alive on the socket (DESIGN "Transport"): the server pings every socket, closes the ones
 * that stop answering, and bounds how long a socket may stay open without connection_init.
 * Raw `ws` clients speaking graphql-transport-ws, so nothing answers on the test's behalf.
 */

const KEEPALIVE_MS = 200;
const INIT_WAIT_MS = 300;

let app: App;
let url: string;
let tracker: Tracker;
let closeDb: () => Promise<void>;
let databaseUrl: string | undefined;
const sockets: WebSocket[] = [];
beforeAll(async () => {
  const database = await freshDatabase();
  closeDb = database.close;
  databaseUrl = database.url;
  // Subscriptions name a dataset that exists (an unknown one is refused at once).
  await createDataset(database.db, 'x', ['version']);
  app = buildApp({ db: database.db, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' }, socket: { keepAliveMs: KEEPALIVE_MS, connectionInitWaitTimeoutMs: INIT_WAIT_MS } });
  tracker = trackSubscriptions(app.bus);
  url = await app.start(0, '127.0.0.1');
});
afterAll(async () => {
  for (const s of sockets) s.terminate();
  await app?.stop();
  await closeDb?.();
});

interface Raw {
  socket: WebSocket;
  pings: number[];
  messages: any[];
  closed: Promise<{ code: number; reason: string; at: number }>;
  openedAt: number;
}

/** A raw socket with subprotocol graphql-transport-ws; records pings, messages and the close. */
async function raw(target: string, opts: { autoPong?: boolean } = {}): Promise<Raw> {
  const socket = new WebSocket(wsUrl(target), 'graphql-transport-ws', { autoPong: opts.autoPong ?? true });
  sockets.push(socket);
  const r: Raw = {
    socket,
    pings: [],
    messages: [],
    openedAt: 0,
    closed: new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() }))),
  };
  socket.on('ping', () => r.pings.push(Date.now()));
  socket.on('message', (m) => r.messages.push(JSON.parse(m.toString())));
  await within(new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)), 2000, 'the socket to open');
  r.openedAt = Date.now();
  expect(socket.protocol).toBe('graphql-transport-ws');
  return r;
}

async function init(r: Raw): Promise<void> {
  r.socket.send(JSON.stringify({ type: 'connection_init' }));
  await waitUntil(() => r.messages.some((m) => m.type === 'connection_ack'), 'connection_ack', 2000);
}

describe('server pings', () => {
  it(`pings an initialised socket every ${KEEPALIVE_MS} ms; a socket that answers stays open and usable`, async () => {
    const r = await raw(url);
    await init(r);
    // At least 4 pings soon (interval well under a second), but no more than one per interval:
    // in the first second after the open, 5 expected (timestamps are when the client read them,
    // so a busy client may see fewer, never more, than the server sent; +2 for the open's own delay).
    await waitUntil(() => r.pings.length >= 4 && Date.now() - r.openedAt > 1000, '4 pings and a second', 10_000);
    const inFirstSecond = r.pings.filter((p) => p - r.openedAt <= 1000).length;
    expect(inFirstSecond).toBeLessThanOrEqual(1000 / KEEPALIVE_MS + 2);
    expect(r.socket.readyState).toBe(WebSocket.OPEN);

    // Still usable after several intervals: a query over it answers.
    r.socket.send(JSON.stringify({ id: 'q1', type: 'subscribe', payload: { query: '{ datasets { name } }' } }));
    await waitUntil(() => r.messages.some((m) => m.id === 'q1' && m.type === 'complete'), 'the query to complete', 2000);
    expect(r.messages.find((m) => m.id === 'q1' && m.type === 'next').payload).toEqual({ data: { datasets: [{ name: 'x' }] } });
    r.socket.close(1000);
    expect((await within(r.closed, 2000, 'close')).code).toBe(1000);
  });

  it('closes a socket that stops answering pings (autoPong off), and ends its subscriptions', async () => {
    const r = await raw(url, { autoPong: false });
    await init(r);
    const before = tracker.opened();
    r.socket.send(JSON.stringify({ id: 's1', type: 'subscribe', payload: { query: 'subscription { entityChanged(dataset: "x") { version } }' } }));
    await waitUntil(() => tracker.opened() > before, 'the subscription to be live');

    const closed = await within(r.closed, 3000, 'the server to close the silent socket');
    // Pinged, then cut off (1006: terminated without a close frame, not a protocol close such as
    // 4408) within a few intervals, though it had initialised.
    expect(r.pings.length).toBeGreaterThanOrEqual(1);
    expect(closed.code).toBe(1006);
    expect(closed.at - r.openedAt).toBeLessThan(KEEPALIVE_MS * 10);
    await waitUntil(() => tracker.active('entityChanged') === 0, 'the server to end its subscription');
  });
});

describe('connection init timeout', () => {
  it(`closes a socket that never sends connection_init with 4408 after ${INIT_WAIT_MS} ms`, async () => {
    const r = await raw(url);
    const closed = await within(r.closed, 3000, 'the 4408 close');
    expect(closed.code).toBe(4408);
    expect(closed.reason).toMatch(/initiali[sz]ation timeout/i);
    expect(closed.at - r.openedAt).toBeGreaterThanOrEqual(INIT_WAIT_MS - 50);
    expect(closed.at - r.openedAt).toBeLessThan(INIT_WAIT_MS + 1500);
  });

  it('an initialised socket is not closed by the init timeout', async () => {
    const r = await raw(url);
    await init(r);
    await new Promise((resolve) => setTimeout(resolve, INIT_WAIT_MS * 2));
    expect(r.socket.readyState).toBe(WebSocket.OPEN);
    r.socket.close(1000);
    await within(r.closed, 2000, 'close');
  });

  it('a subscribe before connection_init is refused with 4401', async () => {
    const r = await raw(url);
    r.socket.send(JSON.stringify({ id: 's1', type: 'subscribe', payload: { query: '{ datasets { name } }' } }));
    expect((await within(r.closed, 2000, 'the 4401 close')).code).toBe(4401);
  });
});

describe('the service entry point', () => {
  it('SOCKET_KEEPALIVE_SECONDS sets the ping interval of `node src/main.ts`', async () => {
    // On Postgres the child uses this file's database (faster than starting PGlite); else PGlite in memory.
    const service = await spawnService({ DATABASE_URL: databaseUrl ?? '', DATA_DIR: 'memory://', SOCKET_KEEPALIVE_SECONDS: '0.2' });
    let exitCode: number | null = null;
    try {
      expect(service.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
      const r = await raw(service.url);
      await init(r);
      await waitUntil(() => r.pings.length >= 3, '3 pings from the service', 3000);
      // The default is 12 s: pings this close together come from SOCKET_KEEPALIVE_SECONDS.
      expect(r.pings[2]! - r.pings[0]!).toBeLessThan(3000);
      r.socket.close(1000);
      await within(r.closed, 2000, 'close');
    } finally {
      exitCode = await service.stop();
    }
    expect(exitCode).toBe(0); // SIGTERM stops it cleanly
  }, 120_000);
});
