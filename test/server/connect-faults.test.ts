import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, freshDatabase } from '../helpers/database.js';
import { spawnService, waitUntil, within, type Service } from '../helpers/live.js';

/**
 * Issue 10 item 3, on the real Postgres: a connection cut while postgres.js fetches the array
 * types (the first statement on every new connection) must not take the process down. 3.4.9
 * runs that fetch as a promise nobody awaits, so the backend's 57P01 became an unhandled
 * rejection, and the stale error was replayed onto the first query of the reconnected
 * connection (porsager/postgres#1192, #1223; patched in patches/). The window is widened
 * deterministically: the test holds an ACCESS EXCLUSIVE lock, so the service's connections park
 * behind it, and terminates exactly those backends.
 */

const TYPE_FETCH = '%from pg_catalog.pg_type a%';
const DATASETS = '%from "datasets"%';
const QUERY = JSON.stringify({ query: '{ datasets { name } }' });
const EMPTY = '{"data":{"datasets":[]}}';

describe.runIf(backend === 'postgres')('a connection cut under the driver', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let service: Service | undefined;
  /** The test's own connection, one only and warmed before any lock: a new one would park in its own type fetch. */
  let admin: postgres.Sql;
  beforeAll(async () => {
    database = await freshDatabase({ max: 1 });
    admin = postgres(database.url!, { max: 1, onnotice: () => {} });
    // Every statement it runs while a lock is held, prepared (parsed) now.
    await waitingOn(TYPE_FETCH);
    await waitingOn(DATASETS);
    await terminate([0]);
    await alive([0]);
  });
  afterAll(async () => {
    await service?.stop().catch(() => {});
    await admin?.end();
    await database?.close();
  });

  const waitingOn = (pattern: string) =>
    admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like ${pattern}`;
  const terminate = (pids: number[]) => admin<{ ok: boolean }[]>`select pg_terminate_backend(pid) as ok from pg_stat_activity where pid = any(${pids})`;
  const alive = (pids: number[]) => admin<{ pid: number }[]>`select pid from pg_stat_activity where pid = any(${pids})`;
  /** Terminates these backends and waits until they are gone (their errors have reached the service). */
  async function cut(pids: number[]): Promise<void> {
    const done = await terminate(pids);
    expect(done.length).toBe(pids.length);
    expect(done.every((d) => d.ok)).toBe(true);
    await waitUntil(async () => (await alive(pids)).length === 0, 'the terminated backends to exit');
  }
  const post = (url: string) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: QUERY }).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      (e: Error) => ({ status: 0, body: e.message }),
    );

  /** Holds `statement` (a lock) in a transaction of its own connection until release(). */
  async function holdLock(statement: string) {
    const locker = postgres(database.url!, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const holding = new Promise<void>((r) => (locked = r));
    const transaction = locker.begin(async (tx) => {
      await tx.unsafe(statement);
      locked();
      await released;
    });
    await within(Promise.race([holding, transaction]), 10_000, statement);
    return {
      release: async () => {
        release();
        await transaction;
        await locker.end();
      },
    };
  }

  async function start(): Promise<string> {
    await service?.stop();
    service = await spawnService({ DATABASE_URL: database.url!, ANONYMOUS_ROLE: 'admin', LOG_LEVEL: 'warn' });
    return service.url;
  }
  async function stillServing(url: string): Promise<void> {
    expect(process.kill(service!.pid, 0)).toBe(true);
    expect((await fetch(url.replace(/\/graphql$/, '/ready'))).status).toBe(200);
    expect(await post(url)).toEqual({ status: 200, body: EMPTY });
    expect(service!.output()).not.toMatch(/unhandled|uncaught|57P01/i);
    expect(await service!.stop()).toBe(0);
  }

  it('terminated in its type fetch: the service stays up, and the requests waiting for it are answered', async () => {
    const url = await start();
    // The service's idle connections go first (a plain close it reconnects from), so the next
    // requests must open new connections, each of which begins with the type fetch.
    const idle = await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
    await cut(idle.map((r) => r.pid));
    const lock = await holdLock('lock table pg_catalog.pg_type in access exclusive mode');
    let requests: Promise<{ status: number; body: string }[]>;
    try {
      requests = Promise.all(Array.from({ length: 4 }, () => post(url)));
      const stuck = await waitUntil(async () => {
        const rows = await waitingOn(TYPE_FETCH);
        return rows.length > 0 ? rows : null;
      }, 'a connection of the service stuck in its type fetch', 10_000);
      await cut(stuck.map((s) => s.pid));
    } finally {
      await lock.release();
    }
    // Answered by reconnected connections, without the old backend's error.
    const answers = await within(requests, 30_000, 'the requests held behind the lock');
    expect(answers, service!.output().slice(-3000)).toEqual(Array.from({ length: 4 }, () => ({ status: 200, body: EMPTY })));
    await stillServing(url);
  }, 60_000);

  it('terminated in flight: the next query on each reconnected connection does not get the old error', async () => {
    const url = await start();
    const lock = await holdLock('lock table datasets in access exclusive mode');
    let first: Promise<{ status: number; body: string }[]>;
    try {
      // More requests than the service's pool has connections (10): the driver pipelines the
      // rest behind them. Every connection waits on the lock, and is terminated there.
      first = Promise.all(Array.from({ length: 12 }, () => post(url)));
      const stuck = await waitUntil(async () => {
        const rows = await waitingOn(DATASETS);
        return rows.length === 10 ? rows : null;
      }, 'every connection of the service waiting on the lock', 10_000);
      await cut(stuck.map((s) => s.pid));
    } finally {
      await lock.release();
    }
    // Cut under them: each is answered (with an error: the database went away), none hangs.
    const firstAnswers = await within(first, 30_000, 'the requests cut in flight');
    expect(firstAnswers.filter((a) => a.body === EMPTY)).toEqual([]);
    // Each request now has to open a connection anew: none may fail with the error of the old one.
    const again = await within(Promise.all(Array.from({ length: 12 }, () => post(url))), 30_000, 'the requests after the cut');
    expect(again).toEqual(Array.from({ length: 12 }, () => ({ status: 200, body: EMPTY })));
    await stillServing(url);
  }, 60_000);
});
