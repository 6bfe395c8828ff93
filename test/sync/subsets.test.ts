import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { resolveConflict } from '../../src/sync/resolve-conflict.js';
import { useSyncContext } from '../helpers/sync-context.js';
import { expectNoRepeats, newDevice } from '../helpers/subset-device.js';
import type { ChangesPage } from '../../src/sync/changes-since.js';

/**
 * Subsets over src/sync on both back ends (issue 20): what a device with a subset token pulls,
 * how entities enter and leave its share (edits online, in offline runs, released, forced, a
 * resolution, a delete, a reassignment, between two pages of one pull), and what it may write.
 * Each scenario ends with the device holding exactly the server's share (expectInSync).
 */

const ctx = useSyncContext();
const PROPS = ['district', 'status', 'n'];
const d = (district: string, more: Record<string, unknown> = {}) => ({ district, ...more });
const district = (...values: string[]) => [{ property: 'district', values }];

/** Ids the page names at all: versions, entered and left. */
const named = (p: ChangesPage) => new Set([...p.versions.map((v) => v.entityId), ...p.entered.map((v) => v.entityId), ...p.left]);
const allNamed = (pages: ChangesPage[]) => new Set(pages.flatMap((p) => [...named(p)]));

describe('a token of the whole dataset given its first subset', () => {
  it('part way through a sync: the device ends with exactly its share; nothing it had comes again; one pulled and deleted since leaves', async () => {
    const ds = await ctx.newDataset(PROPS);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await ctx.newEntity(ds, `E${i}`, d(i % 2 === 0 ? 'd1' : 'd2')));
    const tablet = await newDevice(ctx.db, ds, null);
    await tablet.pullPage(3);
    expect([...tablet.held.keys()]).toEqual(ids.slice(0, 3));
    // After the device's cursor: E0 changes, E2 (held alive) is deleted, Y is made outside d1.
    await ctx.submit({ dataset: ds, entityId: ids[0]!, action: 'UPDATE', baseVersion: 1, data: { n: 1 } });
    await ctx.submit({ dataset: ds, entityId: ids[2]!, action: 'DELETE', baseVersion: 1 });
    const y = await ctx.newEntity(ds, 'Y', d('d2'));
    await tablet.reassign(district('d1'));
    // One row a page: the cursor is part way through the moves between pages.
    await tablet.sync(1);
    await tablet.expectInSync();
    expectNoRepeats(tablet);
    expect([...tablet.held.keys()].sort()).toEqual([ids[0]!, ids[4]!].sort());
    expect(tablet.held.get(ids[0]!)).toMatchObject({ version: 2 });
    expect(allNamed(tablet.pages.slice(1)).has(y)).toBe(true);
  });

  it('reassigned twice before the device pulls: an entity made after its cursor, out and back in, arrives', async () => {
    const ds = await ctx.newDataset(PROPS);
    await ctx.newEntity(ds, 'A', d('d1'));
    const tablet = await newDevice(ctx.db, ds, null);
    await tablet.sync();
    const y = await ctx.newEntity(ds, 'Y', d('d2'));
    await tablet.reassign(district('d1'));
    await tablet.reassign(district('d1', 'd2'));
    await tablet.sync();
    await tablet.expectInSync();
    expectNoRepeats(tablet);
    expect(tablet.held.get(y)).toMatchObject({ version: 1 });
  });
});

describe('what a device with a subset pulls', () => {
  it('by one property: its first sync is its share at the current versions, nothing of the rest', async () => {
    const ds = await ctx.newDataset(PROPS);
    const mine = [await ctx.newEntity(ds, 'A', d('d1')), await ctx.newEntity(ds, 'B', d('d1', { n: 1 }))];
    const others = [await ctx.newEntity(ds, 'C', d('d2')), await ctx.newEntity(ds, 'D', {}), await ctx.newEntity(ds, 'E', d('D1'))];
    await ctx.submit({ dataset: ds, entityId: mine[1]!, action: 'UPDATE', baseVersion: 1, data: { n: 2 } });
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    const pages = await tablet.sync();
    await tablet.expectInSync();
    expect([...tablet.held.keys()].sort()).toEqual([...mine].sort());
    expect(tablet.held.get(mine[1]!)).toMatchObject({ version: 2, data: { district: 'd1', n: 2 } });
    for (const id of others) expect(allNamed(pages).has(id), `${id} never named`).toBe(false);
    // Nothing new: an empty page, the cursor kept.
    const cursor = tablet.cursor;
    const empty = await tablet.pullPage();
    expect(empty).toMatchObject({ versions: [], entered: [], left: [], hasMore: false, cursor });
  });

  it('by two properties: both rules must hold; numbers and booleans match by their text', async () => {
    const ds = await ctx.newDataset(PROPS);
    const a = await ctx.newEntity(ds, 'A', d('d1', { status: 'open' }));
    const b = await ctx.newEntity(ds, 'B', d('d2', { status: 'open' }));
    await ctx.newEntity(ds, 'C', d('d1', { status: 'closed' }));
    await ctx.newEntity(ds, 'D', d('d3', { status: 'open' }));
    const e = await ctx.newEntity(ds, 'E', d('d2', { status: true }));
    const f = await ctx.newEntity(ds, 'F', { district: 7, status: 'open' });
    const tablet = await newDevice(ctx.db, ds, [
      { property: 'district', values: ['d1', 'd2', '7'] },
      { property: 'status', values: ['open', 'true'] },
    ]);
    await tablet.sync();
    expect([...tablet.held.keys()].sort()).toEqual([a, b, e, f].sort());
    await tablet.expectInSync();
  });

  it('online edits move entities in (with their full state) and out (their ids in left); edits outside never reach it', async () => {
    const ds = await ctx.newDataset(PROPS);
    const stays = await ctx.newEntity(ds, 'Stays', d('d1'));
    const leaves = await ctx.newEntity(ds, 'Leaves', d('d1'));
    const enters = await ctx.newEntity(ds, 'Enters', d('d2', { n: 5 }));
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    await tablet.sync();
    await ctx.submit(
      { dataset: ds, entityId: enters, action: 'UPDATE', baseVersion: 1, data: { district: 'd1' } },
      { dataset: ds, entityId: leaves, action: 'UPDATE', baseVersion: 1, data: { district: 'd2' } },
      { dataset: ds, entityId: stays, action: 'UPDATE', baseVersion: 1, data: { n: 1 } },
    );
    const [page] = await tablet.sync();
    expect(page!.versions.map((v) => [v.entityId, v.version, v.data])).toEqual([
      [enters, 2, { district: 'd1', n: 5 }],
      [stays, 2, { district: 'd1', n: 1 }],
    ]);
    expect(page!.left).toEqual([leaves]);
    expect(page!.entered).toEqual([]);
    await tablet.expectInSync();
    // Edits of an entity outside the share: not a word of them.
    await ctx.submit({ dataset: ds, entityId: leaves, action: 'UPDATE', baseVersion: 2, data: { n: 9 } });
    const quiet = await tablet.pullPage();
    expect([quiet.versions, quiet.entered, quiet.left]).toEqual([[], [], []]);
    // Back in: its state as it is now.
    await ctx.submit({ dataset: ds, entityId: leaves, action: 'UPDATE', baseVersion: 3, data: { district: 'd1' } });
    const back = await tablet.pullPage();
    expect(back.versions.map((v) => [v.entityId, v.version, v.data])).toEqual([[leaves, 4, { district: 'd1', n: 9 }]]);
    await tablet.expectInSync();
  });

  it('an offline run moves an entity in and out, in order, released and forced', async () => {
    const ds = await ctx.newDataset(PROPS);
    const e = await ctx.newEntity(ds, 'Tree', d('d2'));
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    await tablet.sync();
    expect(tablet.held.size).toBe(0);
    // Another device's run, in order: into the district, then an edit inside it.
    const run = ctx.run(ds, e, 1);
    expect((await ctx.submit(run.update(1, { district: 'd1' }), run.update(2, { n: 1 }))).map((r) => r.outcome)).toEqual(['APPLIED', 'APPLIED']);
    await tablet.sync();
    expect(tablet.held.get(e)).toMatchObject({ version: 3, data: { district: 'd1', n: 1 } });
    // A second run out of order: its 2nd step (out of the district) is held, its 1st releases it.
    const run2 = ctx.run(ds, e, 3);
    const [held] = await ctx.submit(run2.update(2, { district: 'd3' }));
    expect(held!.outcome).toBe('HELD');
    expect((await tablet.sync())[0]!.versions).toEqual([]);
    const [first] = await ctx.submit(run2.update(1, { n: 2 }));
    expect([first!.outcome, first!.released.map((r) => [r.outcome, r.version])]).toEqual(['APPLIED', [['APPLIED', 5]]]);
    const [page] = await tablet.sync();
    expect(page!.versions.map((v) => [v.version, v.source])).toEqual([[4, 'IN_ORDER']]);
    expect(page!.left).toEqual([e]);
    await tablet.expectInSync();
    // A held change forced by the flush brings it back in.
    const run3 = ctx.run(ds, e, 5);
    expect((await ctx.submit(run3.update(2, { district: 'd1' })))[0]!.outcome).toBe('HELD');
    const forced = await ctx.flush(0);
    expect(forced.map((r) => [r.outcome, r.version])).toEqual([['APPLIED', 6]]);
    const [after] = await tablet.sync();
    expect(after!.versions.map((v) => [v.entityId, v.version, v.source, v.data])).toEqual([[e, 6, 'FORCED', { district: 'd1', n: 2 }]]);
    await tablet.expectInSync();
  });

  it('resolving a conflict changes no property: the entity stays in, and the device is handed nothing new', async () => {
    const ds = await ctx.newDataset(PROPS);
    const e = await ctx.newEntity(ds, 'Tree', d('d1'));
    await ctx.submit({ dataset: ds, entityId: e, action: 'UPDATE', baseVersion: 1, data: { n: 1 } });
    const [stale] = await ctx.submit({ dataset: ds, entityId: e, action: 'UPDATE', baseVersion: 1, data: { n: 2 } });
    expect(stale!.conflict).toBe('HARD');
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    await tablet.sync();
    await resolveConflict(ctx.db, { tokenId: null, role: 'admin', deviceId: null, datasets: null, subset: null }, { entityId: e, version: 3 });
    const page = await tablet.pullPage();
    expect([page.versions, page.entered, page.left]).toEqual([[], [], []]);
    await tablet.expectInSync();
  });

  it('a delete reaches a device that holds the entity; a deleted entity is never handed to one that did not', async () => {
    const ds = await ctx.newDataset(PROPS);
    const mine = await ctx.newEntity(ds, 'Mine', d('d1'));
    const theirs = await ctx.newEntity(ds, 'Theirs', d('d2'));
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    await tablet.sync();
    await ctx.submit({ dataset: ds, entityId: mine, action: 'DELETE', baseVersion: 1 }, { dataset: ds, entityId: theirs, action: 'DELETE', baseVersion: 1 });
    const [page] = await tablet.sync();
    expect(page!.versions.map((v) => [v.entityId, v.version, v.deleted])).toEqual([[mine, 2, true]]);
    await tablet.expectInSync();
    // Moved onto d2: the deleted entity there is not handed out; the one it held leaves.
    await tablet.reassign(district('d2'));
    const [moved] = await tablet.sync();
    expect([moved!.entered, moved!.left]).toEqual([[], [mine]]);
    expect(tablet.held.size).toBe(0);
    await tablet.expectInSync();
  });
});

describe('reassignment', () => {
  it('entities of the old share leave, those of the new enter at their current versions; a cursor from before still works', async () => {
    const ds = await ctx.newDataset(PROPS);
    const d1 = [await ctx.newEntity(ds, 'A', d('d1')), await ctx.newEntity(ds, 'B', d('d1'))];
    const d2 = [await ctx.newEntity(ds, 'C', d('d2')), await ctx.newEntity(ds, 'D', d('d2'))];
    const both = await ctx.newEntity(ds, 'E', { district: 'd1', status: 'x' });
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    await tablet.sync();
    const before = tablet.cursor;
    await ctx.submit({ dataset: ds, entityId: d2[0]!, action: 'UPDATE', baseVersion: 1, data: { n: 3 } }, { dataset: ds, entityId: d1[0]!, action: 'UPDATE', baseVersion: 1, data: { n: 4 } });
    await tablet.reassign(district('d2'));
    await ctx.submit({ dataset: ds, entityId: d2[1]!, action: 'UPDATE', baseVersion: 1, data: { n: 5 } });
    expect(tablet.cursor).toBe(before);
    const [page] = await tablet.sync();
    // Before the reassignment its old share moved on; then the moves; then the new share moved on.
    expect(page!.versions.map((v) => [v.entityId, v.version])).toEqual([
      [d1[0]!, 2],
      [d2[1]!, 2],
    ]);
    expect(page!.entered.map((v) => [v.entityId, v.version, v.data]).sort()).toEqual(
      [
        [d2[0]!, 2, { district: 'd2', n: 3 }],
        [d2[1]!, 1, { district: 'd2' }],
      ].sort(),
    );
    expect([...page!.left].sort()).toEqual([...d1, both].sort());
    expect([...tablet.held.keys()].sort()).toEqual([...d2].sort());
    expect(tablet.held.has(both)).toBe(false);
    await tablet.expectInSync();
    // Widened to both districts: only what it lacks enters.
    await tablet.reassign(district('d1', 'd2'));
    const [wider] = await tablet.sync();
    expect([wider!.versions, wider!.left]).toEqual([[], []]);
    expect(wider!.entered.map((v) => v.entityId).sort()).toEqual([...d1, both].sort());
    await tablet.expectInSync();
  });

  it('between two pages of one pull: nothing missed, nothing handed twice while held', async () => {
    const ds = await ctx.newDataset(PROPS);
    const d1 = await Promise.all(Array.from({ length: 12 }, (_, i) => ctx.newEntity(ds, `A${i}`, d('d1', { n: i }))));
    const d2 = await Promise.all(Array.from({ length: 12 }, (_, i) => ctx.newEntity(ds, `B${i}`, d('d2', { n: i }))));
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    const first = await tablet.pullPage(5);
    expect(first.hasMore).toBe(true);
    await tablet.reassign(district('d2'));
    await ctx.submit({ dataset: ds, entityId: d2[3]!, action: 'UPDATE', baseVersion: 1, data: { district: 'd3' } });
    await tablet.sync(5);
    await tablet.expectInSync();
    expect([...tablet.held.keys()].sort()).toEqual(d2.filter((_, i) => i !== 3).sort());
    expectNoRepeats(tablet);
    // And back, mid-page again.
    await ctx.submit({ dataset: ds, entityId: d1[0]!, action: 'UPDATE', baseVersion: 1, data: { n: 100 } });
    await tablet.reassign(district('d1'));
    await tablet.pullPage(3);
    await tablet.reassign(district('d1', 'd2'));
    await tablet.sync(4);
    await tablet.expectInSync();
    expectNoRepeats(tablet);
  });

  it('from and to the whole datasets', async () => {
    const ds = await ctx.newDataset(PROPS);
    const a = await ctx.newEntity(ds, 'A', d('d1'));
    const b = await ctx.newEntity(ds, 'B', d('d2'));
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    await tablet.sync();
    await tablet.reassign([]);
    const [all] = await tablet.sync();
    expect(all!.entered.map((v) => v.entityId)).toEqual([b]);
    await tablet.expectInSync();
    await ctx.submit({ dataset: ds, entityId: b, action: 'UPDATE', baseVersion: 1, data: { district: 'd9' } });
    await tablet.sync();
    expect(tablet.held.get(b)).toMatchObject({ version: 2 });
    await tablet.reassign(district('d1'));
    const [back] = await tablet.sync();
    expect(back!.left).toEqual([b]);
    expect([...tablet.held.keys()]).toEqual([a]);
    await tablet.expectInSync();
  });
});

describe('what a device with a subset may write', () => {
  it('changes inside its share as usual; anything it never could see is REJECTED OUTSIDE_SUBSET and recorded', async () => {
    const ds = await ctx.newDataset(PROPS);
    const inside = await ctx.newEntity(ds, 'In', d('d1'));
    const outside = await ctx.newEntity(ds, 'Out', d('d2'));
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    await tablet.sync();
    const made = randomUUID();
    const results = await tablet.submit(
      { entityId: inside, action: 'UPDATE', baseVersion: 1, data: { n: 1 } },
      { entityId: outside, action: 'UPDATE', baseVersion: 1, data: { n: 1 } },
      { entityId: outside, action: 'DELETE', baseVersion: 1 },
      { entityId: outside, action: 'CREATE', label: 'Same id', data: d('d1') },
      { entityId: randomUUID(), action: 'UPDATE', baseVersion: 1, data: { n: 1 } },
      { entityId: randomUUID(), action: 'CREATE', label: 'Elsewhere', data: d('d2') },
      { entityId: made, action: 'CREATE', label: 'New here', data: d('d1') },
    );
    expect(results.map((r) => [r.outcome, r.error?.code ?? null])).toEqual([
      ['APPLIED', null],
      ['REJECTED', 'OUTSIDE_SUBSET'],
      ['REJECTED', 'OUTSIDE_SUBSET'],
      ['REJECTED', 'OUTSIDE_SUBSET'],
      ['REJECTED', 'OUTSIDE_SUBSET'],
      ['REJECTED', 'OUTSIDE_SUBSET'],
      ['APPLIED', null],
    ]);
    expect(results[1]!.error!.message).toBe(`the entity is not in the token's subset: ${outside}`);
    // Recorded like every rejection; the entity outside untouched.
    expect(await ctx.logOf(results[1]!.changeId)).toMatchObject({ outcome: 'REJECTED', errorCode: 'OUTSIDE_SUBSET', entityId: outside });
    expect(await ctx.entity(outside)).toMatchObject({ version: 1, deleted: false, data: { district: 'd2' } });
    // An update that moves an entity out is accepted; the entity then leaves the share.
    const [out] = await tablet.submit({ entityId: made, action: 'UPDATE', baseVersion: 1, data: { district: 'd2' } });
    expect([out!.outcome, out!.version]).toEqual(['APPLIED', 2]);
    const [page] = await tablet.sync();
    expect(page!.left).toEqual([made]);
    await tablet.expectInSync();
    // It could see it before: a later edit of it (sent before it learned it left) is still accepted.
    const [late] = await tablet.submit({ entityId: made, action: 'UPDATE', baseVersion: 1, data: { n: 7 } });
    expect(late!.outcome).toBe('APPLIED');
  });

  it('a device of the whole dataset given its first rules while offline: its edits of what it had land; of what came after, not', async () => {
    const ds = await ctx.newDataset(PROPS);
    const e = await ctx.newEntity(ds, 'Tree', d('d1'));
    const gone = await ctx.newEntity(ds, 'Gone', d('d1'));
    await ctx.submit({ dataset: ds, entityId: gone, action: 'DELETE', baseVersion: 1 });
    const tablet = await newDevice(ctx.db, ds, null);
    await tablet.sync();
    expect([...tablet.held.keys()].sort()).toEqual([e, gone].sort());
    // Offline, it edits the tree; meanwhile the supervisor gives it the district d2, and someone
    // makes an entity in d1 it never had.
    await tablet.reassign(district('d2'));
    const later = await ctx.newEntity(ds, 'Later', d('d1'));
    const results = await tablet.submit(
      { entityId: e, action: 'UPDATE', baseVersion: 1, data: { n: 1 } },
      { entityId: gone, action: 'UPDATE', baseVersion: 2, data: { n: 1 } },
      { entityId: later, action: 'UPDATE', baseVersion: 1, data: { n: 1 } },
    );
    expect(results.map((r) => [r.outcome, r.error?.code ?? null])).toEqual([
      ['APPLIED', null],
      ['REJECTED', 'ENTITY_DELETED'],
      ['REJECTED', 'OUTSIDE_SUBSET'],
    ]);
    expect(await ctx.entity(e)).toMatchObject({ version: 2, data: { district: 'd1', n: 1 } });
    // Its next pull drops both it had, and hands nothing of them.
    const pages = await tablet.sync();
    expect(pages.flatMap((p) => p.left).sort()).toEqual([e, gone].sort());
    expect(pages.flatMap((p) => [...p.versions, ...p.entered])).toEqual([]);
    await tablet.expectInSync();
  });

  it('an offline device reassigned mid-run: its run on an entity it held lands whole, in any order; nothing it never saw does', async () => {
    const ds = await ctx.newDataset(PROPS);
    const e = await ctx.newEntity(ds, 'Tree', d('d1'));
    const elsewhere = await ctx.newEntity(ds, 'Elsewhere', d('d3'));
    const tablet = await newDevice(ctx.db, ds, district('d1'));
    await tablet.sync();
    // Offline: a run of three on version 1. Meanwhile the supervisor moves the tablet to d2, and
    // someone else edits the tree.
    const run = ctx.run(ds, e, 1);
    const steps = [run.update(1, { n: 1 }), run.update(2, { n: 2 }), run.update(3, { status: 'done' })];
    await tablet.reassign(district('d2'));
    await ctx.submit({ dataset: ds, entityId: e, action: 'UPDATE', baseVersion: 1, data: { status: 'seen' } });
    // Back online, its run arrives last step first.
    const { id: _1, dataset: _d1, ...third } = steps[2]!;
    const { id: _2, dataset: _d2, ...second } = steps[1]!;
    const { id: _3, dataset: _d3, ...firstStep } = steps[0]!;
    const held = await tablet.submit(third, second);
    expect(held.map((r) => r.outcome)).toEqual(['HELD', 'HELD']);
    const [landed] = await tablet.submit(firstStep);
    expect([landed!.outcome, ...landed!.released.map((r) => r.outcome)]).toEqual(['APPLIED', 'APPLIED', 'APPLIED']);
    expect(await ctx.entity(e)).toMatchObject({ version: 5, data: { district: 'd1', n: 2, status: 'done' } });
    // An entity it never could see, offline or not.
    const [refused] = await tablet.submit({ entityId: elsewhere, action: 'UPDATE', baseVersion: 1, data: { n: 1 } });
    expect(refused!.error?.code).toBe('OUTSIDE_SUBSET');
    // Its next pull drops the tree (not in d2) and hands nothing of it.
    const [page] = await tablet.sync();
    expect(page!.left).toEqual([e]);
    expect(page!.versions.filter((v) => v.entityId === e)).toEqual([]);
    await tablet.expectInSync();
  });
});

