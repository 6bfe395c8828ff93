import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, offline, offlineRun, type Domain, type Offline } from '../helpers/domain.js';

/** Offline runs against online edits and each other (DESIGN step 4), the author's and server's view, and inconsistent runs. */

const t = useApp();
const d = domain(t);
const o = offline(t);

const PROPS = ['species', 'height', 'age', 'note'];

describe('a run crossing an online update', () => {
  it('to the same property: HARD on every change of the run that sets it, also the second; SOFT on one that does not', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak', height: 0 });
    const run = offlineRun(ds, id, 1);
    // Online, meanwhile: height 10 as version 2.
    expect(await d.update(ds, id, 1, { height: 10 })).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null });

    expect(await o.one(run.update(1, { height: 1 }))).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['height'] });
    // The server's current version is its own predecessor, but the author never saw version 2.
    expect(await o.one(run.update(2, { height: 2 }))).toMatchObject({ outcome: 'APPLIED', version: 4, conflict: 'HARD', conflictingProperties: ['height'] });
    expect(await o.one(run.update(3, { age: 3 }))).toMatchObject({ outcome: 'APPLIED', version: 5, conflict: 'SOFT', conflictingProperties: [] });

    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ version: 5, conflict: 'HARD', data: { species: 'oak', height: 2, age: 3 } });
    expect(e.versions.map((v) => [v.version, v.source, v.appliedOn, v.baseVersion, v.conflict, v.conflictingProperties])).toEqual([
      [1, 'ONLINE', null, null, null, []],
      [2, 'ONLINE', 1, 1, null, []],
      // appliedOn: the run's first change against its trunk (1), later ones against their predecessor.
      [3, 'IN_ORDER', 1, 1, 'HARD', ['height']],
      [4, 'IN_ORDER', 3, 2, 'HARD', ['height']],
      [5, 'IN_ORDER', 4, 3, 'SOFT', []],
    ]);
    // Author's view and server's view of the first change: the author saw height 0, the server had 10.
    expect(e.versions[2]).toMatchObject({
      baseDiff: [{ property: 'height', old: 0, new: 1 }],
      serverDiff: [{ property: 'height', old: 10, new: 1 }],
      authorViewUnavailable: null,
    });
    // After a change of the run applied in conflict, no server version equals what the author saw.
    expect(e.versions.slice(3).map((v) => [v.baseDiff, v.authorViewUnavailable])).toEqual([
      [null, 'an earlier change of the run was applied in conflict'],
      [null, 'an earlier change of the run was applied in conflict'],
    ]);
    expect(e.versions[3]!.serverDiff).toEqual([{ property: 'height', old: 1, new: 2 }]);
    expect(e.versions[4]!.serverDiff).toEqual([{ property: 'age', old: null, new: 3 }]);
  });

  it('to different properties: SOFT on every change of the run; an online update made after it sees no conflict', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    const run = offlineRun(ds, id, 1);
    await d.update(ds, id, 1, { age: 50 });

    expect(await o.one(run.update(1, { height: 1 }))).toMatchObject({ version: 3, conflict: 'SOFT', conflictingProperties: [] });
    expect(await o.one(run.update(2, { height: 2 }, { label: 'Old oak' }))).toMatchObject({ version: 4, conflict: 'SOFT', conflictingProperties: [] });
    expect(await d.update(ds, id, 4, { note: 'seen all' })).toMatchObject({ version: 5, conflict: null });

    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ label: 'Old oak', version: 5, conflict: 'SOFT', data: { species: 'oak', age: 50, height: 2, note: 'seen all' } });
    expect(e.versions[2]).toMatchObject({ baseDiff: [{ property: 'height', old: null, new: 1 }], serverDiff: [{ property: 'height', old: null, new: 1 }] });
    expect(e.versions[3]).toMatchObject({ label: 'Old oak', changed: { height: 2, label: 'Old oak' }, baseDiff: null, serverDiff: [{ property: 'label', old: 'Oak', new: 'Old oak' }, { property: 'height', old: 1, new: 2 }] });
  });

  it('a reversed run crossing an online update: released changes are checked like in-order ones', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 0 });
    const run = offlineRun(ds, id, 1);
    const [c1, c2] = [run.update(1, { note: 'a' }), run.update(2, { height: 2 })];
    expect(await o.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    await d.update(ds, id, 1, { height: 10 });
    const r = await o.one(c1);
    expect(r).toMatchObject({ version: 3, conflict: 'SOFT', conflictingProperties: [] });
    expect(r.released.map((x) => [x.changeId, x.version, x.conflict, x.conflictingProperties])).toEqual([[c2.id, 4, 'HARD', ['height']]]);
    expect(await o.history(id)).toEqual([
      [1, 'ONLINE', null, { height: 0 }],
      [2, 'ONLINE', null, { height: 10 }],
      [3, 'IN_ORDER', 'SOFT', { height: 10, note: 'a' }],
      [4, 'RELEASED', 'HARD', { height: 2, note: 'a' }],
    ]);
  });
});

describe('two runs from two devices on one entity, interleaved', () => {
  it('each run is ordered on its own; each conflicts only with the other run', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    const a = offlineRun(ds, id, 1, { deviceId: 'phone-a' });
    const b = offlineRun(ds, id, 1, { deviceId: 'phone-b' });
    const [a1, a2] = [a.update(1, { height: 1 }), a.update(2, { height: 2 })];
    const [b1, b2] = [b.update(1, { age: 1 }), b.update(2, { height: 20, note: 'b' })];

    expect(await o.one(a2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(await o.one(b1)).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null, released: [] });
    const ra = await o.one(a1);
    expect(ra).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'SOFT', conflictingProperties: [] });
    expect(ra.released.map((r) => [r.changeId, r.version, r.conflict, r.conflictingProperties])).toEqual([[a2.id, 4, 'SOFT', []]]);
    expect(await o.one(b2)).toMatchObject({ outcome: 'APPLIED', version: 5, conflict: 'HARD', conflictingProperties: ['height'], released: [] });

    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ version: 5, conflict: 'HARD', data: { species: 'oak', height: 20, age: 1, note: 'b' } });
    expect(e.versions.map((v) => [v.version, v.changeId, v.branchId, v.deviceId, v.source, v.appliedOn, v.branchBaseVersion, v.conflict])).toEqual([
      [1, e.versions[0]!.changeId, null, null, 'ONLINE', null, null, null],
      [2, b1.id, b.branchId, 'phone-b', 'IN_ORDER', 1, 1, null],
      [3, a1.id, a.branchId, 'phone-a', 'IN_ORDER', 1, 1, 'SOFT'],
      [4, a2.id, a.branchId, 'phone-a', 'RELEASED', 3, 2, 'SOFT'],
      // Applied against its predecessor b1 (version 2), though a's versions 3 and 4 came in between.
      [5, b2.id, b.branchId, 'phone-b', 'IN_ORDER', 2, 2, 'HARD'],
    ]);
    expect(e.versions.map((v) => v.data)).toEqual([
      { species: 'oak' },
      { species: 'oak', age: 1 },
      { species: 'oak', age: 1, height: 1 },
      { species: 'oak', age: 1, height: 2 },
      { species: 'oak', age: 1, height: 20, note: 'b' },
    ]);
    const branches = new Map(e.branches.map((x) => [x.id, x]));
    expect(branches.size).toBe(2);
    expect(branches.get(a.branchId)!.changes.map((c) => [c.position, c.changeId, c.state, c.version])).toEqual([[1, a1.id, 'APPLIED', 3], [2, a2.id, 'APPLIED', 4]]);
    expect(branches.get(b.branchId)!.changes.map((c) => [c.position, c.changeId, c.state, c.version])).toEqual([[1, b1.id, 'APPLIED', 2], [2, b2.id, 'APPLIED', 5]]);
    expect(await o.held({ entityId: id })).toEqual([]);
  });
});

describe('inconsistent runs are rejected, recorded, and change nothing', () => {
  it('BASE_BELOW_TRUNK: baseVersion below the run\'s trunkVersion', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    await d.update(ds, id, 1, { height: 1 });
    const run = offlineRun(ds, id, 2);
    await d.expectRejected(await o.one(run.update(1, { height: 5 }, { baseVersion: 1 })), 'BASE_BELOW_TRUNK');
    expect((await o.entity(id))!).toMatchObject({ version: 2, data: { height: 1 }, branches: [] });
    expect(await o.held({ entityId: id })).toEqual([]);
  });

  it('BRANCH_TRUNK_CHANGED: a later change of the run names another trunkVersion, applied or held', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    await d.update(ds, id, 1, { note: 'online' });
    const run = offlineRun(ds, id, 1);
    expect(await o.one(run.update(1, { height: 1 }))).toMatchObject({ outcome: 'APPLIED', version: 3 });
    await d.expectRejected(await o.one(run.update(2, { height: 2 }, { trunkVersion: 2 })), 'BRANCH_TRUNK_CHANGED');

    const created = randomUUID();
    const offlineCreated = offlineRun(ds, created, null);
    expect(await o.one(offlineCreated.update(2, { height: 2 }))).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    await d.expectRejected(await o.one(offlineCreated.update(3, { height: 3 }, { trunkVersion: 1 })), 'BRANCH_TRUNK_CHANGED');

    expect((await o.entity(id))!).toMatchObject({ version: 3, data: { note: 'online', height: 1 } });
    expect((await o.held({ entityId: created })).map((h) => h.baseVersion)).toEqual([2]);
  });

  it('BRANCH_POSITION_TAKEN: another change id at an applied or a held position of the run', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    const run = offlineRun(ds, id, 1);
    const [c1, c3] = [run.update(1, { height: 1 }), run.update(3, { height: 3 })];
    expect(await o.one(c1)).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(await o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    await d.expectRejected(await o.one(run.update(1, { height: 9 })), 'BRANCH_POSITION_TAKEN');
    await d.expectRejected(await o.one(run.update(3, { height: 9 })), 'BRANCH_POSITION_TAKEN');

    // A second offline create in a run that already has one.
    const other = randomUUID();
    const created = offlineRun(ds, other, null);
    expect(await o.one(created.create('First'))).toMatchObject({ outcome: 'APPLIED', version: 1 });
    await d.expectRejected(await o.one(created.create('Second')), 'BRANCH_POSITION_TAKEN');

    expect((await o.entity(id))!).toMatchObject({ version: 2, data: { height: 1 } });
    expect((await o.held({ entityId: id })).map((h) => h.changeId)).toEqual([c3.id]);
    expect((await o.entity(other))!).toMatchObject({ label: 'First', version: 1 });
  });

  it('BRANCH_ON_OTHER_ENTITY: a branch id already used on another entity', async () => {
    const ds = await d.createDataset(PROPS);
    const first = await d.create(ds, 'Oak');
    const second = await d.create(ds, 'Elm');
    const run = offlineRun(ds, first, 1);
    expect(await o.one(run.update(1, { height: 1 }))).toMatchObject({ outcome: 'APPLIED', version: 2 });
    await d.expectRejected(await o.one(run.update(2, { height: 2 }, { entityId: second })), 'BRANCH_ON_OTHER_ENTITY');
    await d.expectRejected(await o.one(run.update(1, { height: 2 }, { entityId: second })), 'BRANCH_ON_OTHER_ENTITY');

    // Also when the run so far is only held.
    const third = await d.create(ds, 'Ash');
    const heldRun = offlineRun(ds, third, 1);
    expect(await o.one(heldRun.update(2, { height: 2 }))).toMatchObject({ outcome: 'HELD' });
    await d.expectRejected(await o.one(heldRun.update(1, { height: 1 }, { entityId: second })), 'BRANCH_ON_OTHER_ENTITY');

    expect((await o.entity(second))!).toMatchObject({ version: 1, data: {}, branches: [] });
    expect(await o.held({ entityId: second })).toEqual([]);
    expect((await o.held({ entityId: third })).map((h) => h.baseVersion)).toEqual([2]);
  });

  it('ENTITY_EXISTS: a held change of one dataset never lands on an entity of another (its id is taken there), released or forced', async () => {
    const a = await d.createDataset(['x']);
    const b = await d.createDataset(['y']);

    // Released: the run's updates were sent to dataset a, its create (arriving last) to dataset b.
    const released = randomUUID();
    const run = offlineRun(a, released, null);
    const u1 = run.update(1, { x: 1 });
    expect(await o.one(u1)).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    const created = await o.one({ ...run.create('In b', { y: 1 }), dataset: b });
    expect(created).toMatchObject({ outcome: 'APPLIED', version: 1 });
    expect(created.released.filter((r) => r.outcome === 'APPLIED')).toEqual([]);

    // Forced: the entity was made in dataset b meanwhile by someone else.
    const forced = randomUUID();
    const u = offlineRun(a, forced, null).update(1, { x: 2 });
    expect(await o.one(u)).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    await d.create(b, 'Also in b', { y: 2 }, forced);
    await o.flush(0);

    for (const [id, change, data] of [[released, u1, { y: 1 }], [forced, u, { y: 2 }]] as const) {
      const e = (await o.entity(id))!;
      expect(e, id).toMatchObject({ dataset: { name: b }, version: 1, data });
      expect((await d.change(change.id))!).toMatchObject({ outcome: 'REJECTED', errorCode: 'ENTITY_EXISTS', version: null });
      expect(await o.held({ entityId: id })).toEqual([]);
    }
  });
});
