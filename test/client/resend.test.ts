import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncError, TransportError } from '../../packages/client/src/errors.js';
import type { FetchLike } from '../../packages/client/src/http.js';
import type { SyncClient } from '../../packages/client/src/sync-client.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createDataset, newClient, record, serverEntity } from './helpers.js';

/**
 * Issue 11, "the client never drops an edit the server did not refuse": through a real
 * server, with faults injected at fixed points. A request that fails as a whole (the server
 * unavailable, the answer lost after the commit, a proxy's 502, a timeout, a GraphQL error
 * without results) keeps every change; a change answered `REJECTED INTERNAL_ERROR` (made here
 * by a trigger in the test database that fails one change) stays and is sent again by a later
 * sync after its backoff, without holding up the rest. Only a real refusal drops a change,
 * and a DUPLICATE's original outcome is the answer.
 */

let t: TestApp;
const clients: SyncClient[] = [];
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0 });
  // Test-only: a change whose id is listed in test_faults fails when its version is written,
  // as an unexpected database failure would. The server then answers REJECTED INTERNAL_ERROR.
  for (const statement of [
    `create table test_faults (change_id text primary key)`,
    `create function test_fail_listed_change() returns trigger language plpgsql as $$
     begin
       if exists (select 1 from test_faults where change_id = new.change_id) then
         raise exception 'test fault for change %', new.change_id;
       end if;
       return new;
     end $$`,
    `create trigger test_fail_listed_change before insert on entity_versions for each row execute function test_fail_listed_change()`,
  ])
    await t.database.db.execute(sql.raw(statement));
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await t.close();
});

const fail = (changeId: string) => t.database.db.execute(sql`insert into test_faults (change_id) values (${changeId})`);
const heal = () => t.database.db.execute(sql`delete from test_faults`);

type Fault = 'unavailable' | 'lost after commit' | 'bad gateway after commit' | 'error without results after commit' | 'answer too late';

/** Real fetch to the server; the next submitChanges request meets `fault` once it is set. */
function faultyFetch() {
  let next: Fault | null = null;
  const submitted: string[][] = [];
  const fetchImpl: FetchLike = async (url, init) => {
    if (!init.body.includes('submitChanges')) return fetch(url, init);
    submitted.push((JSON.parse(init.body).variables.changes as { id: string }[]).map((c) => c.id));
    const fault = next;
    next = null;
    if (fault === null) return fetch(url, init);
    if (fault === 'unavailable') {
      // What the server answers when it cannot reach its database: nothing was processed.
      return { status: 503, json: async () => ({ errors: [{ message: 'the database is out of reach; send it again later', extensions: { code: 'SERVICE_UNAVAILABLE' } }] }) };
    }
    const res = await fetch(url, init);
    await res.text(); // the server processed and committed the batch; its answer is lost below
    switch (fault) {
      case 'lost after commit':
        throw new TypeError('fetch failed: socket hang up');
      case 'bad gateway after commit':
        return { status: 502, json: async () => JSON.parse('<html>502 Bad Gateway</html>') };
      case 'error without results after commit':
        return { status: 500, json: async () => ({ errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] }) };
      case 'answer too late':
        // The answer exists but arrives after the client's deadline: the deadline's abort wins.
        return new Promise((_, reject) => init.signal?.addEventListener('abort', () => reject(new DOMException('This operation was aborted', 'AbortError'))));
    }
  };
  return { fetchImpl, submitted, failNext: (f: Fault) => (next = f) };
}

// The deadline only the "answer too late" fault is meant to reach: room for a loaded machine (2 cores, CI beside).
async function client(extra: Parameters<typeof newClient>[1] = {}) {
  const c = await newClient(t.url, { webSocketImpl: null, httpTimeoutMs: 5000, ...extra });
  clients.push(c);
  return c;
}

const changeIdsOf = async (id: string) => (await serverEntity(t, id))!.versions.map((v) => v.changeId);

describe('a request that fails as a whole keeps every change', () => {
  it.each<[Fault, string, string | null, boolean]>([
    ['unavailable', 'SyncError', 'SERVICE_UNAVAILABLE', false],
    ['lost after commit', 'TransportError', null, true],
    ['bad gateway after commit', 'TransportError', null, true],
    ['error without results after commit', 'SyncError', 'INTERNAL_SERVER_ERROR', true],
    ['answer too late', 'TransportError', null, true],
  ])('%s: sync rejects with a retryable %s, the next sync lands each change once', async (fault, errorName, code, committed) => {
    const ds = await createDataset(t, ['height', 'note']);
    const net = faultyFetch();
    const c = await client({ datasets: [ds], fetchImpl: net.fetchImpl });
    const events = record(c);
    const id = await c.create(ds, { label: 'Oak', data: { height: 1 } });
    await c.sync();
    const updates = [await c.update(id, { height: 2 }), await c.update(id, [{ op: 'INCREMENT', property: 'height', by: 10 }])];
    const elm = await c.create(ds, { label: 'Elm', data: { note: 'new' } });
    const ids = [...updates, c.pending()[2]!.change.id];

    net.failNext(fault);
    const error = await c.sync().then(() => null, (e: unknown) => e as Error & { retryable?: boolean; code?: string });
    expect(error?.name).toBe(errorName);
    expect(error).toBeInstanceOf(errorName === 'SyncError' ? SyncError : TransportError);
    if (code) expect(error?.code).toBe(code);
    expect(error?.retryable).toBe(true);
    // Nothing dropped, nothing reported as decided.
    expect(c.pending().map((e) => [e.change.id, e.status])).toEqual(ids.map((i) => [i, 'pending']));
    expect(c.view(id)).toMatchObject({ data: { height: 12 }, serverVersion: 1, pending: 2 });
    expect(events.rejected).toEqual([]);
    expect((await serverEntity(t, id))!.version).toBe(committed ? 3 : 1);

    expect(await c.sync()).toMatchObject({ pushed: 3, pending: 0, held: 0 });
    // The same batch went out again, and the server took each change once.
    expect(net.submitted.slice(-2)).toEqual([ids, ids]);
    expect(events.applied.slice(1).map((a) => [a.changeId, a.duplicate])).toEqual(ids.map((i) => [i, committed]));
    expect(await changeIdsOf(id)).toEqual([expect.any(String), ids[0], ids[1]]);
    expect(await changeIdsOf(elm)).toEqual([ids[2]]);
    expect(c.view(id)).toMatchObject({ data: { height: 12 }, serverVersion: 3, pending: 0 });
  });
});

/** Waits until the wall clock passes `at` (a time the client named in its `retry` event). */
const reach = async (at: number) => {
  while (Date.now() < at) await new Promise((r) => setTimeout(r, Math.max(1, at - Date.now())));
};

describe('a change the server failed on (REJECTED INTERNAL_ERROR)', () => {
  it('stays in the outbox, is resent by a later sync after its backoff, and does not hold up the rest', async () => {
    const ds = await createDataset(t, ['height', 'note']);
    const net = faultyFetch();
    const c = await client({ datasets: [ds], fetchImpl: net.fetchImpl, resendBackoff: { baseMs: 400, maxMs: 2000 } });
    const events = record(c);
    // How long after each `retry` event its change may go again: half to all of 400 ms, doubling.
    const waits: number[] = [];
    c.on('retry', (r) => waits.push(r.retryAt - Date.now()));
    const oak = await c.create(ds, { label: 'Oak', data: { height: 1 } });
    const ash = await c.create(ds, { label: 'Ash', data: { height: 1 } });
    await c.sync();

    // Offline: a run of three on the oak, an edit of the ash, a new tree, and one bad change.
    const run = [await c.update(oak, { height: 2 }), await c.update(oak, { note: 'leaning' }), await c.update(oak, [{ op: 'INCREMENT', property: 'height', by: 1 }])];
    const ashEdit = await c.update(ash, { height: 5 });
    const elm = await c.create(ds, { label: 'Elm', data: { height: 0 } });
    const elmCreate = c.pending()[4]!.change.id;
    const bad = await c.update(ash, { colour: 'red' });
    await fail(run[0]!);

    expect(await c.sync()).toMatchObject({ pushed: 6, pending: 3, held: 2 });
    expect(events.retry).toEqual([{ changeId: run[0], entityId: oak, code: 'INTERNAL_ERROR', message: expect.any(String), attempt: 1, retryAt: expect.any(Number) }]);
    const first = events.retry[0]!.retryAt;
    // The rest went on: the run's later changes wait on the server, the others landed.
    expect(events.held.map((h) => h.changeId)).toEqual([run[1], run[2]]);
    expect(events.applied.slice(2).map((a) => a.changeId)).toEqual([ashEdit, elmCreate]);
    // Only a refusal drops a change.
    expect(events.rejected.map((r) => [r.changeId, r.code])).toEqual([[bad, 'UNKNOWN_PROPERTY']]);
    expect(c.pending().map((e) => [e.change.id, e.status])).toEqual([[run[0], 'pending'], [run[1], 'held'], [run[2], 'held']]);
    expect(c.view(oak)).toMatchObject({ data: { height: 3, note: 'leaning' }, pending: 3 });

    // Before its time: not sent again.
    const sent = net.submitted.length;
    await c.sync();
    expect(net.submitted.length).toBe(sent);
    expect(events.retry).toHaveLength(1);

    // After it, sent again; the server fails once more, and the wait doubles.
    await reach(first);
    await c.sync();
    expect(net.submitted.slice(sent)).toEqual([[run[0]]]);
    expect(events.retry.map((r) => [r.changeId, r.attempt])).toEqual([[run[0], 1], [run[0], 2]]);
    const second = events.retry[1]!;
    expect(waits).toHaveLength(2);
    expect(waits[0]).toBeGreaterThanOrEqual(199);
    expect(waits[0]).toBeLessThanOrEqual(400);
    expect(waits[1]).toBeGreaterThanOrEqual(399);
    expect(waits[1]).toBeLessThanOrEqual(800);

    await heal();
    await reach(second.retryAt);
    expect(await c.sync()).toMatchObject({ pending: 0, held: 0 });
    expect(events.rejected).toHaveLength(1);
    expect(events.applied.slice(-3).map((a) => a.changeId)).toEqual(run);
    // Each change exactly once, the run in its order.
    expect(await changeIdsOf(oak)).toEqual([expect.any(String), ...run]);
    expect(await changeIdsOf(ash)).toEqual([expect.any(String), ashEdit]);
    expect(await changeIdsOf(elm)).toEqual([elmCreate]);
    expect((await serverEntity(t, oak))!).toMatchObject({ version: 4, data: { height: 3, note: 'leaning' } });
    expect(c.view(oak)).toMatchObject({ data: { height: 3, note: 'leaning' }, serverVersion: 4, pending: 0 });
  });

  it('a DUPLICATE is the answer: a lost refusal is dropped on resend, a lost commit is applied once', async () => {
    const ds = await createDataset(t, ['height']);
    const net = faultyFetch();
    const c = await client({ datasets: [ds], fetchImpl: net.fetchImpl });
    const events = record(c);
    const oak = await c.create(ds, { label: 'Oak', data: { height: 1 } });
    await c.sync();
    const good = await c.update(oak, { height: 2 });
    const bad = await c.update(oak, { colour: 'red' });
    net.failNext('lost after commit');
    await expect(c.sync()).rejects.toBeInstanceOf(TransportError);
    expect(events.rejected).toEqual([]);

    await c.sync();
    expect(events.applied.slice(1).map((a) => [a.changeId, a.duplicate, a.version])).toEqual([[good, true, 2]]);
    expect(events.rejected.map((r) => [r.changeId, r.code])).toEqual([[bad, 'UNKNOWN_PROPERTY']]);
    expect(c.pending()).toEqual([]);
    expect(await changeIdsOf(oak)).toEqual([expect.any(String), good]);
  });
});
