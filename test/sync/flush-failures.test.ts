import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../../src/core/events.js';
import { flushListingAll } from '../helpers/flush.js';
import { refuse } from '../helpers/refuse.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * A flush whose batch fails (DESIGN "Force", flush-backlog.ts forceBatch), both back ends: any
 * failure but a transient one sends the batch's held changes one by one, and one that fails even
 * alone is recorded REJECTED INTERNAL_ERROR, with why, and taken out of the backlog (nothing of it
 * written, nothing announced), while the others are forced. A transient failure that outlasts
 * the retries ends the run instead: what it had not committed stays held for the next run.
 */

const ctx = useSyncContext();

/** Held changes of `ds`, in the order held: each the second step of an offline run whose first never came. */
async function holdSome(ds: string, n: number): Promise<{ entityId: string; changeId: string }[]> {
  const out: { entityId: string; changeId: string }[] = [];
  for (let i = 0; i < n; i++) {
    const entityId = await ctx.newEntity(ds, `Held ${i}`, { n: 0 });
    const step2 = ctx.run(ds, entityId, 1).update(2, { n: i + 1 });
    expect(await ctx.submitSent([step2])).toMatchObject([{ outcome: 'HELD' }]);
    out.push({ entityId, changeId: step2.id });
  }
  return out;
}

const heldIds = async (of: readonly { entityId: string }[]) => (await Promise.all(of.map((h) => ctx.held({ entityId: h.entityId })))).flat().map((h) => h.changeId);
const named = (events: readonly SyncEvent[]) => JSON.stringify(events);

describe('a flush batch that fails', () => {
  it('one held change that cannot be forced even alone: recorded REJECTED INTERNAL_ERROR with why, out of the backlog, unannounced; the others forced', async () => {
    const ds = await ctx.newDataset(['n']);
    const [a, b, c] = await holdSome(ds, 3);
    const undo = await refuse(ctx, b!.changeId);
    const told: SyncEvent[][] = [];
    let r: Awaited<ReturnType<typeof flushListingAll>>;
    try {
      r = await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds, onBatch: (events) => void told.push([...events]) });
    } finally {
      await undo();
    }
    expect(r.oneByOne).toBe(1);
    expect(r.forced.map((x) => [x.changeId, x.outcome, x.version, x.error?.code ?? null])).toEqual([
      [a!.changeId, 'APPLIED', 2, null],
      [b!.changeId, 'REJECTED', null, 'INTERNAL_ERROR'],
      [c!.changeId, 'APPLIED', 2, null],
    ]);
    expect(r.forced[1]).toMatchObject({ entityId: b!.entityId, error: { code: 'INTERNAL_ERROR', message: 'the server failed to process the change: forcing it failed: refused for the test' }, released: [] });
    // Recorded in the change log, with why; out of the backlog; nothing of it written.
    expect(await ctx.logOf(b!.changeId)).toMatchObject({ outcome: 'REJECTED', errorCode: 'INTERNAL_ERROR', errorMessage: 'the server failed to process the change: forcing it failed: refused for the test', version: null });
    expect((await ctx.logOf(b!.changeId))!.processedAt).not.toBeNull();
    expect(await ctx.logOf(a!.changeId)).toMatchObject({ outcome: 'APPLIED', version: 2, errorCode: null });
    expect(await heldIds([a!, b!, c!])).toEqual([]);
    expect((await ctx.history(b!.entityId)).map((v) => v.version)).toEqual([1]);
    // The events are the forced ones', told once, after their commits; the rejected change is in none.
    expect(told.flat()).toEqual(r.events);
    expect(r.events.map((e) => [e.type, 'entityId' in e ? e.entityId : null])).toEqual(
      [a!, c!].flatMap((h) => ['entityChanged', 'conflictDetected', 'backlogFlushed'].map((type) => [type, h.entityId])),
    );
    expect(r.events.filter((e) => e.type === 'backlogFlushed').flatMap((e) => (e.type === 'backlogFlushed' ? e.changes.map((x) => x.changeId) : []))).toEqual([a!.changeId, c!.changeId]);
    expect(named(r.events)).not.toContain(b!.changeId);
    expect(named(r.events)).not.toContain(b!.entityId);
    // Nothing is left for the next run.
    expect((await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds })).forced).toEqual([]);
  });

  it('a transient failure that outlasts the retries ends the run: nothing of that batch is forced, all stay held for the next run', async () => {
    const ds = await ctx.newDataset(['n']);
    const held = await holdSome(ds, 3);
    const undo = await refuse(ctx, held[1]!.changeId, '40001');
    try {
      await expect(flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds })).rejects.toThrow();
      expect(await heldIds(held)).toEqual(held.map((h) => h.changeId));
      for (const h of held) expect(await ctx.logOf(h.changeId)).toMatchObject({ outcome: 'HELD', errorCode: null });
    } finally {
      await undo();
    }
    const r = await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds });
    expect(r.forced.map((x) => [x.changeId, x.outcome])).toEqual(held.map((h) => [h.changeId, 'APPLIED']));
    expect(r.oneByOne).toBe(0);
  });

  it('forcing one by one, a transient failure ends the run: what failed for good is recorded, the change that failed transiently and those after it stay held', async () => {
    const ds = await ctx.newDataset(['n']);
    const [a, b, c] = await holdSome(ds, 3);
    const undoA = await refuse(ctx, a!.changeId);
    const undoB = await refuse(ctx, b!.changeId, '40001');
    try {
      await expect(flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds })).rejects.toThrow();
    } finally {
      await undoA();
      await undoB();
    }
    expect(await ctx.logOf(a!.changeId)).toMatchObject({ outcome: 'REJECTED', errorCode: 'INTERNAL_ERROR' });
    expect(await ctx.logOf(b!.changeId)).toMatchObject({ outcome: 'HELD', errorCode: null });
    expect(await heldIds([a!, b!, c!])).toEqual([b!.changeId, c!.changeId]);
    const r = await flushListingAll(ctx.db, { olderThanSeconds: 0, dataset: ds });
    expect(r.forced.map((x) => [x.changeId, x.outcome])).toEqual([
      [b!.changeId, 'APPLIED'],
      [c!.changeId, 'APPLIED'],
    ]);
  });
});
