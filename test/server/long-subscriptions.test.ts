import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { postgresNotifier } from '../../src/db/notify.js';
import { createEventBus, MAX_EVENTS_BEHIND, type EventBus } from '../../src/graphql/pubsub.js';
import { buildApp, type App } from '../../src/server/app.js';
import type { SyncEvent } from '../../src/core/events.js';
import { createToken } from '../../src/sync/tokens.js';
import { type GqlResponse } from '../helpers/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { socketClient, sseSubscribe, trackSubscriptions, waitUntil, within, type SocketClient, type Stream, type Tracker } from '../helpers/live.js';

/**
 * Issue 10 item 4: a subscriber must be able to run for days. Every subscription used to end
 * after exactly 1,024 events (graphql-ws and SSE alike): racing the event source with a
 * repeater that never yields queued one pending next() per event until RepeaterOverflowError.
 * One subscriber on each transport receives 5,000 events, in order, and stays open; then a
 * revocation (in process) or the shutdown (through LISTEN/NOTIFY on Postgres) still ends it.
 *
 * The 5,000 are published on the server's own event bus in bursts of 500 (what a batch's
 * commit publishes), so the test measures delivery, not 10 batches of 500 creates: the last
 * event comes from a real submitChange over HTTP.
 */

const EVENTS = 5000;
const BURST = 500;
const SUB = 'subscription($ds: String!) { entityChanged(dataset: $ds) { entityId version } }';

interface Server {
  url: string;
  app: App;
  bus: EventBus;
  tracker: Tracker;
  database: Database;
}

async function serve(bus: EventBus, database: Database): Promise<Server> {
  const app = buildApp({ db: database.db, bus, flushIntervalSeconds: 0, auth: { anonymousRole: null, revocationSweepSeconds: 60 } });
  const tracker = trackSubscriptions(bus);
  const url = await app.start(0, '127.0.0.1');
  return { url, app, bus, tracker, database };
}

async function gqlAs(url: string, token: string, query: string, variables?: Record<string, unknown>): Promise<GqlResponse> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  return { ...((await res.json()) as object), status: res.status };
}

/** A dataset, an admin and a reviewer token; the two subscriptions (socket and SSE) live with the reviewer's. */
async function subscribers(s: Server) {
  const admin = (await createToken(s.database.db, { name: 'admin', role: 'admin' })).secret;
  const reviewer = await createToken(s.database.db, { name: 'reviewer', role: 'reviewer' });
  const ds = `long_${randomUUID().slice(0, 8)}`;
  const made = await gqlAs(s.url, admin, 'mutation($n: String!) { createDataset(name: $n, properties: ["n"]) { __typename } }', { n: ds });
  expect(made.data.createDataset.__typename).toBe('MutationCreateDatasetSuccess');
  const ws = socketClient(s.url, { token: reviewer.secret });
  const before = s.tracker.opened();
  const onSocket = ws.subscribe(SUB, { ds });
  const overSse = sseSubscribe(s.url, SUB, { ds }, { token: reviewer.secret });
  expect((await overSse.opened).status).toBe(200);
  await waitUntil(() => s.tracker.opened() >= before + 2 && s.tracker.active('entityChanged') === 2, 'both subscriptions to be live');
  return { admin, reviewer, ds, ws, streams: [onSocket, overSse] as Stream[], onSocket, overSse };
}

/** Publishes EVENTS entityChanged events of `ds` in bursts, then one more by a real change; checks every stream got all, in order, and is open. */
async function fiveThousand(s: Server, admin: string, ds: string, streams: Stream[]): Promise<void> {
  const expected: { entityId: string; version: number }[] = [];
  for (let b = 0; b < EVENTS / BURST; b++) {
    const burst: SyncEvent[] = Array.from({ length: BURST }, (_, i) => ({ type: 'entityChanged', datasetName: ds, entityId: randomUUID(), version: b * BURST + i + 1 }));
    s.bus.publish(burst);
    await s.bus.flushed();
    expected.push(...burst.map((e) => ({ entityId: (e as { entityId: string }).entityId, version: (e as { version: number }).version })));
  }
  for (const stream of streams) {
    const got = await stream.take(EVENTS, 60_000);
    expect(got.length).toBe(EVENTS);
    expect(got).toEqual(expected);
    expect(stream.errors).toEqual([]);
    expect(stream.completed).toBe(false);
  }
  // Still live after the 5,000th: a real change's event arrives on each.
  const id = randomUUID();
  const r = await gqlAs(s.url, admin, 'mutation($c: ChangeInput!) { submitChange(change: $c) { outcome } }', {
    c: { id: randomUUID(), dataset: ds, entityId: id, action: 'CREATE', label: 'one more', data: { n: 1 } },
  });
  expect(r.data.submitChange.outcome).toBe('APPLIED');
  for (const stream of streams) expect((await stream.take(EVENTS + 1, 10_000)).slice(EVENTS)).toEqual([{ entityId: id, version: 1 }]);
}

describe('5,000 events to one subscriber (one instance, in-process events)', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let s: Server;
  const sockets: SocketClient[] = [];
  beforeAll(async () => {
    database = await freshDatabase();
    s = await serve(createEventBus(), database);
  });
  // Each test ends its sockets (and so their subscriptions) before the next, in whatever order
  // they run (CI also runs the suite shuffled).
  afterEach(async () => {
    for (const ws of sockets.splice(0)) await ws.close();
    await waitUntil(() => s.tracker.active() === 0, 'every subscription of the test to end');
  });
  afterAll(async () => {
    await s?.app.stop();
    await database?.close();
  });

  it('over graphql-ws and over SSE, every event in order; a revocation after them still ends both', async () => {
    const { admin, reviewer, ds, ws, streams, onSocket, overSse } = await subscribers(s);
    sockets.push(ws);
    await fiveThousand(s, admin, ds, streams);
    const r = await gqlAs(s.url, admin, 'mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }', { id: reviewer.token.id });
    expect(r.data.revokeApiToken.__typename).toBe('MutationRevokeApiTokenSuccess');
    await waitUntil(() => overSse.completed && ws.closed.code, 'the stream to end and the socket to close');
    expect(JSON.stringify(overSse.errors)).toContain('"code":"TOKEN_REVOKED"');
    expect(ws.closed.code).toBe(4401);
    expect(onSocket.values).toHaveLength(EVENTS + 1);
    await waitUntil(() => s.tracker.active() === 0, 'no subscription left on the bus');
  }, 120_000);

  it(`a subscriber more than ${MAX_EVENTS_BEHIND} events behind is ended with SUBSCRIBER_TOO_SLOW, and the server goes on`, async () => {
    const { admin, ds, ws, overSse, onSocket } = await subscribers(s);
    sockets.push(ws);
    // Published at once, before either subscriber can read: both fall behind by all of them.
    const flood = Array.from({ length: MAX_EVENTS_BEHIND + 100 }, (_, i): SyncEvent => ({ type: 'entityChanged', datasetName: ds, entityId: randomUUID(), version: i + 1 }));
    s.bus.publish(flood);
    for (const stream of [overSse, onSocket]) {
      await waitUntil(() => stream.errors.length > 0, 'the too-slow error', 30_000);
      expect(JSON.stringify(stream.errors)).toContain('"code":"SUBSCRIBER_TOO_SLOW"');
      await waitUntil(() => stream.completed, 'the stream to complete after its error');
      // What was queued is dropped: the client resubscribes and pulls instead.
      expect(stream.values.length).toBeLessThan(MAX_EVENTS_BEHIND);
    }
    await waitUntil(() => s.tracker.active() === 0, 'no subscription left on the bus');
    // The socket itself stays open, and a new subscription works.
    expect(ws.closed.code).toBeUndefined();
    const again = ws.subscribe(SUB, { ds });
    await waitUntil(() => s.tracker.active('entityChanged') === 1, 'the new subscription');
    const r = await gqlAs(s.url, admin, 'mutation($c: ChangeInput!) { submitChange(change: $c) { outcome } }', {
      c: { id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'after', data: {} },
    });
    expect(r.data.submitChange.outcome).toBe('APPLIED');
    expect(await again.take(1)).toHaveLength(1);
  }, 120_000);
});

describe.runIf(backend === 'postgres')('5,000 events to one subscriber through LISTEN/NOTIFY', () => {
  let main: Awaited<ReturnType<typeof freshDatabase>>;
  let database: Database;
  let s: Server;
  let ws: SocketClient | undefined;
  beforeAll(async () => {
    main = await freshDatabase();
    database = await openDatabase({ url: main.url!, migrate: false, max: 5 });
    s = await serve(createEventBus({ notifier: postgresNotifier(database.sql!), onError: (e) => console.error('bus', e) }), database);
  });
  afterAll(async () => {
    await ws?.close();
    await s?.app.stop();
    await database?.close();
    await main?.close();
  });

  it('over graphql-ws and over SSE, every event in order; the shutdown after them still ends both', async () => {
    const sub = await subscribers(s);
    ws = sub.ws;
    await fiveThousand(s, sub.admin, sub.ds, sub.streams);
    await within(s.app.stop(), 15_000, 'the shutdown');
    await waitUntil(() => sub.overSse.completed && sub.ws.closed.code, 'the stream to end and the socket to close');
    expect(sub.overSse.errors).toEqual([]);
    expect(sub.ws.closed.code).toBe(1001);
  }, 120_000);
});
