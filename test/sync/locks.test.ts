import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK } from '../../src/sync/batch-store.js';
import { flushListingAll } from '../helpers/flush.js';
import { appliedOf, useSyncContext } from '../helpers/sync-context.js';

/**
 * DESIGN step 1, the locks, seen from inside the transaction (both back ends): every row a batch
 * or a flush writes for an entity is written while that transaction holds the entity's advisory
 * lock, and every change it records while it holds the change's. Triggers look the lock up in
 * pg_locks as each row goes in and refuse the row without it. The races the locks prevent need
 * several connections (test/sync/deadlock.test.ts, forced-flush-concurrency.test.ts: Postgres
 * only); this holds the rule itself on PGlite too, where `npm run mutate:sync` runs.
 */

const ctx = useSyncContext();

/** An advisory lock (space, hashtext(key)) held by this transaction, as a condition in SQL. */
const held = (space: number, key: string) => `exists (select 1 from pg_locks l where l.locktype = 'advisory' and l.pid = pg_backend_pid() and l.granted
  and l.classid = ${space} and l.objsubid = 2 and l.objid::text::bigint = (hashtext(${key})::bigint & 4294967295))`;

const checks = [
  // table, when, the row's key: what must be locked
  { table: 'entity_versions', event: 'insert', when: held(LOCK.entity, 'new.entity_id::text'), what: `'version of ' || new.entity_id` },
  { table: 'entities', event: 'insert or update', when: held(LOCK.entity, 'new.id::text'), what: `'entity ' || new.id` },
  { table: 'held_changes', event: 'insert', when: `${held(LOCK.entity, 'new.entity_id::text')} and ${held(LOCK.change, 'new.change_id')}`, what: `'held change ' || new.change_id` },
  { table: 'held_changes', event: 'delete', when: held(LOCK.entity, 'old.entity_id::text'), what: `'held change taken ' || old.change_id` },
  // A change that could not be processed is recorded apart (a non-original row, outside the batch).
  { table: 'changes', event: 'insert', when: `not new.original or ${held(LOCK.change, 'new.change_id')}`, what: `'change ' || new.change_id` },
] as const;

beforeAll(async () => {
  for (const [n, c] of checks.entries()) {
    const row = c.event === 'delete' ? 'old' : 'new';
    await ctx.db.execute(
      sql.raw(`create function lock_check_${n}() returns trigger language plpgsql as $$
        begin if not (${c.when}) then raise exception 'written without its lock: %', ${c.what}; end if; return ${row}; end $$`),
    );
    await ctx.db.execute(sql.raw(`create trigger lock_check_${n} before ${c.event} on ${c.table} for each row execute function lock_check_${n}()`));
  }
});

afterAll(async () => {
  for (const [n, c] of checks.entries()) {
    await ctx.db.execute(sql.raw(`drop trigger lock_check_${n} on ${c.table}`));
    await ctx.db.execute(sql.raw(`drop function lock_check_${n}()`));
  }
});

describe('every row is written under its locks', () => {
  it('the triggers refuse a row written without its lock', async () => {
    const ds = await ctx.newDataset(['a']);
    const id = await ctx.newEntity(ds, 'Locked');
    const unlocked = ctx.db.execute(sql`update entities set label = 'Unlocked' where id = ${id}::uuid`);
    await expect(unlocked).rejects.toThrow();
    expect((await ctx.entity(id))!.label).toBe('Locked');
  });

  it('online changes, a run held and released, local ids, a forced flush: every answer as without the triggers', async () => {
    const ds = await ctx.newDataset(['a', 'b']);
    const before = ctx.oneByOne;
    // Online: a create and two updates of it in one batch, another create.
    const id = randomUUID();
    const online = await ctx.submit(
      { dataset: ds, entityId: id, action: 'CREATE', label: 'Oak', data: { a: 0 } },
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { a: 1 } },
      { dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'Elm', data: {} },
    );
    expect(online.map((r) => [r.outcome, r.version])).toEqual([
      ['APPLIED', 1],
      ['APPLIED', 2],
      ['APPLIED', 1],
    ]);
    // A run delivered last change first: held, then released by its first change.
    const run = ctx.run(ds, id, 2);
    const [u1, u2, u3] = [run.update(1, { b: 1 }), run.update(2, { b: 2 }), run.update(3, { b: 3 })];
    expect((await ctx.submitSent([u3, u2])).map((r) => r.outcome)).toEqual(['HELD', 'HELD']);
    const [first] = await ctx.submitSent([u1]);
    expect(appliedOf([first!]).map((r) => [r.changeId, r.version])).toEqual([
      [u1.id, 3],
      [u2.id, 4],
      [u3.id, 5],
    ]);
    // Local ids: an update overtaking its create, both by the device's own id.
    const local = { dataset: ds, deviceId: 'tab-locks', localId: 'tree-1' };
    const [early] = await ctx.submit({ ...local, action: 'UPDATE', baseVersion: 1, data: { a: 5 } });
    expect(early).toMatchObject({ outcome: 'HELD' });
    const [create] = await ctx.submit({ ...local, action: 'CREATE', label: 'Pine', data: { a: 4 } });
    expect(appliedOf([create!]).map((r) => r.version)).toEqual([1, 2]);
    // Forced: the second step of a run whose first never comes, and a run begun offline.
    const lone = ctx.run(ds, id, 5).update(2, { a: 9 });
    const offline = ctx.run(ds, randomUUID(), null).update(1, { a: 7 });
    expect((await ctx.submitSent([lone, offline])).map((r) => r.outcome)).toEqual(['HELD', 'HELD']);
    const forced = await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds });
    expect(forced.forced.map((r) => [r.changeId, r.outcome])).toEqual([
      [lone.id, 'APPLIED'],
      [offline.id, 'APPLIED'],
    ]);
    expect(forced.oneByOne).toBe(0);
    expect(ctx.oneByOne).toBe(before);
  });
});
