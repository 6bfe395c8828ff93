import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, offline, offlineRun } from '../helpers/domain.js';
import { CHANGED_SUB, FLUSHED_SUB, socketClient, trackSubscriptions, waitUntil, type SocketClient, type Stream, type Tracker } from '../helpers/live.js';

/**
 * DESIGN step 7: events are published after commit, never before, so a change whose transaction
 * rolls back announces nothing. A test-only trigger makes one transaction fail at its commit (for
 * one change id written to one table); a subscriber over a real socket then sees no
 * event of it, while the event of a later good change does arrive (events arrive in publishing
 * order, so the good one coming first proves the doomed one never will).
 */

const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
const o = offline(t);
let ws: SocketClient;
let tracker: Tracker;
const open: Stream[] = [];
beforeAll(async () => {
  tracker = trackSubscriptions(t.app.bus);
  ws = socketClient(t.url);
  await t.database.db.execute(sql`create table doomed (tbl text not null, change_id text not null)`);
  // Raises, at commit (a deferred constraint trigger), for a row of a listed change id in the listed
  // table: that transaction fails after all its work. Only the original row of the change log: the
  // failure record still goes in.
  for (const [table, only] of [['changes', 'and new.original'], ['entity_versions', '']] as const) {
    await t.database.db.execute(
      sql.raw(`create function fail_doomed_${table}() returns trigger language plpgsql as $$
        begin
          if exists (select 1 from doomed where tbl = '${table}' and change_id = new.change_id) ${only} then
            raise exception 'doomed change % in ${table}', new.change_id;
          end if;
          return new;
        end $$`),
    );
    await t.database.db.execute(sql.raw(`create constraint trigger fail_doomed after insert on ${table} deferrable initially deferred for each row execute function fail_doomed_${table}()`));
  }
});
afterAll(async () => {
  open.forEach((s) => s.close());
  await ws?.close();
});

async function live(query: string, ds: string): Promise<Stream> {
  const before = tracker.opened();
  const s = ws.subscribe(query, { ds });
  open.push(s);
  await waitUntil(() => tracker.opened() > before, 'the subscription to be live', 3000);
  return s;
}

const doom = (table: 'changes' | 'entity_versions', changeId: string) => t.database.db.execute(sql`insert into doomed values (${table}, ${changeId})`);
const pardon = () => t.database.db.execute(sql`delete from doomed`);

describe('a rolled-back change publishes nothing', () => {
  it('an update whose transaction fails after writing its version: no entityChanged; the next change on another entity: its event', async () => {
    const ds = await d.createDataset(['height']);
    const doomedEntity = await d.create(ds, 'Doomed', { height: 1 });
    const goodEntity = await d.create(ds, 'Good', { height: 1 });
    const changed = await live(CHANGED_SUB, ds);

    const doomedId = randomUUID();
    await doom('changes', doomedId);
    const [r] = await d.submit({ id: doomedId, dataset: ds, entityId: doomedEntity, action: 'UPDATE', baseVersion: 1, data: { height: 2 } });
    expect(r).toMatchObject({ outcome: 'REJECTED', version: null, error: { code: 'INTERNAL_ERROR' } });
    expect(await d.update(ds, goodEntity, 1, { height: 3 })).toMatchObject({ outcome: 'APPLIED', version: 2 });

    expect(await changed.take(1)).toEqual([{ dataset: ds, entityId: goodEntity, version: 2, entity: { version: 2 } }]);
    // The rolled-back version is not there either.
    expect((await o.entity(doomedEntity))!.versions.map((v) => v.version)).toEqual([1]);
    await pardon();
    // A resend, once the fault is gone, lands and is announced.
    expect((await d.submit({ id: doomedId, dataset: ds, entityId: doomedEntity, action: 'UPDATE', baseVersion: 1, data: { height: 2 } }))[0]).toMatchObject({
      outcome: 'APPLIED',
      version: 2,
    });
    expect(await changed.take(2)).toEqual([
      { dataset: ds, entityId: goodEntity, version: 2, entity: { version: 2 } },
      { dataset: ds, entityId: doomedEntity, version: 2, entity: { version: 2 } },
    ]);
    expect(changed.errors).toEqual([]);
  });

  it('a change whose release of a held successor fails: neither is announced, the successor stays held; a good release is', async () => {
    const ds = await d.createDataset(['height', 'note']);
    const doomedEntity = await d.create(ds, 'Doomed', { height: 1 });
    const goodEntity = await d.create(ds, 'Good', { height: 1 });
    const doomedRun = offlineRun(ds, doomedEntity, 1);
    const goodRun = offlineRun(ds, goodEntity, 1);
    const [doomedSecond, goodSecond] = [doomedRun.update(2, { note: 'second' }), goodRun.update(2, { note: 'second' })];
    expect((await o.submit(doomedSecond, goodSecond)).map((r) => r.outcome)).toEqual(['HELD', 'HELD']);
    const changed = await live(CHANGED_SUB, ds);
    const flushed = await live(FLUSHED_SUB, ds);

    // The first change applies, then releasing the second fails on writing its version: all rolled back.
    await doom('entity_versions', doomedSecond.id);
    const doomedFirst = doomedRun.update(1, { height: 2 });
    expect(await o.one(doomedFirst)).toMatchObject({ outcome: 'REJECTED', error: { code: 'INTERNAL_ERROR' }, released: [] });
    expect((await o.held({ entityId: doomedEntity })).map((h) => h.changeId)).toEqual([doomedSecond.id]);
    const goodFirst = goodRun.update(1, { height: 2 });
    expect(await o.one(goodFirst)).toMatchObject({ outcome: 'APPLIED', version: 2, released: [{ changeId: goodSecond.id, outcome: 'APPLIED', version: 3 }] });

    expect(await flushed.take(1)).toEqual([{ dataset: ds, entityId: goodEntity, reason: 'RELEASED', changes: [{ changeId: goodSecond.id, version: 3 }], entity: { version: 3, data: { height: 2, note: 'second' } } }]);
    expect(await changed.take(2)).toEqual([
      { dataset: ds, entityId: goodEntity, version: 2, entity: { version: 3 } },
      { dataset: ds, entityId: goodEntity, version: 3, entity: { version: 3 } },
    ]);
    expect((await o.entity(doomedEntity))!.versions.map((v) => v.version)).toEqual([1]);
    expect([changed.errors, flushed.errors]).toEqual([[], []]);
    await pardon();
  });
});
