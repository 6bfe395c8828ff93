import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, offline, offlineRun, type ChangeInput } from '../helpers/domain.js';

/**
 * Issue 11: an offline run as ODK Collect sends it. The create carries no branchId; the run's
 * updates carry the branchId, trunkVersion null and baseVersion 1, 2, … (DESIGN steps 2 and 6:
 * the run's create is the entity's version 1, with or without the run's branchId).
 */
const t = useApp();
const d = domain(t);
const o = offline(t);

const PROPS = ['species', 'height', 'health'];

/** A Collect run: the create without the run's id, the updates with it. */
function collectRun(ds: string, entityId = randomUUID()) {
  const run = offlineRun(ds, entityId, null, { deviceId: 'collect-1' });
  return {
    ...run,
    create: (label: string, data: Record<string, unknown>): ChangeInput & { id: string } => ({ ...run.create(label, data), branchId: null }),
  };
}

const history = async (id: string) =>
  (await o.entity(id))!.versions.map((v) => ({ version: v.version, action: v.action, source: v.source, appliedOn: v.appliedOn, branchId: v.branchId, branchBaseVersion: v.branchBaseVersion, conflict: v.conflict, label: v.label, data: v.data }));

describe('runs as ODK Collect sends them', () => {
  it('create, then its updates: each applies at once on its predecessor, no conflict, nothing held', async () => {
    const ds = await d.createDataset(PROPS);
    const run = collectRun(ds);
    const [create, u1, u2] = [run.create('Oak', { species: 'oak' }), run.update(1, { height: 1 }), run.update(2, { health: 'good' })];
    expect(await o.one(create)).toMatchObject({ outcome: 'APPLIED', version: 1, conflict: null });
    expect(await o.one(u1)).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null, waitsFor: null });
    expect(await o.one(u2)).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: null });
    expect(await history(run.entityId)).toEqual([
      { version: 1, action: 'CREATE', source: 'ONLINE', appliedOn: null, branchId: null, branchBaseVersion: null, conflict: null, label: 'Oak', data: { species: 'oak' } },
      { version: 2, action: 'UPDATE', source: 'IN_ORDER', appliedOn: 1, branchId: run.branchId, branchBaseVersion: 1, conflict: null, label: 'Oak', data: { species: 'oak', height: 1 } },
      { version: 3, action: 'UPDATE', source: 'IN_ORDER', appliedOn: 2, branchId: run.branchId, branchBaseVersion: 2, conflict: null, label: 'Oak', data: { species: 'oak', height: 1, health: 'good' } },
    ]);
    const e = (await o.entity(run.entityId))!;
    expect(e.conflict).toBeNull();
    expect(e.versions[1]).toMatchObject({ baseDiff: [{ property: 'height', old: null, new: 1 }], authorViewUnavailable: null });
    // The run counts the branchless create as its first change: no gap.
    expect(e.branches).toEqual([expect.objectContaining({ id: run.branchId, trunkVersion: null, missing: [], changes: [
      expect.objectContaining({ position: 0, changeId: create.id, state: 'APPLIED', version: 1 }),
      expect.objectContaining({ position: 1, changeId: u1.id, state: 'APPLIED', version: 2 }),
      expect.objectContaining({ position: 2, changeId: u2.id, state: 'APPLIED', version: 3 }),
    ] })]);
    expect(await o.held({ entityId: run.entityId })).toEqual([]);
  });

  it('updates first, then the create: the updates are held, the create applies as version 1 and releases them in run order', async () => {
    const ds = await d.createDataset(PROPS);
    const run = collectRun(ds);
    const [create, u1, u2] = [run.create('Oak', { species: 'oak' }), run.update(1, { height: 1 }), run.update(2, { height: 2, health: 'good' })];
    expect(await o.one(u2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(await o.one(u1)).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    const created = await o.one(create);
    expect(created).toMatchObject({ outcome: 'APPLIED', version: 1, conflict: null });
    expect(created.released.map((r) => [r.changeId, r.outcome, r.version, r.conflict])).toEqual([
      [u1.id, 'APPLIED', 2, null],
      [u2.id, 'APPLIED', 3, null],
    ]);
    expect(await history(run.entityId)).toEqual([
      // The create took the run's id (it is the run's position 0).
      { version: 1, action: 'CREATE', source: 'IN_ORDER', appliedOn: null, branchId: run.branchId, branchBaseVersion: 0, conflict: null, label: 'Oak', data: { species: 'oak' } },
      { version: 2, action: 'UPDATE', source: 'RELEASED', appliedOn: 1, branchId: run.branchId, branchBaseVersion: 1, conflict: null, label: 'Oak', data: { species: 'oak', height: 1 } },
      { version: 3, action: 'UPDATE', source: 'RELEASED', appliedOn: 2, branchId: run.branchId, branchBaseVersion: 2, conflict: null, label: 'Oak', data: { species: 'oak', height: 2, health: 'good' } },
    ]);
    expect(await o.held({ entityId: run.entityId })).toEqual([]);
    expect((await o.entity(run.entityId))!.conflict).toBeNull();
  });

  it('in one batch, updates before the create: all land in run order', async () => {
    const ds = await d.createDataset(PROPS);
    const run = collectRun(ds);
    const [create, u1, u2] = [run.create('Oak', { species: 'oak' }), run.update(1, { height: 1 }), run.update(2, { height: 2 })];
    const r = await o.submit(u2, u1, create);
    expect(r.map((x) => x.outcome)).toEqual(['HELD', 'HELD', 'APPLIED']);
    expect(r[2]!.released.map((x) => [x.changeId, x.version])).toEqual([[u1.id, 2], [u2.id, 3]]);
    expect((await o.entity(run.entityId))!).toMatchObject({ version: 3, conflict: null, data: { species: 'oak', height: 2 } });
  });

  it('an update forced into existence, then the late create: not ENTITY_EXISTS; its label and properties replace the placeholder beneath the forced values', async () => {
    const ds = await d.createDataset(PROPS);
    const run = collectRun(ds);
    const [create, u1] = [run.create('Birch', { species: 'birch', height: 9 }), run.update(1, { height: 1 })];
    expect(await o.one(u1)).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    expect((await o.flush(0)).filter((r) => r.entityId === run.entityId).map((r) => [r.changeId, r.outcome, r.version])).toEqual([[u1.id, 'APPLIED', 1]]);
    expect((await o.entity(run.entityId))!).toMatchObject({ label: '(label unknown)', version: 1, data: { height: 1 } });

    const late = await o.one(create);
    // Beneath the forced update: height stays the run's later value; its overlap (height) is checked.
    expect(late).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: 'HARD', conflictingProperties: ['height'], error: null });
    const e = (await o.entity(run.entityId))!;
    expect(e).toMatchObject({ label: 'Birch', version: 2, data: { species: 'birch', height: 1 } });
    expect(e.versions[1]).toMatchObject({ action: 'UPDATE', branchId: run.branchId, branchBaseVersion: 0, appliedOn: null, changeId: create.id, changed: { species: 'birch', label: 'Birch' } });
    expect(await o.one(create)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 2 });
  });

  it('a forced update that carried its own label keeps it over the late create (run order is the author\'s intent)', async () => {
    const ds = await d.createDataset(PROPS);
    const run = collectRun(ds);
    const [create, u1] = [run.create('Birch', { species: 'birch' }), run.update(1, { health: 'poor' }, { label: 'Birch (dying)' })];
    expect(await o.one(u1)).toMatchObject({ outcome: 'HELD' });
    await o.flush(0);
    expect(await o.one(create)).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: 'HARD', conflictingProperties: ['label'] });
    expect((await o.entity(run.entityId))!).toMatchObject({ label: 'Birch (dying)', data: { species: 'birch', health: 'poor' } });
  });

  it('a create that is not its run\'s: a plain create of an id in use is still ENTITY_EXISTS', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    await d.expectRejected(await o.one({ id: randomUUID(), dataset: ds, entityId: id, action: 'CREATE', label: 'Again' }), 'ENTITY_EXISTS');
  });
});

describe('conflict facts a dashboard can trust', () => {
  it('appliedOn of a run\'s later change is its predecessor\'s version, though an online edit came in between', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    expect(await d.update(ds, id, 1, { height: 2 })).toMatchObject({ version: 2 });
    const run = offlineRun(ds, id, 2);
    expect(await o.one(run.update(1, { health: 'good' }))).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: null });
    // Online, meanwhile: version 4.
    expect(await d.update(ds, id, 3, { species: 'Quercus' })).toMatchObject({ version: 4, conflict: null });
    expect(await o.one(run.update(2, { height: 3 }))).toMatchObject({ outcome: 'APPLIED', version: 5, conflict: 'SOFT' });
    const e = (await o.entity(id))!;
    expect(e.versions.map((v) => [v.version, v.appliedOn])).toEqual([[1, null], [2, 1], [3, 2], [4, 3], [5, 3]]);
  });

  it('a property both sides set to the same value is not conflicting: SOFT, not HARD', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 10 });
    expect(await d.update(ds, id, 1, { height: 14, health: 'good' })).toMatchObject({ version: 2 });
    // Made on version 1, setting height to what version 2 already set, and a property v2 did not touch.
    expect(await d.update(ds, id, 1, { height: 14, species: 'oak' })).toMatchObject({ version: 3, conflict: 'SOFT', conflictingProperties: [] });
    // The same property to another value is HARD.
    expect(await d.update(ds, id, 1, { health: 'poor' })).toMatchObject({ version: 4, conflict: 'HARD', conflictingProperties: ['health'] });
    // Compared with the latest unseen write: v4 set health to poor, so poor again is no lost write.
    expect(await d.update(ds, id, 3, { health: 'poor' })).toMatchObject({ version: 5, conflict: 'SOFT', conflictingProperties: [] });
    expect((await d.entity(id))!.versions.map((v) => [v.version, v.conflict, v.conflictingProperties])).toEqual([
      [1, null, []],
      [2, null, []],
      [3, 'SOFT', []],
      [4, 'HARD', ['health']],
      [5, 'SOFT', []],
    ]);
  });

  it('a run setting what an online edit set, to the same value: SOFT on every change of the run', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 10 });
    const run = offlineRun(ds, id, 1);
    expect(await d.update(ds, id, 1, { height: 12 })).toMatchObject({ version: 2 });
    expect(await o.one(run.update(1, { height: 12 }))).toMatchObject({ version: 3, conflict: 'SOFT', conflictingProperties: [] });
    expect(await o.one(run.update(2, { height: 13 }))).toMatchObject({ version: 4, conflict: 'HARD', conflictingProperties: ['height'] });
  });
});
