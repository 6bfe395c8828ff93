import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChangeResult } from '../../src/core/results.js';
import { refuse } from '../helpers/refuse.js';
import { offlineRun, openSyncContext, useSyncContext, withId, type Change, type Sent, type SyncContext } from '../helpers/sync-context.js';

/**
 * Issue 13: one transaction per batch. Within it changes see each other in input order; a poison
 * change is recorded alone and the rest land; a transient failure is retried and answered once;
 * and a batch answers and stores exactly what the same changes sent one by one would.
 */
const ctx = useSyncContext();

/** postgres.js answers rows as an array, PGlite as `{ rows }`. */
const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? (r as T[]) : ((r as { rows: T[] }).rows ?? []));

describe('a batch that touches one entity several times', () => {
  it('create and updates out of order, by local id: held until the create, released in run order, all in one answer', async () => {
    const ds = await ctx.newDataset(['height', 'note']);
    const local = { dataset: ds, deviceId: 'tab-1', localId: 'oak-1' };
    const [u2, u1, create] = [
      withId({ ...local, action: 'UPDATE', baseVersion: 2, data: { note: 'second' } }),
      withId({ ...local, action: 'UPDATE', baseVersion: 1, data: { height: 1 } }),
      withId({ ...local, action: 'CREATE', label: 'Oak', data: { height: 0 } }),
    ];
    const [r2, r1, rc] = await ctx.submitSent([u2, u1, create]);
    expect([r2!.outcome, r2!.waitsFor, r1!.outcome, r1!.waitsFor]).toEqual(['HELD', 1, 'HELD', 0]);
    expect(rc).toMatchObject({ outcome: 'APPLIED', version: 1, localId: 'oak-1', conflict: null });
    expect(rc!.released.map((r) => [r.changeId, r.outcome, r.version, r.conflict])).toEqual([
      [u1.id, 'APPLIED', 2, null],
      [u2.id, 'APPLIED', 3, null],
    ]);
    // One entity, minted once for the local id, named by every result.
    expect(new Set([r2!.entityId, r1!.entityId, rc!.entityId]).size).toBe(1);
    await ctx.expectHistory(rc!.entityId!, [
      { changeId: create.id, action: 'CREATE', data: { height: 0 }, source: 'IN_ORDER', baseVersion: 0 },
      { changeId: u1.id, data: { height: 1 }, source: 'RELEASED', appliedOn: 1 },
      { changeId: u2.id, data: { height: 1, note: 'second' }, source: 'RELEASED', appliedOn: 2 },
    ]);
    expect(await ctx.held({ entityId: rc!.entityId! })).toEqual([]);
    // The change log ends with each change's final outcome.
    expect((await ctx.logsOf(rc!.entityId!)).map((l) => [l.changeId, l.outcome, l.version])).toEqual(
      expect.arrayContaining([
        [u2.id, 'APPLIED', 3],
        [u1.id, 'APPLIED', 2],
        [create.id, 'APPLIED', 1],
      ]),
    );
  });

  it('online updates of one entity in one batch see each other: versions in input order, the second made on the first', async () => {
    const ds = await ctx.newDataset(['height']);
    const id = await ctx.newEntity(ds, 'Elm', { height: 1 });
    const r = await ctx.submit(
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 2 } },
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 2, data: { height: 3 } },
      // Made on version 1 like the first: the second's height was unseen by it.
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 4 } },
    );
    expect(r.map((x) => [x.outcome, x.version, x.conflict, x.conflictingProperties])).toEqual([
      ['APPLIED', 2, null, []],
      ['APPLIED', 3, null, []],
      ['APPLIED', 4, 'HARD', ['height']],
    ]);
  });
});

describe('a batch with a poison change', () => {
  it('the poison change is recorded INTERNAL_ERROR alone; the changes before and after it land', async () => {
    const ds = await ctx.newDataset(['height']);
    const batch = [0, 1, 2].map((i) => withId({ dataset: ds, entityId: randomUUID(), action: 'CREATE', label: `e${i}`, data: { height: i } }));
    const undo = await refuse(ctx, batch[1]!.id);
    try {
      const before = ctx.oneByOne;
      const r = await ctx.submitSent(batch);
      expect(ctx.oneByOne).toBe(before + 1);
      expect(r.map((x) => [x.changeId, x.outcome, x.error?.code ?? null])).toEqual([
        [batch[0]!.id, 'APPLIED', null],
        [batch[1]!.id, 'REJECTED', 'INTERNAL_ERROR'],
        [batch[2]!.id, 'APPLIED', null],
      ]);
      expect(await ctx.entity(batch[1]!.entityId!)).toBeNull();
      // Recorded, with why, as a row a resend does not count as the original (it is processed afresh).
      expect(await ctx.logsOf(batch[1]!.entityId!)).toEqual([]);
      const logs = rowsOf<{ original: boolean; outcome: string; error_code: string; error_message: string }>(
        await ctx.db.execute(sql`select original, outcome, error_code, error_message from changes where change_id = ${batch[1]!.id}`),
      );
      expect(logs.map((l) => [l.original, l.outcome, l.error_code])).toEqual([[false, 'REJECTED', 'INTERNAL_ERROR']]);
      expect(logs[0]!.error_message).toContain('refused for the test');
    } finally {
      await undo();
    }
    // Once the cause is gone, a resend of it lands; the others are duplicates.
    const resent = await ctx.submitSent(batch);
    expect(resent.map((x) => [x.outcome, x.originalOutcome])).toEqual([
      ['DUPLICATE', 'APPLIED'],
      ['APPLIED', null],
      ['DUPLICATE', 'APPLIED'],
    ]);
  });

  it('a transient failure (serialization failure, 40001) inside the batch is retried: every change answered once, nothing rejected', async () => {
    const ds = await ctx.newDataset(['height']);
    const batch = [0, 1, 2].map((i) => withId({ dataset: ds, entityId: randomUUID(), action: 'CREATE', label: `t${i}`, data: { height: i } }));
    const undo = await refuse(ctx, batch[2]!.id, '40001', true);
    try {
      const r = await ctx.submitSent(batch);
      expect(r.map((x) => [x.outcome, x.version, x.error])).toEqual([
        ['APPLIED', 1, null],
        ['APPLIED', 1, null],
        ['APPLIED', 1, null],
      ]);
    } finally {
      await undo();
    }
    for (const c of batch) {
      expect((await ctx.logsOf(c.entityId!)).map((l) => [l.original, l.outcome])).toEqual([[true, 'APPLIED']]);
      expect((await ctx.history(c.entityId!)).map((v) => v.changeId)).toEqual([c.id]);
    }
  });
});

describe('the forced flush is set-based too', () => {
  it('520 held changes are forced by two transactions (batches of 500), none change by change; a poison one is recorded alone', async () => {
    const ds = await ctx.newDataset(['height']);
    const ids = Array.from({ length: 520 }, () => randomUUID());
    for (let i = 0; i < ids.length; i += 260) {
      const created = await ctx.submit(...ids.slice(i, i + 260).map((entityId, k): Change => ({ dataset: ds, entityId, action: 'CREATE', label: `e${i + k}`, data: { height: 0 } })));
      expect(created.every((r) => r.outcome === 'APPLIED')).toBe(true);
    }
    // On each entity, the second change of an offline run whose first never came: held.
    const held: Sent[] = ids.map((entityId, k) => offlineRun(ds, entityId, 1).update(2, { height: k + 1 }));
    for (let i = 0; i < held.length; i += 260) {
      const r = await ctx.submitSent(held.slice(i, i + 260));
      expect(r.every((x) => x.outcome === 'HELD')).toBe(true);
    }
    const before = ctx.oneByOne;
    const forced = await ctx.flush(0);
    expect(forced.map((r) => [r.outcome, r.version])).toEqual(held.map(() => ['APPLIED', 2]));
    expect(ctx.oneByOne).toBe(before);
    const [written] = rowsOf<{ transactions: number; versions: number }>(
      await ctx.db.execute(sql`select count(distinct v.txid)::int as transactions, count(*)::int as versions from entity_versions v
        join entities e on e.id = v.entity_id join datasets d on d.id = e.dataset_id where d.name = ${ds} and v.source = 'FORCED'`),
    );
    expect(written).toEqual({ transactions: 2, versions: 520 });

    // A held change the database refuses: the batch falls back change by change, that one is
    // recorded INTERNAL_ERROR and out of the backlog, the others are forced.
    const more = [0, 1, 2].map((k) => offlineRun(ds, ids[k]!, 2).update(2, { height: 100 + k }));
    expect((await ctx.submitSent(more)).map((r) => r.outcome)).toEqual(['HELD', 'HELD', 'HELD']);
    const undo = await refuse(ctx, more[1]!.id);
    try {
      const r = await ctx.flush(0);
      expect(r.map((x) => [x.changeId, x.outcome, x.error?.code ?? null])).toEqual([
        [more[0]!.id, 'APPLIED', null],
        [more[1]!.id, 'REJECTED', 'INTERNAL_ERROR'],
        [more[2]!.id, 'APPLIED', null],
      ]);
      expect(ctx.oneByOne).toBe(before + 1);
      expect(await ctx.held({ entityId: ids[1]! })).toEqual([]);
    } finally {
      await undo();
    }
  });
});

/** What a run of batches leaves: every answer, and the stored state of every entity (volatile columns aside). */
async function outcome(c: SyncContext, batches: readonly Sent[][]): Promise<{ answers: unknown[]; state: unknown }> {
  const answers: unknown[] = [];
  const strip = (r: ChangeResult): unknown => ({ ...r, released: r.released.map(strip) });
  for (const b of batches) answers.push(...(await c.submitSent(b)).map(strip));
  const entities = new Set(batches.flat().map((x) => x.entityId!));
  const state: Record<string, unknown> = {};
  for (const id of [...entities].sort()) {
    const e = await c.entity(id);
    state[id] = {
      entity: e && { label: e.label, data: e.data, version: e.version, conflict: e.conflict, deleted: e.deleted },
      versions: (await c.history(id)).map(({ seq: _s, txid: _t, createdAt: _c, datasetId: _d, ...v }) => v),
      held: (await c.held({ entityId: id })).map(({ heldSince: _h, ...h }) => h),
      log: (await c.logsOf(id)).map(({ receiptId: _r, receivedAt: _a, processedAt: _p, ...l }) => l).sort((a, b) => String(a.changeId).localeCompare(String(b.changeId))),
    };
  }
  return { answers, state };
}

/** Cases of the law; fewer under `npm run mutate:sync` (stryker.sync.config.mjs), where each mutant runs them again. */
const LAW_RUNS = Number(process.env.LAW_RUNS ?? 40);

describe('law: a batch answers and stores what its changes sent one at a time would', () => {
  it('for random mixes of creates, online edits, runs in any order, resends and deletes', async () => {
    const batched = await openSyncContext();
    const single = await openSyncContext();
    try {
      const [dsA, dsB] = [await batched.newDataset(['a', 'b'], 'law'), await single.newDataset(['a', 'b'], 'law')];
      expect(dsA).toBe(dsB);
      const entity = fc.constantFrom(...Array.from({ length: 3 }, () => randomUUID()));
      const run = fc.record({ entity, trunk: fc.constantFrom(null, 1), length: fc.integer({ min: 1, max: 3 }) });
      const change: fc.Arbitrary<Change[]> = fc.oneof(
        entity.map((e) => [{ dataset: dsA, entityId: e, action: 'CREATE' as const, label: 'x', data: { a: 1 } }]),
        fc.tuple(entity, fc.integer({ min: 1, max: 4 }), fc.constantFrom('a', 'b'), fc.integer({ min: 0, max: 3 })).map(([e, base, p, v]) => [
          { dataset: dsA, entityId: e, action: 'UPDATE' as const, baseVersion: base, data: { [p]: v } },
        ]),
        fc.tuple(entity, fc.integer({ min: 1, max: 4 })).map(([e, base]) => [{ dataset: dsA, entityId: e, action: 'DELETE' as const, baseVersion: base }]),
        run.map(({ entity: e, trunk, length }) => {
          const r = offlineRun(dsA, e, trunk);
          return [...(trunk === null ? [r.create('run', { a: 9 })] : []), ...Array.from({ length }, (_, i) => r.update(i + 1, { b: i }))];
        }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(change, { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 1000 }), fc.boolean(), async (groups, seed, resend) => {
          // One id per change, the same on both sides; runs shuffled; sometimes a change sent twice.
          const sent = groups.flat().map((c) => withId({ ...c, entityId: c.entityId }));
          const order = fc.sample(fc.shuffledSubarray(sent, { minLength: sent.length, maxLength: sent.length }), { seed, numRuns: 1 })[0]!;
          const batch = resend ? [...order, order[0]!] : order;
          const fresh = (s: SyncContext) => s.db.execute(sql`truncate changes, held_changes, local_ids, entity_versions, entities cascade`);
          await fresh(batched);
          await fresh(single);
          const a = await outcome(batched, [batch]);
          const b = await outcome(single, batch.map((c) => [c]));
          expect(a).toEqual(b);
          // Decided as one batch, not rescued change by change (which would answer the same).
          expect(batched.oneByOne).toBe(0);
        }),
        { numRuns: LAW_RUNS },
      );
    } finally {
      await batched.close();
      await single.close();
    }
  });
});
