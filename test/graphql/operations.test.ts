import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backend } from '../helpers/database.js';
import { domain, offline, offlineRun, sync, type Domain, type Offline, type OperationInputRow, type SyncChangeInput, type Sync } from '../helpers/domain.js';

/**
 * Changes as operations over HTTP (DESIGN "Operations", issue 5): replayed on the current
 * server state, list and counter operations merge without conflict, overwrites conflict HARD.
 */

let t: TestApp;
let d: Domain;
let s: Sync;
let o: Offline;
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0 });
  d = domain(t);
  s = sync(t);
  o = offline(t);
});
afterAll(() => t.close());

const PROPS = ['title', 'children', 'views', 'tags', 'note'];

const listAdd = (property: string, value: unknown, index?: number | null): OperationInputRow => ({ op: 'LIST_ADD', property, value, ...(index !== undefined ? { index } : {}) });
const increment = (property: string, by: number): OperationInputRow => ({ op: 'INCREMENT', property, by });
const set = (property: string, value: unknown): OperationInputRow => ({ op: 'SET', property, value });
/** An online update (no run) made on `baseVersion` carrying operations. */
const opsUpdate = (dataset: string, entityId: string, baseVersion: number, operations: OperationInputRow[], extra: Partial<SyncChangeInput> = {}): SyncChangeInput & { id: string } => ({
  id: randomUUID(),
  dataset,
  entityId,
  action: 'UPDATE',
  baseVersion,
  operations,
  ...extra,
});
/** How EntityVersion.operations reports one. */
const reported = (op: OperationInputRow) => ({
  op: op.op,
  property: op.op === 'SET_LABEL' ? null : (op.property ?? null),
  value: op.op === 'SET' || op.op === 'LIST_ADD' || op.op === 'LIST_REMOVE' || op.op === 'SET_LABEL' ? op.value : null,
  index: op.op === 'LIST_ADD' ? (op.index ?? null) : null,
  by: op.op === 'INCREMENT' ? op.by : null,
});

describe('the Khan example: two editors add different children to one list', () => {
  it('sequentially on the same baseVersion: both children survive, no conflict on either version, each version lists its operation', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Algebra', { title: 'Algebra', children: ['intro'] });
    const addA = listAdd('children', { id: 'lesson-a', name: 'Linear equations' });
    const addB = listAdd('children', { id: 'lesson-b', name: 'Quadratics' });

    const a = await s.one(opsUpdate(ds, id, 1, [addA]));
    expect(a).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null, conflictingProperties: [], error: null });
    // B made its change on version 1 too: it has not seen A's child.
    const b = await s.one(opsUpdate(ds, id, 1, [addB]));
    expect(b).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: null, conflictingProperties: [], error: null });

    const e = (await d.entity(id))!;
    expect(e).toMatchObject({ version: 3, conflict: null, data: { title: 'Algebra', children: ['intro', addA.value, addB.value] } });
    const vs = await s.versions(id);
    expect(vs.map((v) => [v.version, v.conflict, v.conflictingProperties, v.operations])).toEqual([
      [1, null, [], []],
      [2, null, [], [reported(addA)]],
      [3, null, [], [reported(addB)]],
    ]);
    expect(vs[1]!.changed).toEqual({ children: ['intro', addA.value] });
    expect(vs[2]!.changed).toEqual({ children: ['intro', addA.value, addB.value] });
    expect(vs.map((v) => v.changeId)).toEqual([vs[0]!.changeId, a.changeId, b.changeId]);
    expect(await t.gql(`query($ds: String!) { conflicts(dataset: $ds) { nodes { id } } }`, { ds }).then((r) => r.data.conflicts.nodes)).toEqual([]);
  });

  it('concurrently (two requests at once) on the same baseVersion: both survive in either order, no conflict', async () => {
    const ds = await d.createDataset(PROPS);
    for (let round = 0; round < 5; round++) {
      const id = await d.create(ds, `Course ${round}`, { children: [] });
      const addA = listAdd('children', `a${round}`);
      const addB = listAdd('children', `b${round}`, 0);
      const [a, b] = await Promise.all([s.one(opsUpdate(ds, id, 1, [addA])), s.one(opsUpdate(ds, id, 1, [addB]))]);
      expect([a.outcome, b.outcome], `round ${round}`).toEqual(['APPLIED', 'APPLIED']);
      expect([a.version, b.version].sort(), `round ${round}`).toEqual([2, 3]);
      expect([a.conflict, b.conflict], `round ${round}`).toEqual([null, null]);
      const e = (await d.entity(id))!;
      expect(e.conflict).toBeNull();
      // B inserts at the front; A appends: whichever went first, the end list is the same.
      expect(e.data.children, `round ${round}`).toEqual([`b${round}`, `a${round}`]);
      const vs = await s.versions(id);
      const byChange = new Map(vs.map((v) => [v.changeId, v]));
      expect(byChange.get(a.changeId)!.operations).toEqual([reported(addA)]);
      expect(byChange.get(b.changeId)!.operations).toEqual([{ op: 'LIST_ADD', property: 'children', value: `b${round}`, index: 0, by: null }]);
      expect(vs.every((v) => v.conflict === null)).toBe(true);
    }
  });

  it('ten editors at once on version 1: every child survives, nothing is a conflict', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Big course', { children: ['intro'] });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => s.one(opsUpdate(ds, id, 1, [listAdd('children', `c${i}`), increment('views', 1)]))));
    expect(results.map((r) => r.outcome)).toEqual(Array(10).fill('APPLIED'));
    expect(results.map((r) => r.version).sort((x, y) => x! - y!)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(results.every((r) => r.conflict === null)).toBe(true);
    const e = (await d.entity(id))!;
    expect(e).toMatchObject({ version: 11, conflict: null });
    expect([...(e.data.children as string[])].sort()).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'intro'].sort());
    expect(e.data.views).toBe(10);
  });
});

describe('overwrites conflict HARD; merges do not', () => {
  it('a title SET by two editors on the same baseVersion: the second is HARD on ["title"]', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Algebra', { title: 'Algebra', children: ['intro'] });
    const first = await s.one(opsUpdate(ds, id, 1, [set('title', 'Algebra I')]));
    expect(first).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null, conflictingProperties: [] });
    const second = await s.one(opsUpdate(ds, id, 1, [set('title', 'Basic algebra')]));
    expect(second).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['title'] });
    const e = (await d.entity(id))!;
    // Applied on the current state: the second editor's value is current, the conflict flagged.
    expect(e).toMatchObject({ version: 3, conflict: 'HARD', data: { title: 'Basic algebra', children: ['intro'] } });
    expect(e.versions[2]).toMatchObject({ conflict: 'HARD', conflictingProperties: ['title'], resolved: false });
    const conflicts = (await t.gql(`query($ds: String!) { conflicts(dataset: $ds) { nodes { id conflict } } }`, { ds })).data.conflicts.nodes;
    expect(conflicts).toEqual([{ id, conflict: 'HARD' }]);
  });

  it('plain data on the title against an operation SET of it: HARD both ways', async () => {
    const ds = await d.createDataset(PROPS);
    const id1 = await d.create(ds, 'A', { title: 'x' });
    await d.update(ds, id1, 1, { title: 'data edit' });
    expect(await s.one(opsUpdate(ds, id1, 1, [set('title', 'op edit')]))).toMatchObject({ outcome: 'APPLIED', conflict: 'HARD', conflictingProperties: ['title'] });
    const id2 = await d.create(ds, 'B', { title: 'x' });
    await s.one(opsUpdate(ds, id2, 1, [set('title', 'op edit')]));
    expect(await d.update(ds, id2, 1, { title: 'data edit' })).toMatchObject({ outcome: 'APPLIED', conflict: 'HARD', conflictingProperties: ['title'] });
  });

  it('SET_LABEL by two editors on the same baseVersion: HARD on ["label"]', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Old name');
    expect(await s.one(opsUpdate(ds, id, 1, [{ op: 'SET_LABEL', value: 'Name A' }]))).toMatchObject({ outcome: 'APPLIED', conflict: null });
    expect(await s.one(opsUpdate(ds, id, 1, [{ op: 'SET_LABEL', value: '  Name B ' }]))).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['label'] });
    const e = (await d.entity(id))!;
    expect(e.label).toBe('Name B');
    expect(e.versions[2]!.changed).toEqual({ label: 'Name B' });
  });

  it('UNSET of a property a concurrent version changed: HARD', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { note: 'n' });
    await d.update(ds, id, 1, { note: 'edited' });
    expect(await s.one(opsUpdate(ds, id, 1, [{ op: 'UNSET', property: 'note' }]))).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['note'] });
    const e = (await d.entity(id))!;
    expect(e.data).toEqual({});
    expect(e.versions[2]!.changed).toEqual({ note: null });
  });

  it('a SET of a list a concurrent LIST_ADD changed is HARD; a LIST_ADD after a concurrent SET of the list is no conflict', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { children: ['a'] });
    await s.one(opsUpdate(ds, id, 1, [listAdd('children', 'b')]));
    expect(await s.one(opsUpdate(ds, id, 1, [set('children', ['z'])]))).toMatchObject({ version: 3, conflict: 'HARD', conflictingProperties: ['children'] });
    expect((await d.entity(id))!.data.children).toEqual(['z']);

    const id2 = await d.create(ds, 'B', { children: ['a'] });
    await s.one(opsUpdate(ds, id2, 1, [set('children', ['z'])]));
    expect(await s.one(opsUpdate(ds, id2, 1, [listAdd('children', 'b')]))).toMatchObject({ version: 3, conflict: null, conflictingProperties: [] });
    const e2 = (await d.entity(id2))!;
    expect(e2).toMatchObject({ conflict: null, data: { children: ['z', 'b'] } });
  });

  it('an INCREMENT after a concurrent SET of the counter is no conflict; a SET after a concurrent INCREMENT is HARD', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { views: 1 });
    await s.one(opsUpdate(ds, id, 1, [set('views', 100)]));
    expect(await s.one(opsUpdate(ds, id, 1, [increment('views', 5)]))).toMatchObject({ version: 3, conflict: null });
    expect((await d.entity(id))!.data.views).toBe(105);

    const id2 = await d.create(ds, 'B', { views: 1 });
    await s.one(opsUpdate(ds, id2, 1, [increment('views', 5)]));
    expect(await s.one(opsUpdate(ds, id2, 1, [set('views', 100)]))).toMatchObject({ version: 3, conflict: 'HARD', conflictingProperties: ['views'] });
  });

  it('a SET of one property after a concurrent LIST_ADD of another: SOFT (nothing shared)', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { title: 't', children: [] });
    await s.one(opsUpdate(ds, id, 1, [listAdd('children', 'c')]));
    expect(await s.one(opsUpdate(ds, id, 1, [set('title', 'T')]))).toMatchObject({ version: 3, conflict: 'SOFT', conflictingProperties: [] });
    expect((await d.entity(id))!.data).toEqual({ title: 'T', children: ['c'] });
  });

  it('a change mixing a merge and an overwrite conflicts only on what it overwrites', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { title: 't', children: [] });
    await s.one(opsUpdate(ds, id, 1, [listAdd('children', 'x'), set('title', 'other')]));
    expect(await s.one(opsUpdate(ds, id, 1, [listAdd('children', 'y'), set('note', 'mine')]))).toMatchObject({ conflict: 'SOFT', conflictingProperties: [] });
    expect(await s.one(opsUpdate(ds, id, 1, [listAdd('children', 'z'), set('title', 'mine')]))).toMatchObject({ conflict: 'HARD', conflictingProperties: ['title'] });
    expect((await d.entity(id))!.data).toEqual({ title: 'mine', children: ['x', 'y', 'z'], note: 'mine' });
  });
});

describe('counters', () => {
  it('INCREMENT from two clients on the same baseVersion sums, no conflict', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Video', { views: 10 });
    const a = await s.one(opsUpdate(ds, id, 1, [increment('views', 3)]));
    const b = await s.one(opsUpdate(ds, id, 1, [increment('views', 5)]));
    expect([a, b].map((r) => [r.outcome, r.version, r.conflict])).toEqual([['APPLIED', 2, null], ['APPLIED', 3, null]]);
    const e = (await d.entity(id))!;
    expect(e).toMatchObject({ version: 3, conflict: null, data: { views: 18 } });
    const vs = await s.versions(id);
    expect(vs.map((v) => v.data.views)).toEqual([10, 13, 18]);
    expect(vs[2]!.operations).toEqual([{ op: 'INCREMENT', property: 'views', value: null, index: null, by: 5 }]);
    expect(vs[2]!.changed).toEqual({ views: 18 });
  });

  it('twenty clients increment at once by different amounts (fractions and negatives too): the exact sum', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Counter');
    const bys = Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? -i : i) + (i % 2 === 0 ? 0.5 : 0));
    const results = await Promise.all(bys.map((by) => s.one(opsUpdate(ds, id, 1, [increment('views', by)]))));
    expect(results.every((r) => r.outcome === 'APPLIED' && r.conflict === null)).toBe(true);
    const e = (await d.entity(id))!;
    expect(e.version).toBe(21);
    // Halves and whole numbers add exactly in any order.
    expect(e.data.views).toBe(bys.reduce((x, y) => x + y, 0));
    expect(e.conflict).toBeNull();
  });

  it('a resent INCREMENT is a DUPLICATE and is not counted twice', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Counter', { views: 1 });
    const c = opsUpdate(ds, id, 1, [increment('views', 2), listAdd('tags', 't')]);
    expect(await s.one(c)).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(await s.one(c)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 2 });
    expect(await s.one({ ...c })).toMatchObject({ outcome: 'DUPLICATE' });
    expect((await d.entity(id))!).toMatchObject({ version: 2, data: { views: 3, tags: ['t'] } });
    // The same id with other operations is a reuse, not a resend.
    const reused = await s.one({ ...c, operations: [increment('views', 3)] });
    expect(reused).toMatchObject({ outcome: 'REJECTED', error: { code: 'CHANGE_ID_REUSED' } });
    expect((await d.entity(id))!.data.views).toBe(3);
  });
});

describe('plain data and operations together', () => {
  it('`data` applies first (a SET per property), then the operations; the version lists only the operations', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { views: 1, children: ['a'] });
    const ops = [increment('views', 1), listAdd('children', 'c')];
    const r = await s.one(opsUpdate(ds, id, 1, ops, { data: { views: 10, children: ['b'], note: 'n' } }));
    expect(r).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null });
    const v = (await s.versions(id))[1]!;
    expect(v.data).toEqual({ views: 11, children: ['b', 'c'], note: 'n' });
    expect(v.changed).toEqual({ views: 11, children: ['b', 'c'], note: 'n' });
    expect(v.operations).toEqual(ops.map(reported));
  });

  it('a create may carry operations; LIST_ADD with an index beyond the end appends; SET_LABEL beside a label wins (applies after)', async () => {
    const ds = await d.createDataset(PROPS);
    const id = randomUUID();
    const r = await s.one({ dataset: ds, entityId: id, action: 'CREATE', label: 'Given', data: { children: ['a'] }, operations: [listAdd('children', 'b', 99), listAdd('children', 'z', 0), increment('views', 2), { op: 'SET_LABEL', value: 'From op' }] });
    expect(r).toMatchObject({ outcome: 'APPLIED', version: 1, entityId: id });
    const e = (await d.entity(id))!;
    expect(e).toMatchObject({ label: 'From op', data: { children: ['z', 'a', 'b'], views: 2 } });
  });

  it('LIST_REMOVE removes every equal element (objects compared deeply); removing from an absent list does nothing', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { tags: ['x', { k: 1, j: [2] }, 'y', 'x', { j: [2], k: 1 }] });
    await s.one(opsUpdate(ds, id, 1, [{ op: 'LIST_REMOVE', property: 'tags', value: 'x' }, { op: 'LIST_REMOVE', property: 'tags', value: { j: [2], k: 1 } }, { op: 'LIST_REMOVE', property: 'children', value: 'nothing' }]));
    const e = (await d.entity(id))!;
    expect(e.data).toEqual({ tags: ['y'] });
    expect(await s.one(opsUpdate(ds, id, 2, [{ op: 'LIST_REMOVE', property: 'tags', value: 'not there' }]))).toMatchObject({ outcome: 'APPLIED', version: 3 });
    expect((await d.entity(id))!.data).toEqual({ tags: ['y'] });
  });
});

describe('bad operations are rejected with a code and recorded', () => {
  /**
   * Submits, asserts the rejection and its change-log record (the operations as sent, or
   * `recorded` where storing them had to alter them), and that the entity did not move.
   */
  async function rejects(change: SyncChangeInput, code: string, untouched?: string, recorded = change.operations) {
    const before = untouched ? await d.entity(untouched) : null;
    const r = await s.one(change);
    await d.expectRejected(r, code);
    expect((await d.change(r.changeId)).payload.operations).toEqual(recorded);
    if (untouched) expect(await d.entity(untouched)).toEqual(before);
    return r;
  }

  it('OPERATION_TYPE_MISMATCH: INCREMENT on text, LIST_ADD and LIST_REMOVE on a non-list', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { title: 'text', views: 3, children: ['a'] });
    await rejects(opsUpdate(ds, id, 1, [increment('title', 1)]), 'OPERATION_TYPE_MISMATCH', id);
    await rejects(opsUpdate(ds, id, 1, [listAdd('views', 'x')]), 'OPERATION_TYPE_MISMATCH', id);
    await rejects(opsUpdate(ds, id, 1, [listAdd('title', 'x', 0)]), 'OPERATION_TYPE_MISMATCH', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'LIST_REMOVE', property: 'title', value: 't' }]), 'OPERATION_TYPE_MISMATCH', id);
    await rejects(opsUpdate(ds, id, 1, [increment('children', 1)]), 'OPERATION_TYPE_MISMATCH', id);
    // All or nothing: good operations before the bad one are not applied either.
    await rejects(opsUpdate(ds, id, 1, [listAdd('children', 'b'), increment('views', 1), increment('title', 1)]), 'OPERATION_TYPE_MISMATCH', id);
    // Made a mismatch by the change's own data.
    await rejects(opsUpdate(ds, id, 1, [increment('views', 1)], { data: { views: 'many' } }), 'OPERATION_TYPE_MISMATCH', id);
    // On a create.
    const newId = randomUUID();
    await rejects({ dataset: ds, entityId: newId, action: 'CREATE', label: 'N', data: { title: 't' }, operations: [increment('title', 1)] }, 'OPERATION_TYPE_MISMATCH');
    expect(await d.entity(newId)).toBeNull();
    // The entity still takes good changes at version 2.
    expect(await s.one(opsUpdate(ds, id, 1, [increment('views', 1)]))).toMatchObject({ outcome: 'APPLIED', version: 2 });
  });

  it('a mismatch made by a concurrent version: the later change is rejected, not applied on a guess', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { views: 1 });
    await d.update(ds, id, 1, { views: 'lots' });
    await rejects(opsUpdate(ds, id, 1, [increment('views', 1)]), 'OPERATION_TYPE_MISMATCH', id);
  });

  it('INVALID_OPERATION: missing property, value or by, a bad index, a blank SET_LABEL, operations on a delete', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { views: 1, children: [] });
    await rejects(opsUpdate(ds, id, 1, [{ op: 'SET', value: 1 }]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'UNSET', property: '' }]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'SET', property: 'views' }]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'LIST_ADD', property: 'children' }]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'LIST_REMOVE', property: 'children' }]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'INCREMENT', property: 'views' }]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'INCREMENT', property: 'views', by: null }]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [listAdd('children', 'x', -1)]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'SET_LABEL', value: '   ' }]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'SET_LABEL', value: 7 }]), 'INVALID_OPERATION', id);
    await rejects(opsUpdate(ds, id, 1, [{ op: 'SET_LABEL' }]), 'INVALID_OPERATION', id);
    // NUL cannot be stored in Postgres: the record keeps the change with U+FFFD in its place.
    await rejects(opsUpdate(ds, id, 1, [increment('views', 1), { op: 'SET', property: 'views', value: 'a\u0000b' }]), 'INVALID_OPERATION', id, [
      increment('views', 1),
      { op: 'SET', property: 'views', value: 'a\uFFFDb' },
    ]);
    await rejects({ dataset: ds, entityId: id, action: 'DELETE', baseVersion: 1, operations: [increment('views', 1)] }, 'INVALID_OPERATION', id);
    const r = await rejects(opsUpdate(ds, id, 1, [increment('views', 1), { op: 'LIST_ADD', property: 'children' }]), 'INVALID_OPERATION', id);
    expect(r.error!.message).toBe('an operation is not well formed: operation 2: LIST_ADD needs a JSON value');
  });

  it('an unknown operation kind is refused by the schema, not a 500', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A');
    const res = await t.gql(`mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { __typename } }`, { c: [{ ...opsUpdate(ds, id, 1, []), operations: [{ op: 'APPEND', property: 'views', value: 1 }] }] });
    expect(res.status).toBe(400);
    expect(res.data ?? null).toBeNull();
    expect(res.errors).toEqual([
      expect.objectContaining({
        message: 'Variable "$c" got invalid value "APPEND" at "c[0].operations[0].op"; Value "APPEND" does not exist in "OperationKind" enum.',
        extensions: { code: 'BAD_USER_INPUT' },
      }),
    ]);
    expect((await d.entity(id))!.version).toBe(1);
  });

  it('UNKNOWN_PROPERTY: an operation on an undeclared property, or on "label"', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A');
    await rejects(opsUpdate(ds, id, 1, [increment('likes', 1)]), 'UNKNOWN_PROPERTY', id);
    await rejects(opsUpdate(ds, id, 1, [listAdd('views', 1), { op: 'UNSET', property: 'ghost' }]), 'UNKNOWN_PROPERTY', id);
    await rejects(opsUpdate(ds, id, 1, [set('label', 'x')]), 'UNKNOWN_PROPERTY', id);
    await rejects(opsUpdate(ds, id, 1, [set('__proto__', 'x')]), 'UNKNOWN_PROPERTY', id);
  });
});

describe('held changes with operations replay on the state current when they are released or forced', () => {
  it('a held LIST_ADD/INCREMENT change, released later, replays on what others wrote meanwhile; nothing conflicts', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Course', { title: 'T', children: ['a'], views: 0 });
    const run = offlineRun(ds, id, 1);
    const c1 = { ...run.update(1, {}), operations: [listAdd('children', 'c1')] };
    const c2 = { ...run.update(2, {}), operations: [listAdd('children', 'c2'), increment('views', 1)] };

    expect(await s.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1, version: null });
    // Meanwhile, online: another editor adds a child, counts a view, renames.
    expect(await s.one(opsUpdate(ds, id, 1, [listAdd('children', 'x'), increment('views', 10)]))).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(await d.update(ds, id, 2, { title: 'Renamed' })).toMatchObject({ outcome: 'APPLIED', version: 3 });

    const first = await s.one(c1);
    expect(first).toMatchObject({ outcome: 'APPLIED', version: 4, conflict: null });
    expect(first.released).toHaveLength(1);
    expect(first.released[0]).toMatchObject({ changeId: c2.id, outcome: 'APPLIED', version: 5, conflict: null });

    const e = (await o.entity(id))!;
    expect(e).toMatchObject({ version: 5, conflict: null, data: { title: 'Renamed', children: ['a', 'x', 'c1', 'c2'], views: 11 } });
    expect(e.versions.map((v) => [v.version, v.source, v.conflict])).toEqual([[1, 'ONLINE', null], [2, 'ONLINE', null], [3, 'ONLINE', null], [4, 'IN_ORDER', null], [5, 'RELEASED', null]]);
    const vs = await s.versions(id);
    expect(vs[4]!.operations).toEqual(c2.operations.map(reported));
    expect(await o.held({ entityId: id })).toEqual([]);
    expect(await d.change(c2.id)).toMatchObject({ outcome: 'APPLIED', version: 5 });
  });

  it('a held INCREMENT whose property became text meanwhile is REJECTED when released, and recorded so', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { views: 1, note: 'n' });
    const run = offlineRun(ds, id, 1);
    const c1 = { ...run.update(1, { note: 'first' }) };
    const c2 = { ...run.update(2, {}), operations: [increment('views', 1)] };
    const c3 = { ...run.update(3, { note: 'third' }) };
    expect((await s.submit(c2, c3)).map((r) => r.outcome)).toEqual(['HELD', 'HELD']);
    await d.update(ds, id, 1, { views: 'many' });

    const r = await s.one(c1);
    expect(r).toMatchObject({ outcome: 'APPLIED', version: 3 });
    expect(r.released[0]).toMatchObject({ changeId: c2.id, outcome: 'REJECTED', version: null, error: { code: 'OPERATION_TYPE_MISMATCH' } });
    expect(await d.change(c2.id)).toMatchObject({ outcome: 'REJECTED', errorCode: 'OPERATION_TYPE_MISMATCH', version: null });
    expect((await d.entity(id))!).toMatchObject({ version: 3, data: { views: 'many', note: 'first' } });
    // The chain stops at the refused change: c3 waits on.
    expect((await o.held({ entityId: id })).map((h) => h.changeId)).toEqual([c3.id]);
  });

  it('a held change with operations forced after the hold timeout replays on the current state (FORCED, flagged SOFT)', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'A', { children: ['a'], views: 5 });
    const run = offlineRun(ds, id, 1);
    const c2 = { ...run.update(2, {}), operations: [listAdd('children', 'late'), increment('views', 2)] };
    expect(await s.one(c2)).toMatchObject({ outcome: 'HELD' });
    await s.one(opsUpdate(ds, id, 1, [listAdd('children', 'b'), increment('views', 1)]));

    const forced = await o.flush(0);
    const mine = forced.find((f) => f.changeId === c2.id)!;
    expect(mine).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'SOFT' });
    const e = (await o.entity(id))!;
    expect(e.data).toEqual({ children: ['a', 'b', 'late'], views: 8 });
    expect(e.versions[2]).toMatchObject({ source: 'FORCED', conflict: 'SOFT', conflictingProperties: [] });
  });

  it.runIf(backend === 'postgres')('on Postgres: held and online list/counter changes racing on one entity all land', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Race', { children: [], views: 0 });
    const runs = Array.from({ length: 5 }, () => offlineRun(ds, id, 1));
    const runChanges = runs.flatMap((run, r) => [1, 2, 3].map((n) => ({ ...run.update(n, {}), operations: [listAdd('children', `r${r}n${n}`), increment('views', 1)] as OperationInputRow[] })));
    const online = Array.from({ length: 10 }, (_, i) => opsUpdate(ds, id, 1, [listAdd('children', `o${i}`), increment('views', 1)]));
    // Every run's changes in reverse order, all at once, mixed with online changes.
    const all = [...runChanges.slice().reverse(), ...online];
    const results = await Promise.all(all.map((c) => s.one(c)));
    expect(results.every((r) => r.outcome === 'APPLIED' || r.outcome === 'HELD')).toBe(true);
    expect(await o.held({ entityId: id })).toEqual([]);
    const e = (await d.entity(id))!;
    expect(e.version).toBe(1 + all.length);
    expect(e.data.views).toBe(all.length);
    expect([...(e.data.children as string[])].sort()).toEqual([...runChanges.map((c) => c.operations[0]!.value as string), ...online.map((c) => c.operations![0]!.value as string)].sort());
    // Within each run, run order holds.
    for (let r = 0; r < runs.length; r++) {
      const mine = (e.data.children as string[]).filter((c) => c.startsWith(`r${r}n`));
      expect(mine).toEqual([`r${r}n1`, `r${r}n2`, `r${r}n3`]);
    }
    expect(e.versions.every((v) => v.conflict === null)).toBe(true);
  });
});
