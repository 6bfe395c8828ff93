import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, useApp, type TestApp } from '../helpers/app.js';
import { domain, ok, offline, offlineRun, type Domain, type Offline, type RunResult } from '../helpers/domain.js';

/** DESIGN step 6: held changes forced after the hold timeout, their successors released, and late arrivals after that. */

// The default hold timeout (300 s) and flush interval (30 s): only flushBacklog forces here.
const t = useApp();
const d = domain(t);
const o = offline(t);

const PROPS = ['species', 'height', 'age', 'note'];

/** flushBacklog(0) forces the whole backlog; these are the results about the given entities. */
async function flushFor(...entityIds: string[]): Promise<RunResult[]> {
  return (await o.flush(0)).filter((r) => entityIds.includes(r.entityId!));
}

/** Why a version has no author view (DESIGN "Author's view and server's view"), as the API says it. */
const FORCED_REASON = 'applied after the hold timeout without its predecessor: the author view is unknown';
const EARLIER_FORCED = 'an earlier change of the run was forced out of order';
const brief = (r: Omit<RunResult, 'released'>) => ({ changeId: r.changeId, outcome: r.outcome, version: r.version, conflict: r.conflict, conflictingProperties: r.conflictingProperties });

describe('forcing a run whose middle change is missing', () => {
  it('forces the change after the gap (FORCED, SOFT, no author view) and releases its held successor', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    const run = offlineRun(ds, id, 1);
    const [c1, c3, c4] = [run.update(1, { height: 1 }), run.update(3, { age: 3 }), run.update(4, { note: 'four' })];
    expect(await o.one(c1)).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(await o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    expect(await o.one(c4)).toMatchObject({ outcome: 'HELD', waitsFor: 3 });
    expect((await o.branch(run.branchId))!.missing).toEqual([{ from: 2, to: 2 }]);

    // Not old enough yet: nothing is forced.
    expect((await o.flush(3600)).filter((r) => r.entityId === id)).toEqual([]);
    expect((await o.flush(null)).filter((r) => r.entityId === id)).toEqual([]);
    expect((await o.held({ entityId: id })).map((h) => h.changeId)).toEqual([c3.id, c4.id]);

    const forced = await flushFor(id);
    expect(forced.map(brief)).toEqual([{ changeId: c3.id, outcome: 'APPLIED', version: 3, conflict: 'SOFT', conflictingProperties: [] }]);
    expect(forced[0]!.released.map(brief)).toEqual([{ changeId: c4.id, outcome: 'APPLIED', version: 4, conflict: null, conflictingProperties: [] }]);

    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ label: 'Oak', version: 4, conflict: 'SOFT', data: { species: 'oak', height: 1, age: 3, note: 'four' } });
    expect(e.versions.slice(2).map(({ version, source, appliedOn, branchBaseVersion, changeId, data, conflict, serverDiff, baseDiff }) =>
      ({ version, source, appliedOn, branchBaseVersion, changeId, data, conflict, serverDiff, baseDiff }))).toEqual([
      { version: 3, source: 'FORCED', appliedOn: 2, branchBaseVersion: 3, changeId: c3.id, data: { species: 'oak', height: 1, age: 3 }, conflict: 'SOFT',
        serverDiff: [{ property: 'age', old: null, new: 3 }], baseDiff: null },
      { version: 4, source: 'RELEASED', appliedOn: 3, branchBaseVersion: 4, changeId: c4.id, data: { species: 'oak', height: 1, age: 3, note: 'four' }, conflict: null,
        serverDiff: [{ property: 'note', old: null, new: 'four' }], baseDiff: null },
    ]);
    // The author of 3 saw a version 2 of their own that the server never had; 4 sits on top of that.
    expect(e.versions.slice(2).map((v) => v.authorViewUnavailable)).toEqual([FORCED_REASON, EARLIER_FORCED]);
    expect(e.versions[1]).toMatchObject({ source: 'IN_ORDER', authorViewUnavailable: null });

    expect(await o.held({ entityId: id })).toEqual([]);
    const branch = (await o.branch(run.branchId))!;
    expect(branch.changes.map((c) => [c.position, c.state, c.version])).toEqual([[1, 'APPLIED', 2], [3, 'APPLIED', 3], [4, 'APPLIED', 4]]);
    expect(branch.missing).toEqual([{ from: 2, to: 2 }]);
    for (const [c, v] of [[c3, 3], [c4, 4]] as const) expect((await d.change(c.id))!).toMatchObject({ outcome: 'APPLIED', version: v });
    // Forcing again finds nothing.
    expect(await flushFor(id)).toEqual([]);
  });

  it('a forced change that sets a property an unseen online version set is HARD', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 0 });
    const run = offlineRun(ds, id, 1);
    const c2 = run.update(2, { height: 2 });
    expect(await o.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    await d.update(ds, id, 1, { height: 10 });
    expect((await flushFor(id)).map(brief)).toEqual([{ changeId: c2.id, outcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['height'] }]);
    expect(await o.history(id)).toEqual([
      [1, 'ONLINE', null, { height: 0 }],
      [2, 'ONLINE', null, { height: 10 }],
      [3, 'FORCED', 'HARD', { height: 2 }],
    ]);
  });

  it('forces oldest first: a later change held earlier is forced first, the earlier one goes beneath it', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    const run = offlineRun(ds, id, 1);
    const [c1, c2, c3, c4] = [run.update(1, { height: 1 }), run.update(2, { height: 2, age: 2 }), run.update(3, { height: 3, note: 'c3' }), run.update(4, { height: 4 })];
    await o.one(c1);
    expect(await o.one(c4)).toMatchObject({ outcome: 'HELD', waitsFor: 3 });
    expect(await o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });

    const forced = await flushFor(id);
    expect(forced.map(brief)).toEqual([
      { changeId: c4.id, outcome: 'APPLIED', version: 3, conflict: 'SOFT', conflictingProperties: [] },
      { changeId: c3.id, outcome: 'APPLIED', version: 4, conflict: 'SOFT', conflictingProperties: [] },
    ]);
    expect(forced.map((r) => r.released)).toEqual([[], []]);
    // c2 arrives last: beneath 3 and 4, so height stays 4 and only age applies.
    expect(await o.one(c2)).toMatchObject({ outcome: 'APPLIED', version: 5, conflict: 'SOFT', conflictingProperties: [], released: [] });
    expect(await o.history(id)).toEqual([
      [1, 'ONLINE', null, {}],
      [2, 'IN_ORDER', null, { height: 1 }],
      [3, 'FORCED', 'SOFT', { height: 4 }],
      [4, 'FORCED', 'SOFT', { height: 4, note: 'c3' }],
      [5, 'IN_ORDER', 'SOFT', { height: 4, note: 'c3', age: 2 }],
    ]);
    const e = (await o.entity(id))!;
    expect(e.versions.map((v) => v.changed)).toEqual([{ label: 'Oak' }, { height: 1 }, { height: 4 }, { note: 'c3' }, { age: 2 }]);
    expect(e).toMatchObject({ version: 5, conflict: 'SOFT', data: { height: 4, note: 'c3', age: 2 } });
    expect((await o.branch(run.branchId))!.missing).toEqual([]);
  });
  it('a forced delete releases no update onto the deleted entity: the update ends REJECTED, ENTITY_DELETED', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 0 });
    const run = offlineRun(ds, id, 1);
    const del = run.update(2, {}, { action: 'DELETE', data: null });
    const upd = run.update(3, { height: 5 });
    expect((await o.submit(del, upd)).map((r) => [r.outcome, r.waitsFor])).toEqual([['HELD', 1], ['HELD', 2]]);

    const results = await flushFor(id);
    expect(results.map(brief)[0]).toEqual({ changeId: del.id, outcome: 'APPLIED', version: 2, conflict: 'SOFT', conflictingProperties: [] });
    const all = results.flatMap((r) => [r, ...r.released]);
    expect(all.filter((r) => r.changeId === upd.id && r.outcome === 'APPLIED')).toEqual([]);
    expect((await d.change(upd.id))!).toMatchObject({ outcome: 'REJECTED', errorCode: 'ENTITY_DELETED', version: null });
    expect(await o.held({ entityId: id })).toEqual([]);
    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ deleted: true, version: 2, data: { height: 0 } });
    expect(e.versions.map((v) => [v.version, v.source, v.deleted])).toEqual([[1, 'ONLINE', false], [2, 'FORCED', true]]);
  });
});

describe('an earlier change arriving after its run\'s later one was forced', () => {
  it('applies beneath it: the later values stay, the rest applies, flagged SOFT', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    const run = offlineRun(ds, id, 1);
    const [c1, c2, c3] = [run.update(1, { height: 1 }), run.update(2, { height: 2, note: 'n' }), run.update(3, { height: 3, age: 3 })];
    await o.one(c1);
    expect(await o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    expect((await flushFor(id)).map(brief)).toEqual([{ changeId: c3.id, outcome: 'APPLIED', version: 3, conflict: 'SOFT', conflictingProperties: [] }]);

    expect(await o.one(c2)).toEqual({
      changeId: c2.id, outcome: 'APPLIED', originalOutcome: null, entityId: id, version: 4,
      conflict: 'SOFT', conflictingProperties: [], error: null, waitsFor: null, released: [],
    });
    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ version: 4, conflict: 'SOFT', data: { species: 'oak', height: 3, age: 3, note: 'n' } });
    expect(e.versions[3]).toMatchObject({
      // Applied against its predecessor c1 (version 2), beneath the forced c3 (version 3).
      version: 4, source: 'IN_ORDER', appliedOn: 2, branchBaseVersion: 2, changeId: c2.id, conflict: 'SOFT', conflictingProperties: [],
      changed: { note: 'n' },
      data: { species: 'oak', height: 3, age: 3, note: 'n' },
      // The author made it on version 2 (their own first change, as the server has it).
      baseDiff: [{ property: 'height', old: 1, new: 2 }, { property: 'note', old: null, new: 'n' }],
      serverDiff: [{ property: 'note', old: null, new: 'n' }],
      authorViewUnavailable: null,
    });
    const branch = (await o.branch(run.branchId))!;
    expect(branch.changes.map((c) => [c.position, c.changeId, c.state, c.version])).toEqual([[1, c1.id, 'APPLIED', 2], [2, c2.id, 'APPLIED', 4], [3, c3.id, 'APPLIED', 3]]);
    expect(branch.missing).toEqual([]);
    // A resend of it is a duplicate of what it came to.
    expect(await o.one(c2)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 4, conflict: 'SOFT' });
  });
});

describe('a run whose offline create never arrives', () => {
  it('the forced update creates the entity labelled "(label unknown)", or with its own label, and releases the rest', async () => {
    const ds = await d.createDataset(PROPS);
    const [unlabelled, labelled] = [randomUUID(), randomUUID()];
    const run = offlineRun(ds, unlabelled, null);
    const [u1, u2] = [run.update(1, { height: 1 }), run.update(2, { height: 2 })];
    expect(await o.one(u2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(await o.one(u1)).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    const other = offlineRun(ds, labelled, null);
    const l1 = other.update(1, { age: 7 }, { label: 'Found birch' });
    expect(await o.one(l1)).toMatchObject({ outcome: 'HELD', waitsFor: 0 });

    // Oldest first: u2, held first, is forced first and makes the entity; u1, still waiting for the create, is forced next.
    const forced = await flushFor(unlabelled, labelled);
    expect(forced.map(brief)).toEqual([
      { changeId: u2.id, outcome: 'APPLIED', version: 1, conflict: 'SOFT', conflictingProperties: [] },
      { changeId: u1.id, outcome: 'APPLIED', version: 2, conflict: 'SOFT', conflictingProperties: [] },
      { changeId: l1.id, outcome: 'APPLIED', version: 1, conflict: 'SOFT', conflictingProperties: [] },
    ]);
    // u1 came second but its value goes beneath u2's: run order is the author's intent.
    const e = (await o.entity(unlabelled))!;
    expect(e).toMatchObject({ label: '(label unknown)', version: 2, conflict: 'SOFT', data: { height: 2 } });
    expect(e.versions.map((v) => [v.version, v.source, v.label, v.data, v.conflict, v.appliedOn, v.branchBaseVersion, v.trunkVersion, v.baseDiff])).toEqual([
      // appliedOn null: no earlier change of the run, and a run that began offline has no trunk.
      [1, 'FORCED', '(label unknown)', { height: 2 }, 'SOFT', null, 2, null, null],
      [2, 'FORCED', '(label unknown)', { height: 2 }, 'SOFT', null, 1, null, null],
    ]);
    expect((await o.entity(labelled))!).toMatchObject({ label: 'Found birch', version: 1, conflict: 'SOFT', data: { age: 7 } });
    expect(await o.held({ dataset: ds })).toEqual([]);
  });

  it('held in run order, the forced first update releases the second; then the late create applies as an update on top', async () => {
    const ds = await d.createDataset(PROPS);
    const id = randomUUID();
    const run = offlineRun(ds, id, null);
    const create = run.create('Birch', { species: 'birch' });
    const [u1, u2] = [run.update(1, { height: 1 }), run.update(2, { height: 2 })];
    expect(await o.one(u1)).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    expect(await o.one(u2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });

    const forced = await flushFor(id);
    expect(forced.map(brief)).toEqual([{ changeId: u1.id, outcome: 'APPLIED', version: 1, conflict: 'SOFT', conflictingProperties: [] }]);
    expect(forced[0]!.released.map(brief)).toEqual([{ changeId: u2.id, outcome: 'APPLIED', version: 2, conflict: null, conflictingProperties: [] }]);
    let e = (await o.entity(id))!;
    expect(e).toMatchObject({ label: '(label unknown)', version: 2, conflict: 'SOFT', data: { height: 2 } });
    expect(e.versions[0]).toMatchObject({
      version: 1, source: 'FORCED', label: '(label unknown)', data: { height: 1 }, appliedOn: null, baseDiff: null,
      serverDiff: [{ property: 'label', old: null, new: '(label unknown)' }, { property: 'height', old: null, new: 1 }],
    });
    expect(e.versions[0]!.authorViewUnavailable).toBe(FORCED_REASON);
    expect(e.versions[1]).toMatchObject({ version: 2, source: 'RELEASED', data: { height: 2 }, appliedOn: 1, baseDiff: null });
    expect(e.versions[1]!.authorViewUnavailable).toBe(EARLIER_FORCED);
    expect((await o.branch(run.branchId))!.missing).toEqual([{ from: 0, to: 0 }]);

    // The create arrives: not ENTITY_EXISTS, an update on top, checked against what the forced versions set (height only).
    expect(await o.one(create)).toMatchObject({ changeId: create.id, outcome: 'APPLIED', version: 3, conflict: 'SOFT', conflictingProperties: [], error: null, released: [] });
    e = (await o.entity(id))!;
    expect(e).toMatchObject({ label: 'Birch', version: 3, conflict: 'SOFT', data: { height: 2, species: 'birch' } });
    expect(e.versions[2]).toMatchObject({
      // A create, also beneath its run: applied against no version.
      version: 3, action: 'UPDATE', appliedOn: null, branchBaseVersion: 0, changeId: create.id, label: 'Birch', changed: { species: 'birch', label: 'Birch' },
      serverDiff: [{ property: 'label', old: '(label unknown)', new: 'Birch' }, { property: 'species', old: null, new: 'birch' }],
    });
    const branch = (await o.branch(run.branchId))!;
    expect(branch.changes.map((c) => [c.position, c.changeId, c.state, c.version])).toEqual([[0, create.id, 'APPLIED', 3], [1, u1.id, 'APPLIED', 1], [2, u2.id, 'APPLIED', 2]]);
    expect(branch.missing).toEqual([]);
    expect(await o.one(create)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 3 });
  });

  it('a late create setting a property the forced version set is HARD on it, and the run\'s later value stays', async () => {
    const ds = await d.createDataset(PROPS);
    const id = randomUUID();
    const run = offlineRun(ds, id, null);
    const create = run.create('Birch', { species: 'birch', height: 0 });
    expect(await o.one(run.update(1, { height: 1 }))).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    expect((await flushFor(id)).map((r) => r.version)).toEqual([1]);
    expect(await o.one(create)).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: 'HARD', conflictingProperties: ['height'] });
    expect((await o.entity(id))!).toMatchObject({ label: 'Birch', version: 2, conflict: 'HARD', data: { species: 'birch', height: 1 } });
  });
});

describe('the periodic flush, with a short hold timeout', () => {
  let fast: TestApp;
  beforeAll(async () => {
    fast = await startTestApp({ holdTimeoutSeconds: 2, flushIntervalSeconds: 0.2 });
  });
  afterAll(() => fast.close());

  it('forces a held change once it is older than the timeout and releases its successors', async () => {
    const fd = domain(fast);
    const fo = offline(fast);
    const ds = await fd.createDataset(PROPS);
    const id = await fd.create(ds, 'Oak');
    const run = offlineRun(ds, id, 1);
    const [c1, c3, c4] = [run.update(1, { height: 1 }), run.update(3, { age: 3 }), run.update(4, { note: 'four' })];
    expect(await fo.one(c1)).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect((await fo.submit(c3, c4)).map((r) => [r.outcome, r.waitsFor])).toEqual([['HELD', 2], ['HELD', 3]]);

    const held = await fo.held({ entityId: id });
    expect(held.map((h) => h.changeId)).toEqual([c3.id, c4.id]);
    for (const h of held) expect(Date.parse(h.forceAfter) - Date.parse(h.heldSince)).toBe(2000);

    const deadline = Date.now() + 20_000;
    while ((await fo.held({ entityId: id })).length > 0) {
      expect(Date.now(), 'the periodic flush did not empty the backlog in 20 s').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    const e = (await fo.entity(id))!;
    expect(e).toMatchObject({ version: 4, conflict: 'SOFT', data: { height: 1, age: 3, note: 'four' } });
    expect(e.versions.map((v) => [v.version, v.changeId, v.source, v.conflict])).toEqual([
      [1, e.versions[0]!.changeId, 'ONLINE', null],
      [2, c1.id, 'IN_ORDER', null],
      [3, c3.id, 'FORCED', 'SOFT'],
      [4, c4.id, 'RELEASED', null],
    ]);
    // Not before its time.
    const created = ok(await fast.gql(`query($id: ID!) { entity(id: $id) { versions { version createdAt } } }`, { id })).entity.versions[2].createdAt;
    expect(Date.parse(created)).toBeGreaterThanOrEqual(Date.parse(held[0]!.forceAfter));
  });
});
