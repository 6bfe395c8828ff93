import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, READY_TIMEOUT_MS, type Database } from '../../src/db/client.js';
import { postgresNotifier } from '../../src/db/notify.js';
import { createEventBus } from '../../src/graphql/pubsub.js';
import { buildApp, type App } from '../../src/server/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { CONFLICT_SUB, socketClient, trackSubscriptions, waitUntil, within, type SocketClient, type Tracker } from '../helpers/live.js';

/**
 * Operations on the real Postgres, as a load balancer and a scraper see them:
 * - /ready answers 503 while the service's database connections are cut (every backend of the
 *   database terminated and new ones refused with `allow_connections false`), and 200 again once
 *   the database takes connections. Every probe must answer within seconds: on postgres.js 3.4.9
 *   the (max+1)-th query after the cut never settles while connections are refused (errored()
 *   rejects the in-flight query but keeps it as `query`, so the next startup's ErrorResponse is
 *   taken for it, `initial` is never rejected, and the connection reconnects in a tight loop);
 *   clearing `query` there (a line for patches/postgres+3.4.9.patch) fixes it;
 * - two instances on one database, each with its own pool and its own LISTEN (the postgresNotifier
 *   bus): each /metrics counts what that instance processed, never what NOTIFY brought from the
 *   other, nor its own events coming back to it.
 */

interface Instance {
  database: Database;
  app: App;
  url: string;
  base: string;
  tracker: Tracker;
  ws: SocketClient;
}

/** The value of one sample of a scrape (Prometheus text format); undefined when absent. */
async function metric(base: string, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').split(',').filter(Boolean).sort().join(',') === want) return Number(m[3]);
  }
  return undefined;
}

const post = (url: string, query: string, variables: Record<string, unknown>) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) }).then((r) => r.json() as Promise<any>);
const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome version conflict } } } }`;

describe.runIf(backend === 'postgres')('/ready and /metrics on Postgres', () => {
  let main: Database & { url?: string };
  let admin: postgres.Sql;
  let dbName: string;
  const instances: Instance[] = [];
  const log: { level: string; args: unknown[] }[] = [];

  async function instance(): Promise<Instance> {
    const database = await openDatabase({ url: main.url!, migrate: false, max: 3 });
    const bus = createEventBus({ notifier: postgresNotifier(database.sql!) });
    // The cut makes the background tasks log their failures: kept here, not printed.
    const logged = (level: string) => (...args: unknown[]) => log.push({ level, args });
    const logger = { debug: () => {}, info: () => {}, warn: logged('warn'), error: logged('error') };
    const app = buildApp({ db: database.db, bus, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' }, logger });
    const tracker = trackSubscriptions(bus);
    const url = await app.start(0, '127.0.0.1');
    const i = { database, app, url, base: url.replace(/\/graphql$/, ''), tracker, ws: socketClient(url) };
    instances.push(i);
    return i;
  }

  beforeAll(async () => {
    main = await freshDatabase({ max: 2 });
    dbName = new URL(main.url!).pathname.slice(1);
    // On the server's maintenance database: it outlives the cut of the test database.
    admin = postgres(process.env.DATABASE_URL!, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    await admin?.unsafe(`alter database ${dbName} allow_connections true`).catch(() => {});
    for (const i of instances) {
      await i.ws.close();
      await i.app.stop();
      await i.database.close();
    }
    await admin?.end();
    await main?.close();
  });

  it('/ready answers 503 while the database connections are cut, 200 once they can be made again', async () => {
    const a = await instance();
    // A probe that does not answer within seconds is as bad as a wrong one: a load balancer gives up.
    const ready = async () => {
      const res = await within(fetch(`${a.base}/ready`), 5000, '/ready to answer');
      return { status: res.status, body: await res.json() };
    };
    expect(await ready()).toEqual({ status: 200, body: { status: 'ok' } });

    await admin.unsafe(`alter database ${dbName} allow_connections false`);
    try {
      const cut = await admin`select pid, pg_terminate_backend(pid) as terminated from pg_stat_activity where datname = ${dbName}`;
      expect(cut.length).toBeGreaterThan(0);
      expect(cut.every((c) => c.terminated)).toBe(true);
      // Every connection is gone and none can be made: not ready, and it says so each time it is
      // asked (more times than the pool has connections, so every one of them has failed to connect).
      for (let i = 0; i < 8; i++) expect(await ready(), `probe ${i + 1}`).toEqual({ status: 503, body: { status: 'unavailable' } });
      for (let i = 0; i < 2; i++) expect((await within(fetch(`${a.base}/metrics`), 5000, '/metrics to answer')).status, `scrape ${i + 1}`).toBe(503);
      expect((await fetch(`${a.base}/health`)).status).toBe(200);
    } finally {
      await admin.unsafe(`alter database ${dbName} allow_connections true`);
    }
    await waitUntil(async () => (await ready()).status === 200, '/ready to answer 200 after the database took connections again', 30_000, 50);
    expect(await ready()).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('/ready answers 503 within its timeout while every pooled connection is busy, 200 once one is free', async () => {
    const a = await instance();
    // The instance's pool has 3 connections: three long queries take them all.
    const busy = Promise.all([1, 2, 3].map(() => a.database.sql!`select pg_sleep(4)`));
    await waitUntil(
      async () => (await admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where datname = ${dbName} and query like 'select pg_sleep%' and state = 'active'`)[0]!.n === 3 || null,
      'the three long queries to run',
    );
    const at = Date.now();
    const res = await within(fetch(`${a.base}/ready`), 5000, '/ready to answer');
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 503, body: { status: 'unavailable' } });
    expect(Date.now() - at).toBeGreaterThanOrEqual(READY_TIMEOUT_MS - 50);
    await busy;
    const after = await fetch(`${a.base}/ready`);
    expect({ status: after.status, body: await after.json() }).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('two instances on LISTEN/NOTIFY: each counts only what it processed itself', async () => {
    const [a, b] = [instances[0] ?? (await instance()), await instance()];
    const ds = `m_${randomUUID().slice(0, 8)}`;
    expect((await post(a.url, 'mutation($n: String!) { createDataset(name: $n, properties: ["age"]) { __typename } }', { n: ds })).data.createDataset.__typename).toBe(
      'MutationCreateDatasetSuccess',
    );
    // Subscribers on both: proof that the conflict crossed NOTIFY before the counters are read.
    const before = a.tracker.opened() + b.tracker.opened();
    const onA = a.ws.subscribe(CONFLICT_SUB, { ds });
    const onB = b.ws.subscribe(CONFLICT_SUB, { ds });
    await waitUntil(() => a.tracker.opened() + b.tracker.opened() >= before + 2, 'both subscriptions to be live');

    const counts = async (i: Instance) => ({
      applied: await metric(i.base, 'entity_sync_changes_total', { outcome: 'APPLIED' }),
      hard: await metric(i.base, 'entity_sync_conflicts_total', { type: 'HARD' }),
      soft: await metric(i.base, 'entity_sync_conflicts_total', { type: 'SOFT' }),
    });
    const [a0, b0] = [await counts(a), await counts(b)];
    const entityId = randomUUID();
    const change = (action: string, more: Record<string, unknown>) => ({ id: randomUUID(), dataset: ds, entityId, action, ...more });
    // On B: a create, an update on 1, another on 1 (HARD: age).
    const r = await post(b.url, SUBMIT, {
      c: [change('CREATE', { label: 'Bo', data: { age: 1 } }), change('UPDATE', { baseVersion: 1, data: { age: 2 } }), change('UPDATE', { baseVersion: 1, data: { age: 3 } })],
    });
    expect(r.data.submitChanges.data).toEqual([
      { outcome: 'APPLIED', version: 1, conflict: null },
      { outcome: 'APPLIED', version: 2, conflict: null },
      { outcome: 'APPLIED', version: 3, conflict: 'HARD' },
    ]);
    // On A: one SOFT conflict of its own.
    const s = await post(a.url, SUBMIT, { c: [change('UPDATE', { baseVersion: 2, label: 'Bob' })] });
    expect(s.data.submitChanges.data).toEqual([{ outcome: 'APPLIED', version: 4, conflict: 'SOFT' }]);
    // Both conflicts reached both instances over NOTIFY (each instance's own one came back to it too).
    for (const stream of [onA, onB]) expect((await stream.take(2)).map((e: { type: string }) => e.type)).toEqual(['HARD', 'SOFT']);

    expect(await counts(b)).toEqual({ applied: b0.applied! + 3, hard: b0.hard! + 1, soft: b0.soft });
    expect(await counts(a)).toEqual({ applied: a0.applied! + 1, hard: a0.hard, soft: a0.soft! + 1 });
    // The backlog gauge is the database's: the same on both.
    expect(await metric(a.base, 'entity_sync_held_changes')).toBe(await metric(b.base, 'entity_sync_held_changes'));
  });
});
