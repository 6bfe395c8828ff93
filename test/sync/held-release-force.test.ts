import { describe, expect, it } from 'vitest';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * DESIGN steps 2, 5 and 6 through src/sync (the medium layer): a change whose predecessor in its
 * run has not arrived is held, its predecessor releases the chain, and the flush forces what
 * waited longer than the hold timeout. Both back ends.
 */

const ctx = useSyncContext();

describe('held and released', () => {
  it('a run delivered last change first: each held for the one before, the first releases the rest in run order', async () => {
    const ds = await ctx.newDataset(['a', 'b', 'c']);
    const id = await ctx.newEntity(ds, 'Oak', { a: 0 });
    const run = ctx.run(ds, id, 1);
    const [u1, u2, u3] = [run.update(1, { a: 1 }), run.update(2, { b: 2 }), run.update(3, { a: 3, c: 3 })];

    expect(await ctx.submitSent([u3, u2])).toMatchObject([
      { changeId: u3.id, outcome: 'HELD', waitsFor: 2, version: null },
      { changeId: u2.id, outcome: 'HELD', waitsFor: 1, version: null },
    ]);
    expect((await ctx.held({ entityId: id })).map((h) => [h.changeId, h.baseVersion, h.waitsFor])).toEqual([
      [u2.id, 2, 1],
      [u3.id, 3, 2],
    ]);
    const [first] = await ctx.submitSent([u1]);
    expect(first).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null });
    expect(first!.released.map((r) => [r.changeId, r.outcome, r.version])).toEqual([
      [u2.id, 'APPLIED', 3],
      [u3.id, 'APPLIED', 4],
    ]);
    await ctx.expectHistory(id, [
      { action: 'CREATE', source: 'ONLINE', data: { a: 0 } },
      { changeId: u1.id, source: 'IN_ORDER', appliedOn: 1, baseVersion: 1, data: { a: 1 }, conflict: null },
      { changeId: u2.id, source: 'RELEASED', appliedOn: 2, baseVersion: 2, data: { a: 1, b: 2 }, conflict: null },
      { changeId: u3.id, source: 'RELEASED', appliedOn: 3, baseVersion: 3, data: { a: 3, b: 2, c: 3 }, conflict: null },
    ]);
    expect(await ctx.held({ entityId: id })).toEqual([]);
    expect((await ctx.logOf(u3.id))!).toMatchObject({ outcome: 'APPLIED', version: 4 });
    // The events name what was released, with the versions made.
    expect(ctx.events.filter((e) => e.type === 'backlogFlushed' && e.entityId === id)).toEqual([
      { type: 'backlogFlushed', reason: 'RELEASED', datasetName: ds, entityId: id, changes: [{ changeId: u2.id, version: 3 }, { changeId: u3.id, version: 4 }] },
    ]);
  });

  it('an update of an offline-created entity arriving first waits for the create (waitsFor 0); a resend says HELD again', async () => {
    const ds = await ctx.newDataset(['a']);
    const id = crypto.randomUUID();
    const run = ctx.run(ds, id, null);
    const update = run.update(1, { a: 1 });
    expect(await ctx.submitSent([update])).toMatchObject([{ outcome: 'HELD', waitsFor: 0 }]);
    expect(await ctx.submitSent([update])).toMatchObject([{ outcome: 'DUPLICATE', originalOutcome: 'HELD', waitsFor: 0, version: null }]);
    expect(await ctx.entity(id)).toBeNull();
    const [create] = await ctx.submitSent([run.create('Born offline', { a: 0 })]);
    expect(create!.released.map((r) => [r.changeId, r.version])).toEqual([[update.id, 2]]);
    await ctx.expectHistory(id, [
      { action: 'CREATE', source: 'IN_ORDER', label: 'Born offline', data: { a: 0 } },
      { changeId: update.id, source: 'RELEASED', data: { a: 1 } },
    ]);
  });

  it('a held change released onto an entity deleted meanwhile ends REJECTED ENTITY_DELETED, and the chain stops there', async () => {
    const ds = await ctx.newDataset(['a']);
    const id = await ctx.newEntity(ds);
    const run = ctx.run(ds, id, 1);
    const [u1, u2, u3] = [run.update(1, { a: 1 }), run.update(2, { a: 2 }), run.update(3, { a: 3 })];
    await ctx.submitSent([u3, u2]);
    await ctx.submit({ dataset: ds, entityId: id, action: 'DELETE', baseVersion: 1 });
    expect(await ctx.submitSent([u1])).toMatchObject([{ outcome: 'REJECTED', error: { code: 'ENTITY_DELETED' }, released: [] }]);
    // Their predecessor never lands: the flush takes them out, oldest first (u3 was held first),
    // and the deleted entity refuses them.
    const forced = await ctx.flush(0);
    expect(forced.filter((r) => r.entityId === id).map((r) => [r.changeId, r.outcome, r.error?.code])).toEqual([
      [u3.id, 'REJECTED', 'ENTITY_DELETED'],
      [u2.id, 'REJECTED', 'ENTITY_DELETED'],
    ]);
    expect(await ctx.held({ entityId: id })).toEqual([]);
    expect((await ctx.logOf(u3.id))!).toMatchObject({ outcome: 'REJECTED', errorCode: 'ENTITY_DELETED' });
  });
});

describe('forced', () => {
  it('the flush forces only what waited longer than the timeout', async () => {
    const ds = await ctx.newDataset(['a']);
    const id = await ctx.newEntity(ds);
    const second = ctx.run(ds, id, 1).update(2, { a: 2 });
    await ctx.submitSent([second]);
    expect((await ctx.flush(3600)).filter((r) => r.entityId === id)).toEqual([]);
    expect((await ctx.held({ entityId: id })).map((h) => h.changeId)).toEqual([second.id]);
    expect((await ctx.flush(0)).filter((r) => r.entityId === id).map((r) => [r.changeId, r.version])).toEqual([[second.id, 2]]);
  });

  it('a forced change goes on top, flagged, without an author view; its late predecessor goes beneath it, SOFT, later values kept', async () => {
    const ds = await ctx.newDataset(['a', 'b']);
    const id = await ctx.newEntity(ds, 'Oak', { a: 0, b: 0 });
    const run = ctx.run(ds, id, 1);
    const [u1, u2] = [run.update(1, { a: 1, b: 1 }), run.update(2, { a: 2 })];
    await ctx.submitSent([u2]);
    const [forced] = (await ctx.flush(0)).filter((r) => r.entityId === id);
    expect(forced).toMatchObject({ changeId: u2.id, outcome: 'APPLIED', version: 2, conflict: 'SOFT' });
    expect(await ctx.submitSent([u1])).toMatchObject([{ outcome: 'APPLIED', version: 3, conflict: 'SOFT' }]);
    const history = await ctx.expectHistory(id, [
      { source: 'ONLINE' },
      { changeId: u2.id, source: 'FORCED', data: { a: 2, b: 0 }, conflict: 'SOFT' },
      { changeId: u1.id, source: 'IN_ORDER', data: { a: 2, b: 1 }, conflict: 'SOFT' },
    ]);
    expect(history[1]!.authorViewUnavailable).toBe('applied after the hold timeout without its predecessor: the author view is unknown');
  });

  it('an update forced before its offline create makes the entity with a placeholder label; the create then goes beneath it', async () => {
    const ds = await ctx.newDataset(['a', 'b']);
    const id = crypto.randomUUID();
    const run = ctx.run(ds, id, null);
    const update = run.update(1, { a: 1 });
    await ctx.submitSent([update]);
    await ctx.flush(0);
    expect((await ctx.entity(id))!).toMatchObject({ label: '(label unknown)', version: 1, data: { a: 1 } });
    expect(await ctx.submitSent([run.create('Found it', { a: 0, b: 0 })])).toMatchObject([{ outcome: 'APPLIED', version: 2 }]);
    await ctx.expectHistory(id, [
      { changeId: update.id, action: 'UPDATE', source: 'FORCED', label: '(label unknown)' },
      { action: 'UPDATE', source: 'IN_ORDER', label: 'Found it', data: { a: 1, b: 0 } },
    ]);
    expect((await ctx.entity(id))!.conflict).not.toBeNull();
  });
});
