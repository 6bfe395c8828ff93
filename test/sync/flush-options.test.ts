import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../../src/core/events.js';
import { flushBacklog } from '../../src/sync/flush-backlog.js';
import { flushListingAll } from '../helpers/flush.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * flushBacklog's options in the medium layer (both back ends): which held changes a run takes
 * (one dataset, one change, only those held long enough), when it stops (a shutdown's signal), and
 * what it hands to `onBatch` (each committed batch's events, once, in order; nothing for a batch
 * that forced nothing). The API and CLI tests reach these through a server; here each is pinned
 * where StrykerJS (`npm run mutate:sync`) can break it.
 */

const ctx = useSyncContext();

/** An entity of `ds` with a held change: the second step of an offline run whose first never came. */
async function heldIn(ds: string, label: string): Promise<{ entityId: string; changeId: string }> {
  const entityId = await ctx.newEntity(ds, label, { n: 0 });
  const step2 = ctx.run(ds, entityId, 1).update(2, { n: 2 });
  expect(await ctx.submitSent([step2])).toMatchObject([{ outcome: 'HELD' }]);
  return { entityId, changeId: step2.id };
}

const forcedIds = (r: { forced: { changeId: string; outcome: string }[] }) => r.forced.map((f) => [f.changeId, f.outcome]);

describe('flushBacklog options', () => {
  it('listed: the result counts every forced, released and refused change, and lists only the first N, oldest first', async () => {
    const ds = await ctx.newDataset(['n']);
    const heldAll = async (...changes: Parameters<typeof ctx.submitSent>[0]) => {
      for (const c of changes) expect(await ctx.submitSent([c])).toMatchObject([{ outcome: 'HELD' }]);
    };
    // A run whose second step releases its third.
    const one = ctx.run(ds, await ctx.newEntity(ds, 'One', { n: 0 }), 1);
    const [s2, s3] = [one.update(2, { n: 2 }), one.update(3, { n: 3 })];
    await heldAll(s2, s3);
    // A run whose second step releases a delete, and then an update of what it deleted.
    const other = ctx.run(ds, await ctx.newEntity(ds, 'Other', { n: 0 }), 1);
    const [t2, t3, t4] = [other.update(2, { n: 2 }), other.update(3, {}, { action: 'DELETE' }), other.update(4, { n: 4 })];
    await heldAll(t2, t3, t4);
    const two = await heldIn(ds, 'Two');
    const gone = await heldIn(ds, 'Gone');
    expect(await ctx.submit({ dataset: ds, entityId: gone.entityId, action: 'DELETE', baseVersion: 1 })).toMatchObject([{ outcome: 'APPLIED' }]);
    const r = await flushBacklog(ctx.db, { olderThanSeconds: 0, dataset: ds, listed: 2 });
    // s2 applied releasing s3; t2 applied releasing t3 (applied) and t4 (refused); Two applied;
    // Gone's change refused (its entity was deleted).
    expect(r).toMatchObject({ forced: 4, forcedApplied: 3, released: 3, releasedApplied: 2, refused: 2, oneByOne: 0 });
    expect(r.listed.map((f) => [f.changeId, f.outcome, f.released.map((x) => [x.changeId, x.outcome])])).toEqual([
      [s2.id, 'APPLIED', [[s3.id, 'APPLIED']]],
      [t2.id, 'APPLIED', [[t3.id, 'APPLIED'], [t4.id, 'REJECTED']]],
    ]);
    // By default only the counts.
    const later = await heldIn(ds, 'Later');
    expect(await flushBacklog(ctx.db, { olderThanSeconds: 0, dataset: ds })).toEqual({ forced: 1, forcedApplied: 1, released: 0, releasedApplied: 0, refused: 0, listed: [], oneByOne: 0 });
    expect(await ctx.held({ entityId: later.entityId })).toEqual([]);
  });

  it('dataset: forces that dataset’s held changes only; the other dataset’s stay held', async () => {
    const [a, b] = [await ctx.newDataset(['n']), await ctx.newDataset(['n'])];
    const inA = await heldIn(a, 'A1');
    const inB = await heldIn(b, 'B1');
    const r = await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: a });
    expect(forcedIds(r)).toEqual([[inA.changeId, 'APPLIED']]);
    expect((await ctx.held({ entityId: inB.entityId })).map((h) => h.changeId)).toEqual([inB.changeId]);
    expect(await ctx.held({ entityId: inA.entityId })).toEqual([]);
    await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: b });
  });

  it('changeId: forces that held change only', async () => {
    const ds = await ctx.newDataset(['n']);
    const one = await heldIn(ds, 'One');
    const two = await heldIn(ds, 'Two');
    const r = await flushListingAll(ctx.db, { olderThanSeconds: 0, changeId: two.changeId });
    expect(forcedIds(r)).toEqual([[two.changeId, 'APPLIED']]);
    expect((await ctx.held({ entityId: one.entityId })).map((h) => h.changeId)).toEqual([one.changeId]);
    await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds });
  });

  it('olderThanSeconds: a change held a moment ago is not due under an hour, and is under 0', async () => {
    const ds = await ctx.newDataset(['n']);
    const h = await heldIn(ds, 'Young');
    expect(forcedIds(await flushListingAll(ctx.db, { olderThanSeconds: 3600, dataset: ds }))).toEqual([]);
    expect((await ctx.held({ entityId: h.entityId })).map((x) => x.changeId)).toEqual([h.changeId]);
    expect(forcedIds(await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds }))).toEqual([[h.changeId, 'APPLIED']]);
  });

  it('signal: aborted before it starts, nothing is forced; a signal not aborted changes nothing', async () => {
    const ds = await ctx.newDataset(['n']);
    const h = await heldIn(ds, 'Waiting');
    const aborted = new AbortController();
    aborted.abort();
    expect(await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds, signal: aborted.signal })).toEqual({ forced: [], forcedApplied: 0, released: 0, releasedApplied: 0, refused: 0, events: [], oneByOne: 0 });
    expect((await ctx.held({ entityId: h.entityId })).map((x) => x.changeId)).toEqual([h.changeId]);
    const r = await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds, signal: new AbortController().signal });
    expect(forcedIds(r)).toEqual([[h.changeId, 'APPLIED']]);
  });

  it('onBatch: each committed batch’s events once, in order, and together exactly the run’s events; nothing when nothing is due', async () => {
    const ds = await ctx.newDataset(['n']);
    const h = await heldIn(ds, 'Told');
    const told: SyncEvent[][] = [];
    const r = await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds, onBatch: (events) => void told.push([...events]) });
    expect(told).toHaveLength(1);
    expect(told.flat()).toEqual(r.events);
    expect(r.events.map((e) => e.type)).toEqual(['entityChanged', 'conflictDetected', 'backlogFlushed']);
    expect(r.events.find((e) => e.type === 'backlogFlushed')).toMatchObject({ reason: 'FORCED', changes: [{ changeId: h.changeId, version: 2 }] });
    expect(r.oneByOne).toBe(0);

    // Nothing due any more: the run forces nothing and tells nothing.
    const idle: SyncEvent[][] = [];
    expect(await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds, onBatch: (events) => void idle.push([...events]) })).toEqual({ forced: [], forcedApplied: 0, released: 0, releasedApplied: 0, refused: 0, events: [], oneByOne: 0 });
    expect(idle).toEqual([]);
  });
});
