import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, offline, offlineRun, type Domain, type Offline } from '../helpers/domain.js';

/** Offline runs delivered in order, reversed, with the create last, and resent (DESIGN steps 2 and 5). */

const t = useApp();
const d = domain(t);
const o = offline(t);

const PROPS = ['species', 'height', 'age', 'note'];

describe('a run on a server version', () => {
  it('a run of 3 delivered in order: versions 2, 3, 4, IN_ORDER, no conflict, diffs per step', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    const run = offlineRun(ds, id, 1);
    const [c1, c2, c3] = [run.update(1, { height: 1 }), run.update(2, { height: 2 }), run.update(3, { age: 3 })];

    for (const [c, v] of [[c1, 2], [c2, 3], [c3, 4]] as const) {
      expect(await o.one(c)).toEqual({
        changeId: c.id, outcome: 'APPLIED', originalOutcome: null, entityId: id, version: v,
        conflict: null, conflictingProperties: [], error: null, waitsFor: null, released: [],
      });
    }

    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ label: 'Oak', version: 4, conflict: null, data: { species: 'oak', height: 2, age: 3 } });
    expect(e.versions.slice(1).map(({ version, appliedOn, source, branchId, trunkVersion, baseVersion, branchBaseVersion, changeId, data, conflict, baseDiff, serverDiff, authorViewUnavailable }) =>
      ({ version, appliedOn, source, branchId, trunkVersion, baseVersion, branchBaseVersion, changeId, data, conflict, baseDiff, serverDiff, authorViewUnavailable }))).toEqual([
      { version: 2, appliedOn: 1, source: 'IN_ORDER', branchId: run.branchId, trunkVersion: 1, baseVersion: 1, branchBaseVersion: 1, changeId: c1.id, data: { species: 'oak', height: 1 }, conflict: null,
        baseDiff: [{ property: 'height', old: null, new: 1 }], serverDiff: [{ property: 'height', old: null, new: 1 }], authorViewUnavailable: null },
      { version: 3, appliedOn: 2, source: 'IN_ORDER', branchId: run.branchId, trunkVersion: 1, baseVersion: 2, branchBaseVersion: 2, changeId: c2.id, data: { species: 'oak', height: 2 }, conflict: null,
        baseDiff: [{ property: 'height', old: 1, new: 2 }], serverDiff: [{ property: 'height', old: 1, new: 2 }], authorViewUnavailable: null },
      { version: 4, appliedOn: 3, source: 'IN_ORDER', branchId: run.branchId, trunkVersion: 1, baseVersion: 3, branchBaseVersion: 3, changeId: c3.id, data: { species: 'oak', height: 2, age: 3 }, conflict: null,
        baseDiff: [{ property: 'age', old: null, new: 3 }], serverDiff: [{ property: 'age', old: null, new: 3 }], authorViewUnavailable: null },
    ]);
    // The online create is no run's.
    expect(e.versions[0]).toMatchObject({ source: 'ONLINE', branchId: null, trunkVersion: null, branchBaseVersion: null });

    const branch = {
      id: run.branchId, entityId: id, trunkVersion: 1, missing: [],
      changes: [
        { position: 1, changeId: c1.id, state: 'APPLIED', version: 2, heldSince: null },
        { position: 2, changeId: c2.id, state: 'APPLIED', version: 3, heldSince: null },
        { position: 3, changeId: c3.id, state: 'APPLIED', version: 4, heldSince: null },
      ],
    };
    expect(e.branches).toEqual([branch]);
    expect(await o.branch(run.branchId)).toEqual(branch);
    expect(await o.held({ entityId: id })).toEqual([]);
  });

  it('a run of 3 delivered reversed: 3 and 2 are HELD, then all land on 1\'s request as versions 2, 3, 4', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    const run = offlineRun(ds, id, 1, { deviceId: 'phone-1' });
    const [c1, c2, c3] = [run.update(1, { height: 1 }), run.update(2, { height: 2 }), run.update(3, { age: 3 })];

    expect(await o.one(c3)).toMatchObject({ changeId: c3.id, outcome: 'HELD', entityId: id, version: null, conflict: null, waitsFor: 2, released: [], error: null });
    expect(await o.one(c2)).toMatchObject({ changeId: c2.id, outcome: 'HELD', entityId: id, version: null, conflict: null, waitsFor: 1, released: [], error: null });
    expect((await o.entity(id))!).toMatchObject({ version: 1, data: { species: 'oak' } });

    // The backlog, oldest first, with its times: forceAfter is heldSince plus the hold timeout (300 s by default).
    const held = await o.held({ entityId: id });
    expect(held.map(({ heldSince: _h, forceAfter: _f, ...rest }) => rest)).toEqual([
      { changeId: c3.id, entityId: id, dataset: ds, deviceId: 'phone-1', branchId: run.branchId, trunkVersion: 1, baseVersion: 3, waitsFor: 2 },
      { changeId: c2.id, entityId: id, dataset: ds, deviceId: 'phone-1', branchId: run.branchId, trunkVersion: 1, baseVersion: 2, waitsFor: 1 },
    ]);
    for (const h of held) expect(Date.parse(h.forceAfter) - Date.parse(h.heldSince)).toBe(300_000);
    expect(Date.parse(held[0]!.heldSince)).toBeLessThanOrEqual(Date.parse(held[1]!.heldSince));
    expect(await o.held({ branchId: run.branchId })).toEqual(held);
    expect(await o.held({ dataset: ds })).toEqual(held);
    expect(await o.held({ entityId: randomUUID() })).toEqual([]);

    const waiting = (await o.branch(run.branchId))!;
    expect(waiting).toMatchObject({ trunkVersion: 1, missing: [{ from: 1, to: 1 }] });
    expect(waiting.changes.map(({ position, changeId, state, version }) => ({ position, changeId, state, version }))).toEqual([
      { position: 2, changeId: c2.id, state: 'HELD', version: null },
      { position: 3, changeId: c3.id, state: 'HELD', version: null },
    ]);
    expect(waiting.changes.map((c) => c.heldSince)).toEqual([held[1]!.heldSince, held[0]!.heldSince]);
    expect((await d.change(c3.id))!).toMatchObject({ outcome: 'HELD', version: null });

    const landed = await o.one(c1);
    expect(landed).toMatchObject({ changeId: c1.id, outcome: 'APPLIED', version: 2, conflict: null, waitsFor: null });
    expect(landed.released.map(({ changeId, outcome, version, conflict, entityId }) => ({ changeId, outcome, version, conflict, entityId }))).toEqual([
      { changeId: c2.id, outcome: 'APPLIED', version: 3, conflict: null, entityId: id },
      { changeId: c3.id, outcome: 'APPLIED', version: 4, conflict: null, entityId: id },
    ]);

    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ version: 4, conflict: null, data: { species: 'oak', height: 2, age: 3 } });
    expect(e.versions.map(({ version, source, changeId, data, baseVersion, appliedOn, conflict }) => ({ version, source, changeId, data, baseVersion, appliedOn, conflict }))).toEqual([
      { version: 1, source: 'ONLINE', changeId: e.versions[0]!.changeId, data: { species: 'oak' }, baseVersion: null, appliedOn: null, conflict: null },
      { version: 2, source: 'IN_ORDER', changeId: c1.id, data: { species: 'oak', height: 1 }, baseVersion: 1, appliedOn: 1, conflict: null },
      { version: 3, source: 'RELEASED', changeId: c2.id, data: { species: 'oak', height: 2 }, baseVersion: 2, appliedOn: 2, conflict: null },
      { version: 4, source: 'RELEASED', changeId: c3.id, data: { species: 'oak', height: 2, age: 3 }, baseVersion: 3, appliedOn: 3, conflict: null },
    ]);
    // Released in order, each on its predecessor: the author's view is that predecessor.
    expect(e.versions[2]).toMatchObject({ baseDiff: [{ property: 'height', old: 1, new: 2 }], authorViewUnavailable: null, deviceId: 'phone-1' });
    expect(e.versions[3]).toMatchObject({ baseDiff: [{ property: 'age', old: null, new: 3 }], authorViewUnavailable: null });
    expect(await o.held({ entityId: id })).toEqual([]);
    expect((await o.branch(run.branchId))!.missing).toEqual([]);
    for (const [c, v] of [[c2, 3], [c3, 4]] as const) expect((await d.change(c.id))!).toMatchObject({ outcome: 'APPLIED', version: v });
  });

  it('a reversed run in one batch: results in input order, the last carries the released chain', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    const run = offlineRun(ds, id, 1);
    const [c1, c2, c3] = [run.update(1, { height: 1 }), run.update(2, { height: 2 }), run.update(3, { height: 3 })];
    const results = await o.submit(c3, c2, c1);
    expect(results.map((r) => [r.changeId, r.outcome, r.version, r.waitsFor])).toEqual([
      [c3.id, 'HELD', null, 2],
      [c2.id, 'HELD', null, 1],
      [c1.id, 'APPLIED', 2, null],
    ]);
    expect(results[2]!.released.map((r) => [r.changeId, r.version])).toEqual([[c2.id, 3], [c3.id, 4]]);
    expect(await o.history(id)).toEqual([
      [1, 'ONLINE', null, {}],
      [2, 'IN_ORDER', null, { height: 1 }],
      [3, 'RELEASED', null, { height: 2 }],
      [4, 'RELEASED', null, { height: 3 }],
    ]);
  });
});

describe('a run that begins with an offline create', () => {
  it('create + 2 updates with the create last: the updates wait for position 0, then land after it as versions 2, 3', async () => {
    const ds = await d.createDataset(PROPS);
    const id = randomUUID();
    const run = offlineRun(ds, id, null);
    const create = run.create('Birch', { species: 'birch' });
    const [u1, u2] = [run.update(1, { height: 1 }), run.update(2, { height: 2, age: 5 })];
    expect([u1.baseVersion, u2.baseVersion, u1.trunkVersion]).toEqual([1, 2, null]);

    expect(await o.one(u2)).toMatchObject({ outcome: 'HELD', entityId: id, version: null, waitsFor: 1 });
    expect(await o.one(u1)).toMatchObject({ outcome: 'HELD', entityId: id, version: null, waitsFor: 0 });
    expect(await o.entity(id)).toBeNull();
    expect((await o.held({ entityId: id })).map((h) => [h.changeId, h.trunkVersion, h.baseVersion, h.waitsFor])).toEqual([
      [u2.id, null, 2, 1],
      [u1.id, null, 1, 0],
    ]);
    const waiting = (await o.branch(run.branchId))!;
    expect(waiting).toMatchObject({ id: run.branchId, entityId: id, trunkVersion: null, missing: [{ from: 0, to: 0 }] });
    expect(waiting.changes.map((c) => [c.position, c.state, c.version])).toEqual([[1, 'HELD', null], [2, 'HELD', null]]);

    const created = await o.one(create);
    expect(created).toMatchObject({ changeId: create.id, outcome: 'APPLIED', version: 1, conflict: null });
    expect(created.released.map((r) => [r.changeId, r.outcome, r.version, r.conflict])).toEqual([
      [u1.id, 'APPLIED', 2, null],
      [u2.id, 'APPLIED', 3, null],
    ]);

    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ label: 'Birch', version: 3, conflict: null, data: { species: 'birch', height: 2, age: 5 } });
    expect(e.versions.map(({ version, action, source, label, data, appliedOn, branchId, trunkVersion, branchBaseVersion, baseDiff, authorViewUnavailable }) =>
      ({ version, action, source, label, data, appliedOn, branchId, trunkVersion, branchBaseVersion, baseDiff, authorViewUnavailable }))).toEqual([
      { version: 1, action: 'CREATE', source: 'IN_ORDER', label: 'Birch', data: { species: 'birch' }, appliedOn: null, branchId: run.branchId, trunkVersion: null, branchBaseVersion: 0,
        baseDiff: [{ property: 'label', old: null, new: 'Birch' }, { property: 'species', old: null, new: 'birch' }], authorViewUnavailable: null },
      { version: 2, action: 'UPDATE', source: 'RELEASED', label: 'Birch', data: { species: 'birch', height: 1 }, appliedOn: 1, branchId: run.branchId, trunkVersion: null, branchBaseVersion: 1,
        baseDiff: [{ property: 'height', old: null, new: 1 }], authorViewUnavailable: null },
      { version: 3, action: 'UPDATE', source: 'RELEASED', label: 'Birch', data: { species: 'birch', height: 2, age: 5 }, appliedOn: 2, branchId: run.branchId, trunkVersion: null, branchBaseVersion: 2,
        baseDiff: [{ property: 'age', old: null, new: 5 }, { property: 'height', old: 1, new: 2 }], authorViewUnavailable: null },
    ]);
    expect(e.branches).toHaveLength(1);
    expect(e.branches[0]).toMatchObject({ id: run.branchId, trunkVersion: null, missing: [] });
    expect(e.branches[0]!.changes.map((c) => [c.position, c.changeId, c.state, c.version])).toEqual([
      [0, create.id, 'APPLIED', 1],
      [1, u1.id, 'APPLIED', 2],
      [2, u2.id, 'APPLIED', 3],
    ]);
    expect(await o.held({ entityId: id })).toEqual([]);
  });

  it('create + updates in order: IN_ORDER each, nothing held', async () => {
    const ds = await d.createDataset(PROPS);
    const id = randomUUID();
    const run = offlineRun(ds, id, null);
    const results = await o.submit(run.create('Ash', { species: 'ash' }), run.update(1, { height: 4 }), run.update(2, { note: 'n' }));
    expect(results.map((r) => [r.outcome, r.version, r.released.length])).toEqual([['APPLIED', 1, 0], ['APPLIED', 2, 0], ['APPLIED', 3, 0]]);
    expect(await o.history(id)).toEqual([
      [1, 'IN_ORDER', null, { species: 'ash' }],
      [2, 'IN_ORDER', null, { species: 'ash', height: 4 }],
      [3, 'IN_ORDER', null, { species: 'ash', height: 4, note: 'n' }],
    ]);
    expect(await o.held({ entityId: id })).toEqual([]);
  });
});

describe('resending a held change', () => {
  it('is DUPLICATE with originalOutcome HELD and holds nothing new; once released, a resend reports APPLIED', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    const run = offlineRun(ds, id, 1);
    const [c1, c2] = [run.update(1, { height: 1 }), run.update(2, { height: 2 })];
    expect(await o.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    const before = await o.held({ entityId: id });
    expect(before.map((h) => h.changeId)).toEqual([c2.id]);

    for (let i = 0; i < 2; i++) {
      expect(await o.one(c2)).toEqual({
        changeId: c2.id, outcome: 'DUPLICATE', originalOutcome: 'HELD', entityId: id, version: null,
        conflict: null, conflictingProperties: [], error: null, waitsFor: 1, released: [],
      });
    }
    // Nothing new held, the held row unchanged (not re-timed), the entity untouched.
    expect(await o.held({ entityId: id })).toEqual(before);
    expect((await o.entity(id))!.version).toBe(1);
    expect((await d.change(c2.id))!).toMatchObject({ outcome: 'HELD', version: null });

    const landed = await o.one(c1);
    expect(landed).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(landed.released.map((r) => [r.changeId, r.version])).toEqual([[c2.id, 3]]);
    expect(await o.one(c2)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 3, waitsFor: null, released: [] });
    expect(await o.one(c1)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 2, released: [] });
    expect(await o.history(id)).toEqual([
      [1, 'ONLINE', null, {}],
      [2, 'IN_ORDER', null, { height: 1 }],
      [3, 'RELEASED', null, { height: 2 }],
    ]);
    expect(await o.held({ entityId: id })).toEqual([]);
  });
});

describe('a release chain that meets its run\'s delete', () => {
  it('a held update released after the run\'s delete does not bring the entity back: it ends REJECTED, ENTITY_DELETED', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 0 });
    const run = offlineRun(ds, id, 1);
    const del = run.update(1, {}, { action: 'DELETE', data: null });
    const upd = run.update(2, { height: 5 });
    expect(await o.one(upd)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });

    const landed = await o.one(del);
    expect(landed).toMatchObject({ outcome: 'APPLIED', version: 2 });
    // The chain reaches it at once and refuses it there; it is not left for the flush.
    expect(landed.released).toEqual([
      {
        changeId: upd.id,
        outcome: 'REJECTED',
        originalOutcome: null,
        entityId: id,
        version: null,
        conflict: null,
        conflictingProperties: [],
        error: { code: 'ENTITY_DELETED', message: `the entity has been deleted: ${id}` },
        waitsFor: null,
      },
    ]);
    expect(await o.held({ entityId: id })).toEqual([]);
    expect((await o.entity(id))!).toMatchObject({ deleted: true, version: 2, data: { height: 0 } });

    // A flush afterwards finds nothing of it to force.
    expect((await o.flush(0)).filter((r) => r.entityId === id)).toEqual([]);
    expect((await d.change(upd.id))!).toMatchObject({ outcome: 'REJECTED', errorCode: 'ENTITY_DELETED', version: null });
    expect(await o.held({ entityId: id })).toEqual([]);
    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ deleted: true, version: 2, data: { height: 0 } });
    expect(e.versions.map((v) => [v.version, v.action, v.deleted])).toEqual([[1, 'CREATE', false], [2, 'DELETE', true]]);
  });
});
