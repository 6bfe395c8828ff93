import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncEvent } from '../../src/core/events.js';
import { openDatabase, type Database, type Db } from '../../src/db/client.js';
import { postgresNotifier } from '../../src/db/notify.js';
import { createEventBus, SubscriptionEnd, type EventBus } from '../../src/graphql/pubsub.js';
import { buildApp, type App } from '../../src/server/app.js';
import { startBacklogFlusher } from '../../src/sync/flush-backlog.js';
import { submitChanges } from '../../src/sync/submit-changes.js';
import { useApp } from '../helpers/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { domain } from '../helpers/domain.js';
import { runMain, socketClient, spawnService, trackSubscriptions, waitUntil, within, type SocketClient } from '../helpers/live.js';

/**
 * Issue 17 item 6: a forced flush publishes each batch's events right after that batch commits
 * (DESIGN step 7), not once it has forced everything: listeners hear a long flush as it goes, and a
 * flush cut short (a shutdown) has announced everything it committed. The flush forces 500 held
 * changes per transaction; these tests hold several times that.
 */

const BATCH = 500;
const FLUSHED = `subscription($ds: String!) { backlogFlushed(dataset: $ds) { reason changes { changeId version } } }`;

/** Holds `n` changes in `dataset`: each the second step of a run begun offline on an entity of its own, waiting for its create. */
async function holdMany(db: Db, dataset: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += BATCH) {
    const changes = Array.from({ length: Math.min(BATCH, n - i) }, () => ({
      id: randomUUID(),
      dataset,
      deviceId: 'tab-1',
      entityId: randomUUID(),
      action: 'UPDATE' as const,
      branchId: randomUUID(),
      trunkVersion: null,
      baseVersion: 2,
      data: { note: 'held' },
    }));
    const { results } = await submitChanges(db, changes);
    expect(new Set(results.map((r) => r.outcome))).toEqual(new Set(['HELD']));
    ids.push(...changes.map((c) => c.id));
  }
  return ids;
}

async function heldCount(db: Db, dataset: string): Promise<number> {
  const r = (await db.execute(sql`select count(*)::int as n from held_changes where dataset_name = ${dataset}`)) as unknown;
  const rows = (Array.isArray(r) ? r : (r as { rows: { n: number }[] }).rows) as { n: number }[];
  return Number(rows[0]!.n);
}

/** The change ids the backlogFlushed FORCED events name, each once. */
const forcedIn = (events: readonly { reason: string; changes: { changeId: string }[] }[]) => events.filter((e) => e.reason === 'FORCED').flatMap((e) => e.changes.map((c) => c.changeId));

describe('flushBacklog (the mutation) publishes batch by batch', () => {
  const t = useApp({ flushIntervalSeconds: 0 });
  const d = domain(t);
  let ws: SocketClient;
  beforeAll(() => {
    ws = socketClient(t.url);
  });
  afterAll(async () => {
    await ws?.close();
  });

  it(`a flush of ${6 * BATCH} held changes: a listener on another connection hears batches while held changes remain, each change once`, async () => {
    const tracker = trackSubscriptions(t.app.bus);
    const ds = await d.createDataset(['note']);
    const held = await holdMany(t.database.db, ds, 6 * BATCH);
    const stream = ws.subscribe(FLUSHED, { ds });
    await tracker.waitActive('backlogFlushed');

    let answered = false;
    const flush = t.gql(`mutation($ds: String!) { flushBacklog(olderThanSeconds: 0, dataset: $ds) { forced released truncated changes { changeId outcome } } }`, { ds }).then((r) => {
      answered = true;
      return r;
    });
    // The first batch's event arrives while the flush is still forcing: the backlog is not empty yet.
    await waitUntil(() => stream.values.length > 0 || answered, 'a backlogFlushed event or the answer', 120_000, 5);
    const remaining = await heldCount(t.database.db, ds);
    expect(answered, 'the flush answered before any event arrived').toBe(false);
    expect(remaining, 'held changes left when the first event arrived').toBeGreaterThan(0);

    const res = await within(flush, 120_000, 'the flush to answer');
    // Every held change forced, counted in full; the answer lists the first 500 of them.
    expect(res.data.flushBacklog).toMatchObject({ forced: held.length, released: 0, truncated: true });
    expect(res.data.flushBacklog.changes).toHaveLength(500);
    expect(new Set(held)).toEqual(expect.objectContaining({ size: held.length }));
    for (const c of res.data.flushBacklog.changes) expect(held).toContain(c.changeId);
    await waitUntil(() => forcedIn(stream.values).length >= held.length, `events naming all ${held.length} forced changes`, 30_000);
    expect(forcedIn(stream.values).sort()).toEqual([...held].sort());
    // One event per forced change (each made its entity), in at least one message per batch.
    expect(stream.values.length).toBe(held.length);
    expect(stream.errors).toEqual([]);
    stream.close();
  }, 300_000);
});

describe('the periodic flusher publishes batch by batch, and stops at a batch boundary', () => {
  const t = useApp({ flushIntervalSeconds: 0 });
  const d = domain(t);

  it(`each committed batch is published before the next begins; stopped, the run ends after the batch under way`, async () => {
    const ds = await d.createDataset(['note']);
    const held = await holdMany(t.database.db, ds, 4 * BATCH);
    const published: { events: readonly SyncEvent[]; heldThen: number }[] = [];
    let stopping: Promise<void> | null = null;
    const flusher = startBacklogFlusher(t.database.db, {
      intervalSeconds: 0.05,
      holdTimeoutSeconds: 0,
      // Called after the batch committed: what is left held then is what the later batches force.
      publish: (events) => {
        const ours = events.filter((e) => e.type === 'backlogFlushed' && e.datasetName === ds);
        if (ours.length === 0) return;
        published.push({ events: ours, heldThen: -1 });
        const entry = published.at(-1)!;
        void heldCount(t.database.db, ds).then((n) => (entry.heldThen = n));
        // After the second batch, a shutdown begins.
        if (published.length === 2) stopping = flusher.stop();
      },
      onError: (e) => {
        throw e;
      },
    });
    await waitUntil(() => stopping !== null, 'the flusher to be stopped after its second batch', 120_000);
    await stopping;
    const forced = published.flatMap((p) => p.events.flatMap((e) => (e.type === 'backlogFlushed' ? e.changes.map((c) => c.changeId) : [])));
    expect(published.map((p) => p.events.length)).toEqual([BATCH, BATCH]);
    expect(await heldCount(t.database.db, ds)).toBe(held.length - 2 * BATCH);
    expect(published[0]!.heldThen).toBeGreaterThan(0);
    expect(new Set(forced).size).toBe(2 * BATCH);
    expect(held).toEqual(expect.arrayContaining(forced));
  }, 300_000);
});

describe.runIf(backend === 'postgres')('on Postgres, another instance hears each batch', () => {
  let main: Database & { url?: string };
  const instances: { database: Database; app: App; bus: EventBus }[] = [];

  async function instance(name: string, flushIntervalSeconds = 0) {
    const url = new URL(main.url!);
    url.searchParams.set('application_name', name);
    const database = await openDatabase({ url: url.toString(), migrate: false, max: 5 });
    const bus = createEventBus({ notifier: postgresNotifier(database.sql!), onError: (e) => console.error(`${name} bus`, e) });
    const app = buildApp({ db: database.db, bus, flushIntervalSeconds, auth: { anonymousRole: 'admin' } });
    const started = { database, app, bus, url: await app.start(0, '127.0.0.1') };
    instances.push(started);
    return started;
  }

  /** Every backlogFlushed event of `dataset` that reaches `bus` from now on. */
  function listen(bus: EventBus, dataset: string) {
    const heard: SyncEvent[] = [];
    const sub = bus.pubsub.subscribe('backlogFlushed', { filter: (e) => e.datasetName === dataset });
    void (async () => {
      for await (const e of sub) if (!(e instanceof SubscriptionEnd)) heard.push(e);
    })();
    // A Repeater starts on its first next(): the loop above has asked for it.
    return { heard, stop: () => sub.return() };
  }
  const forcedHeard = (heard: readonly SyncEvent[]) => heard.flatMap((e) => (e.type === 'backlogFlushed' && e.reason === 'FORCED' ? e.changes.map((c) => c.changeId) : []));

  /** The held changes of `ids` that were forced (their log row says APPLIED). */
  async function forcedIds(ids: readonly string[]): Promise<string[]> {
    const rows = await main.sql!`select change_id from changes where original and outcome = 'APPLIED' and change_id = any(${ids as string[]})`;
    return rows.map((r) => r.change_id as string);
  }

  beforeAll(async () => {
    main = await freshDatabase();
  });
  afterAll(async () => {
    for (const i of instances) {
      await i.app.stop();
      await i.database.close();
    }
    await main?.close();
  });

  it('the flushBacklog mutation on one instance: the other hears the first batches before the flush answers', async () => {
    const [a, b] = [await instance('es_flush_a'), await instance('es_flush_b')];
    const ds = await createDataset(a.url);
    const held = await holdMany(a.database.db, ds, 6 * BATCH);
    const onB = listen(b.bus, ds);
    let answered = false;
    const flush = post(a.url, `mutation($ds: String!) { flushBacklog(olderThanSeconds: 0, dataset: $ds) { forced } }`, { ds }).then((r) => {
      answered = true;
      return r;
    });
    await waitUntil(() => onB.heard.length > 0 || answered, 'an event on the other instance, or the answer', 120_000, 5);
    const remaining = await heldCount(a.database.db, ds);
    expect(answered).toBe(false);
    expect(remaining).toBeGreaterThan(0);
    expect((await within(flush, 120_000, 'the flush')).data.flushBacklog.forced).toBe(held.length);
    await waitUntil(() => forcedHeard(onB.heard).length >= held.length, 'every forced change heard on the other instance', 30_000);
    expect(forcedHeard(onB.heard).sort()).toEqual([...held].sort());
    await onB.stop();
  }, 300_000);

  it('the operator command (npm run flush) on Postgres: a running instance hears the first batches while held changes remain', async () => {
    const listener = await instance('es_flush_cli');
    const ds = await createDataset(listener.url);
    const held = await holdMany(listener.database.db, ds, 6 * BATCH);
    const heard = listen(listener.bus, ds);
    const flushed = runMain(['flush', '--older-than', '0', '--dataset', ds], { DATABASE_URL: main.url! });
    let ended = false;
    void flushed.finally(() => (ended = true));
    await waitUntil(() => heard.heard.length > 0 || ended, 'an event on the running instance, or the command to end', 120_000, 5);
    expect(await heldCount(listener.database.db, ds), 'held changes left when the first event arrived').toBeGreaterThan(0);
    const done = await flushed;
    expect([done.code, done.stdout, done.stderr]).toEqual([0, `forced ${held.length} held change(s), released 0 successor(s)\n`, '']);
    await waitUntil(() => forcedHeard(heard.heard).length >= held.length, 'every forced change heard', 30_000);
    expect(forcedHeard(heard.heard).sort()).toEqual([...held].sort());
    await heard.stop();
  }, 300_000);

  it('SIGTERM during the periodic flush: every batch it committed is announced to the other instance, and it stops at a batch boundary', async () => {
    const listener = await instance('es_flush_listener');
    const ds = await createDataset(listener.url);
    const held = await holdMany(listener.database.db, ds, 24 * BATCH);
    const heard = listen(listener.bus, ds);
    // A separate process forces them: its periodic flush begins a second after it starts.
    const service = await spawnService({ DATABASE_URL: main.url!, FLUSH_INTERVAL_SECONDS: '1', HOLD_TIMEOUT_SECONDS: '0' });
    let forcedBefore = 0;
    try {
      forcedBefore = held.length - (await waitUntil(async () => {
        const left = await heldCount(listener.database.db, ds);
        return left < held.length ? left : 0;
      }, 'the first batch to commit', 60_000, 20));
    } finally {
      expect(await service.stop(), service.output()).toBe(0);
    }
    const forced = await forcedIds(held);
    // It stopped at a batch boundary soon after the signal: the batch under way (and one that may have
    // committed as the signal was sent) at most, the rest left held for the next run.
    expect(forced.length % BATCH).toBe(0);
    expect(forced.length).toBeGreaterThanOrEqual(forcedBefore);
    expect(forced.length, 'the shutdown ended the run after the batch under way').toBeLessThanOrEqual(forcedBefore + 2 * BATCH);
    expect(await heldCount(listener.database.db, ds)).toBe(held.length - forced.length);
    // Every committed batch was announced before the process exited.
    await waitUntil(() => forcedHeard(heard.heard).length >= forced.length, `the ${forced.length} forced changes to be heard (heard ${forcedHeard(heard.heard).length})`, 10_000);
    expect(forcedHeard(heard.heard).sort()).toEqual(forced.sort());
    await heard.stop();
  }, 300_000);
});

async function createDataset(url: string): Promise<string> {
  const name = `flush_${randomUUID().slice(0, 8)}`;
  const r = await post(url, `mutation($n: String!) { createDataset(name: $n, properties: ["note"]) { __typename } }`, { n: name });
  expect(r.data?.createDataset).toEqual({ __typename: 'MutationCreateDatasetSuccess' });
  return name;
}

async function post(url: string, query: string, variables?: Record<string, unknown>) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return (await res.json()) as { data?: any; errors?: unknown[] };
}
