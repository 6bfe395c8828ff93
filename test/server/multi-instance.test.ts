import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { postgresNotifier } from '../../src/db/notify.js';
import { createEventBus } from '../../src/graphql/pubsub.js';
import { buildApp, type App } from '../../src/server/app.js';
import type { GqlResponse, TestApp } from '../helpers/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { domain, offline, offlineRun, type Domain, type Offline } from '../helpers/domain.js';
import {
  CHANGED_SUB,
  CONFLICT_SUB,
  FLUSHED_SUB,
  HELD_SUB,
  socketClient,
  spawnService,
  sseSubscribe,
  trackSubscriptions,
  waitUntil,
  type Service,
  type SocketClient,
  type Stream,
  type Tracker,
} from '../helpers/live.js';

/**
 * Many instances behind a load balancer share one Postgres; subscription events cross instances
 * through LISTEN/NOTIFY (DESIGN "Storage and scale", issue 4). Two server instances on one
 * database, each with its own postgres.js client and its own LISTEN; and the real entry point
 * as a separate process.
 */

interface Instance {
  name: string;
  database: Database;
  app: App;
  url: string;
  tracker: Tracker;
  ws: SocketClient;
  d: Domain;
  o: Offline;
}

const PROPS = ['height', 'species', 'note', 'age'];

describe.runIf(backend === 'postgres')('two instances on one Postgres database', () => {
  let main: Database & { url?: string };
  let a: Instance;
  let b: Instance;
  const streams: Stream[] = [];

  async function instance(name: string): Promise<Instance> {
    // Its own pool and its own LISTEN connection, told apart in pg_stat_activity by application_name.
    const url = new URL(main.url!);
    url.searchParams.set('application_name', name);
    const database = await openDatabase({ url: url.toString(), migrate: false, max: 5 });
    const bus = createEventBus({ notifier: postgresNotifier(database.sql!), onError: (e) => console.error(`${name} bus`, e) });
    const app = buildApp({ db: database.db, bus, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
    const tracker = trackSubscriptions(bus);
    const started = await app.start(0, '127.0.0.1');
    const t = { url: started, gql: (query: string, variables?: Record<string, unknown>) => httpGql(started, query, variables) } as unknown as TestApp;
    return { name, database, app, url: started, tracker, ws: socketClient(started), d: domain(t), o: offline(t) };
  }

  beforeAll(async () => {
    main = await freshDatabase();
    const tag = randomUUID().slice(0, 8);
    a = await instance(`es_a_${tag}`);
    b = await instance(`es_b_${tag}`);
  });
  afterAll(async () => {
    for (const s of streams) s.close();
    for (const i of [a, b]) {
      if (!i) continue;
      await i.ws.close();
      await i.app.stop();
      await i.database.close();
    }
    await main?.close();
  });

  /** Subscribes on an instance's socket and waits until that instance holds the subscription. */
  async function live<T = any>(on: Instance, query: string, ds: string, entityId?: string): Promise<Stream<T>> {
    const before = on.tracker.opened();
    const s = on.ws.subscribe<T>(query, { ds, ...(entityId ? { e: entityId } : {}) });
    streams.push(s);
    await waitUntil(() => on.tracker.opened() > before, `a live subscription on ${on.name}`, 3000);
    return s;
  }

  /** A SOFT conflict of a fresh entity (version 3), made through `on`: a sentinel event. */
  async function softConflict(on: Instance, ds: string): Promise<string> {
    const id = await on.d.create(ds, 'Sentinel', { height: 1 });
    await on.d.update(ds, id, 1, { height: 2 });
    expect(await on.d.update(ds, id, 1, { species: 'elm' })).toMatchObject({ version: 3, conflict: 'SOFT' });
    return id;
  }

  it('each instance listens on its own connection', async () => {
    const rows = await main.sql!`select application_name from pg_stat_activity
      where datname = current_database() and query ilike 'listen%' order by application_name`;
    expect(rows.map((r) => r.application_name)).toEqual([a.name, b.name]);
  });

  it('a HARD conflict submitted on B reaches subscribers on A and on B exactly once each, the entity reloaded', async () => {
    const ds = await a.d.createDataset(PROPS);
    const onA = await live(a, CONFLICT_SUB, ds);
    const onB = await live(b, CONFLICT_SUB, ds);
    const id = await b.d.create(ds, 'Oak', { height: 1, species: 'oak' });
    await b.d.update(ds, id, 1, { height: 5 });
    expect(await b.d.update(ds, id, 1, { height: 7, note: 'measured' })).toMatchObject({ version: 3, conflict: 'HARD', conflictingProperties: ['height'] });
    const hard = {
      dataset: ds,
      entityId: id,
      version: 3,
      type: 'HARD',
      conflictingProperties: ['height'],
      entity: { id, label: 'Oak', version: 3, conflict: 'HARD', data: { height: 7, species: 'oak', note: 'measured' } },
    };
    // Wait for it first, then the sentinel (published from A) proves no second copy follows.
    await onA.take(1);
    await onB.take(1);
    const sentinel = await softConflict(a, ds);
    for (const s of [onA, onB]) {
      expect((await s.take(2)).map((e) => [e.entityId, e.type])).toEqual([
        [id, 'HARD'],
        [sentinel, 'SOFT'],
      ]);
      expect(s.values[0]).toEqual(hard);
    }
  });

  it('a change held on A then its predecessor on B: changeHeld reaches B, backlogFlushed RELEASED reaches A', async () => {
    const ds = await a.d.createDataset(PROPS);
    const id = await a.d.create(ds, 'Oak', { species: 'oak' });
    const heldOnB = await live(b, HELD_SUB, ds);
    const flushedOnA = await live(a, FLUSHED_SUB, ds);
    const run = offlineRun(ds, id, 1);
    const [c1, c2, c3] = [run.update(1, { height: 1 }), run.update(2, { height: 2 }), run.update(3, { age: 3 })];
    expect(await a.o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    expect(await a.o.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(await heldOnB.take(2)).toEqual([
      { dataset: ds, entityId: id, changeId: c3.id, branchId: run.branchId, waitsFor: 2, heldChange: { changeId: c3.id, baseVersion: 3, waitsFor: 2 } },
      { dataset: ds, entityId: id, changeId: c2.id, branchId: run.branchId, waitsFor: 1, heldChange: { changeId: c2.id, baseVersion: 2, waitsFor: 1 } },
    ]);
    expect(await b.o.one(c1)).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(await flushedOnA.take(1)).toEqual([
      { dataset: ds, entityId: id, reason: 'RELEASED', changes: [{ changeId: c2.id, version: 3 }, { changeId: c3.id, version: 4 }], entity: { version: 4, data: { species: 'oak', height: 2, age: 3 } } },
    ]);
  });

  it('a forced flush on B: backlogFlushed FORCED reaches A', async () => {
    const ds = await a.d.createDataset(PROPS);
    const id = await a.d.create(ds, 'Oak');
    const flushedOnA = await live(a, FLUSHED_SUB, ds, id);
    const c2 = offlineRun(ds, id, 1).update(2, { height: 2 });
    expect(await a.o.one(c2)).toMatchObject({ outcome: 'HELD' });
    expect((await b.o.flush(0)).filter((r) => r.entityId === id).map((r) => [r.changeId, r.version])).toEqual([[c2.id, 2]]);
    expect(await flushedOnA.take(1)).toEqual([{ dataset: ds, entityId: id, reason: 'FORCED', changes: [{ changeId: c2.id, version: 2 }], entity: { version: 2, data: { height: 2 } } }]);
  });

  it('entityChanged for a batch of 10 on B reaches A once per version, in version order (as the in-process bus delivers them)', async () => {
    const ds = await a.d.createDataset(PROPS);
    const id = randomUUID();
    const onA = await live(a, CHANGED_SUB, ds, id);
    const onB = await live(b, CHANGED_SUB, ds, id);
    await b.d.submit(
      { dataset: ds, entityId: id, action: 'CREATE', label: 'Oak', data: { height: 1 } },
      ...Array.from({ length: 9 }, (_, i) => ({ dataset: ds, entityId: id, action: 'UPDATE' as const, baseVersion: i + 1, data: { height: i + 2 } })),
    );
    await onA.take(10);
    await onB.take(10);
    await b.d.update(ds, id, 10, { height: 11 }); // sentinel: nothing else of the batch follows
    for (const s of [onA, onB]) {
      const versions = (await s.take(11)).map((e) => e.version);
      expect(versions.slice(0, 10).slice().sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]); // once each
      expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]); // in the order they were committed
    }
  });

  it('concurrent forced flushes on A and B force a held change once: one backlogFlushed FORCED at each subscriber', async () => {
    const ds = await a.d.createDataset(PROPS);
    const id = await a.d.create(ds, 'Oak');
    const onA = await live(a, FLUSHED_SUB, ds, id);
    const onB = await live(b, FLUSHED_SUB, ds, id);
    const run = offlineRun(ds, id, 1);
    const c3 = run.update(3, { height: 3 });
    expect(await a.o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    const [fa, fb] = await Promise.all([a.o.flush(0), b.o.flush(0)]);
    expect([...fa, ...fb].filter((r) => r.entityId === id).map((r) => [r.changeId, r.version])).toEqual([[c3.id, 2]]);
    await onA.take(1);
    await onB.take(1);
    // Sentinel: the run's next change, released by nothing, forced on B.
    expect(await b.o.one(run.update(5, { note: 'five' }))).toMatchObject({ outcome: 'HELD' });
    await b.o.flush(0);
    for (const s of [onA, onB]) {
      expect((await s.take(2)).map((e) => [e.reason, e.changes.map((c: { version: number }) => c.version)])).toEqual([
        ['FORCED', [2]],
        ['FORCED', [3]],
      ]);
    }
  });

  it('an SSE subscriber on A gets conflictDetected and backlogFlushed for changes submitted on B', async () => {
    const ds = await a.d.createDataset(PROPS);
    const id = await b.d.create(ds, 'Oak', { height: 1 });
    let before = a.tracker.opened();
    const conflicts = sseSubscribe(a.url, CONFLICT_SUB, { ds });
    streams.push(conflicts);
    await waitUntil(() => a.tracker.opened() > before, 'the SSE conflict subscription on A');
    before = a.tracker.opened();
    const flushed = sseSubscribe(a.url, FLUSHED_SUB, { ds });
    streams.push(flushed);
    await waitUntil(() => a.tracker.opened() > before, 'the SSE flush subscription on A');

    await b.d.update(ds, id, 1, { height: 2 });
    await b.d.update(ds, id, 1, { height: 3 });
    expect((await conflicts.take(1)).map((e) => [e.entityId, e.version, e.type, e.conflictingProperties, e.entity.version])).toEqual([[id, 3, 'HARD', ['height'], 3]]);

    const run = offlineRun(ds, id, 3);
    const c2 = run.update(2, { note: 'two' });
    expect(await b.o.one(c2)).toMatchObject({ outcome: 'HELD' });
    expect(await b.o.one(run.update(1, { note: 'one' }))).toMatchObject({ outcome: 'APPLIED', version: 4 });
    expect((await flushed.take(1)).map((e) => [e.reason, e.changes])).toEqual([['RELEASED', [{ changeId: c2.id, version: 5 }]]]);
  });

  // NOTIFY refuses payloads of 8000 bytes or more; the bus sends whole events as JSON.
  it('a long release chain (150 held changes, ~9.7 kB of event) still reaches A and B', async () => {
    const ds = await a.d.createDataset(PROPS);
    const id = await a.d.create(ds, 'Oak');
    const onA = await live(a, FLUSHED_SUB, ds, id);
    const onB = await live(b, FLUSHED_SUB, ds, id);
    const run = offlineRun(ds, id, 1);
    const held = Array.from({ length: 150 }, (_, i) => run.update(i + 2, { height: i + 2 }));
    expect((await b.o.submit(...held)).every((r) => r.outcome === 'HELD')).toBe(true);
    expect((await b.o.one(run.update(1, { height: 1 }))).released).toHaveLength(150);
    const expected = held.map((c, i) => ({ changeId: c.id, version: i + 3 }));
    for (const s of [onA, onB]) {
      const [event] = await s.take(1, 3000);
      expect([event.reason, event.changes]).toEqual(['RELEASED', expected]);
    }
  });

  it('a HARD conflict on 150 long property names (~10 kB of event) still reaches A and B', async () => {
    const props = Array.from({ length: 150 }, (_, i) => `p${String(i).padStart(3, '0')}_${'x'.repeat(59)}`);
    const ds = await a.d.createDataset(props);
    const id = await a.d.create(ds, 'Wide');
    const onA = await live(a, CONFLICT_SUB, ds, id);
    const onB = await live(b, CONFLICT_SUB, ds, id);
    const all = (v: number) => Object.fromEntries(props.map((p) => [p, v]));
    await b.d.update(ds, id, 1, all(1));
    expect(await b.d.update(ds, id, 1, all(2))).toMatchObject({ version: 3, conflict: 'HARD', conflictingProperties: props });
    for (const s of [onA, onB]) {
      const [event] = await s.take(1, 3000);
      expect([event.version, event.type, event.conflictingProperties]).toEqual([3, 'HARD', props]);
    }
  });

  it('A hears B again after A\'s LISTEN connection is killed (postgres.js re-listens)', async () => {
    const ds = await a.d.createDataset(PROPS);
    const onA = await live(a, CHANGED_SUB, ds);
    const listeners = async () =>
      (await main.sql!`select pid from pg_stat_activity
        where datname = current_database() and application_name = ${a.name} and query ilike 'listen%' and state = 'idle'`).map((r) => r.pid as number);
    const [old] = await listeners();
    expect(old).toEqual(expect.any(Number));
    const [killed] = await main.sql!`select pg_terminate_backend(${old!}::int) as ok`;
    expect(killed!.ok).toBe(true);
    // Events published while no LISTEN is in place are lost (NOTIFY keeps no queue): wait for the new one.
    await waitUntil(async () => {
      const now = await listeners();
      return now.length === 1 && now[0] !== old;
    }, 'A to listen again on a new connection', 5000, 50);
    const id = await b.d.create(ds, 'After the drop');
    expect((await onA.take(1)).map((e) => [e.entityId, e.version])).toEqual([[id, 1]]);
  });
});

describe.runIf(backend === 'postgres')('the service entry point as a second process', () => {
  let main: Database & { url?: string };
  let a: App;
  let aUrl: string;
  let aTracker: Tracker;
  let service: Service;
  const clients: SocketClient[] = [];

  beforeAll(async () => {
    main = await freshDatabase();
    const bus = createEventBus({ notifier: postgresNotifier(main.sql!) });
    a = buildApp({ db: main.db, bus, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
    aTracker = trackSubscriptions(bus);
    aUrl = await a.start(0, '127.0.0.1');
    service = await spawnService({ DATABASE_URL: main.url! });
  }, 120_000);
  afterAll(async () => {
    for (const c of clients) await c.close();
    const code = await service?.stop();
    await a?.stop();
    await main?.close();
    expect(code).toBe(0);
  });

  const gqlOn = (url: string) => ({ url, gql: (q: string, v?: Record<string, unknown>) => httpGql(url, q, v) }) as unknown as TestApp;

  it('prints its URL; subscribe on the process, submit in-process: the conflict arrives', async () => {
    expect(service.output()).toMatch(/entity-sync listening on http:\/\/127\.0\.0\.1:\d+\/graphql \(Postgres\)/);
    const inProcess = domain(gqlOn(aUrl));
    const ds = await inProcess.createDataset(PROPS);
    const ws = socketClient(service.url);
    clients.push(ws);
    const onService = ws.subscribe(CONFLICT_SUB, { ds });
    // No hook into the other process: repeat a probe conflict until one arrives, then it is live.
    const probes: string[] = [];
    await waitUntil(async () => {
      probes.push(await softConflictVia(inProcess, ds));
      await waitUntil(() => onService.values.length > 0, 'a probe', 300).catch(() => false);
      return onService.values.length > 0;
    }, 'the subscription on the service process to be live', 10_000, 0);
    const seen = onService.values.length;

    const id = await inProcess.create(ds, 'Oak', { height: 1 });
    await inProcess.update(ds, id, 1, { height: 2 });
    await inProcess.update(ds, id, 1, { height: 3, note: 'x' });
    const sentinel = await softConflictVia(inProcess, ds);
    const events = (await onService.take(seen + 2)).filter((e) => !probes.includes(e.entityId));
    expect(events.map((e) => [e.entityId, e.version, e.type, e.conflictingProperties])).toEqual([
      [id, 3, 'HARD', ['height']],
      [sentinel, 3, 'SOFT', []],
    ]);
    expect(events[0].entity).toEqual({ id, label: 'Oak', version: 3, conflict: 'HARD', data: { height: 3, note: 'x' } });
  });

  it('subscribe in-process, submit on the process: changeHeld and backlogFlushed arrive', async () => {
    const other = domain(gqlOn(service.url));
    const otherRuns = offline(gqlOn(service.url));
    const ds = await other.createDataset(PROPS);
    const id = await other.create(ds, 'Oak');
    const ws = socketClient(aUrl);
    clients.push(ws);
    let before = aTracker.opened();
    const held = ws.subscribe(HELD_SUB, { ds });
    await waitUntil(() => aTracker.opened() > before, 'changeHeld live in-process');
    before = aTracker.opened();
    const flushed = ws.subscribe(FLUSHED_SUB, { ds });
    await waitUntil(() => aTracker.opened() > before, 'backlogFlushed live in-process');

    const run = offlineRun(ds, id, 1);
    const c2 = run.update(2, { height: 2 });
    expect(await otherRuns.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect((await held.take(1)).map((e) => [e.changeId, e.branchId, e.waitsFor])).toEqual([[c2.id, run.branchId, 1]]);
    expect(await otherRuns.one(run.update(1, { height: 1 }))).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect((await flushed.take(1)).map((e) => [e.reason, e.changes, e.entity.version])).toEqual([['RELEASED', [{ changeId: c2.id, version: 3 }], 3]]);
  });
});

async function softConflictVia(d: Domain, ds: string): Promise<string> {
  const id = await d.create(ds, 'Probe', { height: 1 });
  await d.update(ds, id, 1, { height: 2 });
  await d.update(ds, id, 1, { species: 'elm' });
  return id;
}

async function httpGql(url: string, query: string, variables?: Record<string, unknown>): Promise<GqlResponse> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { ...((await res.json()) as Omit<GqlResponse, 'status'>), status: res.status };
}
