import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchKeys, historyNeeds, originNeeds, type BatchChange, type EntityRecord, type HeldRecord } from '../../src/core/batch-facts.js';
import { planBatch, planForce, UNKNOWN_LABEL } from '../../src/core/batch-plan.js';
import type { ChangeResult } from '../../src/core/results.js';
import { CHANGE_OUTCOMES, ERROR_CODES, type ChangeInput, type ErrorCode } from '../../src/core/types.js';
import { factsFor, force, heldIds, loadFacts, localBranchId, newStore, prepare, snapshot, submit, uuid, type MemoryStore } from './batch-memory.js';

const E = uuid(0xe, 1);
const E2 = uuid(0xe, 2);
const B = uuid(0xb, 1);
const id = (n: number) => uuid(0xc, n);
const err = (code: ErrorCode, detail?: string) => ({ code, message: detail === undefined ? ERROR_CODES[code] : `${ERROR_CODES[code]}: ${detail}` });

const create = (n: number, over: Partial<ChangeInput> = {}): ChangeInput => ({ id: id(n), dataset: 'trees', entityId: E, action: 'CREATE', label: 'Oak', data: { height: 1, note: 'a' }, ...over });
const update = (n: number, baseVersion: number, data: Record<string, unknown>, over: Partial<ChangeInput> = {}): ChangeInput => ({ id: id(n), dataset: 'trees', entityId: E, action: 'UPDATE', baseVersion, data, ...over });
const withOak = (): MemoryStore => {
  const s = newStore();
  submit(s, [create(1)]);
  return s;
};
const versionsOf = (s: MemoryStore, entityId = E) => s.versions.filter((v) => v.entityId === entityId);
const logOf = (s: MemoryStore, changeId: string) => s.changes.filter((c) => c.changeId === changeId);
/** What "rejects with exact codes" announces: one changeRejected per refusal of an existing dataset (id length, code). */
const REJECTED_EVENTS: unknown[] = [
  [36, 'ENTITY_NOT_FOUND'], [36, 'ENTITY_EXISTS'], [36, 'UNKNOWN_PROPERTY'], [36, 'UNKNOWN_PROPERTY'], [36, 'ENTITY_NOT_FOUND'],
  [36, 'ENTITY_EXISTS'], [36, 'BASE_VERSION_AHEAD'], [10, 'MALFORMED_ID'], [200, 'MALFORMED_ID'],
];
const brief = (r: ChangeResult): unknown => [r.changeId, r.outcome, r.version, r.conflict, ...(r.released.length ? [r.released.map(brief)] : [])];

describe('planBatch: online changes', () => {
  it('a create makes version 1, an in-order update version 2 on top of it', () => {
    const s = newStore();
    const p1 = submit(s, [create(1)]);
    expect(p1.results).toEqual([
      { changeId: id(1), outcome: 'APPLIED', originalOutcome: null, entityId: E, dataset: 'trees', version: 1, conflict: null, conflictingProperties: [], waitsFor: null, error: null, released: [] },
    ]);
    expect(p1.events).toEqual([{ type: 'entityChanged', datasetName: 'trees', entityId: E, version: 1 }]);
    expect(p1.writes.versions[0]).toMatchObject({ version: 1, appliedOn: null, baseVersion: null, action: 'CREATE', source: 'ONLINE', changed: { height: 1, note: 'a', label: 'Oak' }, baseDiff: p1.writes.versions[0]!.serverDiff });

    const p2 = submit(s, [update(2, 1, { height: 2 })]);
    expect(p2.results.map(brief)).toEqual([[id(2), 'APPLIED', 2, null]]);
    expect(p2.events).toEqual([{ type: 'entityChanged', datasetName: 'trees', entityId: E, version: 2 }]);
    expect(s.entities.get(E)).toEqual({ id: E, datasetId: s.datasets.get('trees')!.id, label: 'Oak', data: { height: 2, note: 'a' }, version: 2, conflict: null, deleted: false });
    expect(versionsOf(s)[1]).toEqual({
      entityId: E, datasetId: s.datasets.get('trees')!.id, version: 2, appliedOn: 1, baseVersion: 1, action: 'UPDATE', label: 'Oak', data: { height: 2, note: 'a' }, changed: { height: 2 }, operations: [], deleted: false,
      conflict: null, conflictingProperties: [], source: 'ONLINE', branchId: null, trunkVersion: null,
      serverDiff: [{ property: 'height', old: 1, new: 2 }], baseDiff: [{ property: 'height', old: 1, new: 2 }], authorViewUnavailable: null, changeId: id(2), deviceId: null,
    });
    expect(logOf(s, id(2))).toEqual([expect.objectContaining({ original: true, outcome: 'APPLIED', version: 2, errorCode: null, errorMessage: null, action: 'UPDATE', datasetName: 'trees', entityId: E })]);
    expect(p2.writes).toMatchObject({ outcomes: [], heldInserted: [], heldDeleted: [] });
  });

  it('a stale update sharing a property is HARD with that property; a disjoint one SOFT; one setting the same value SOFT; one that saw all none', () => {
    const s = withOak();
    submit(s, [update(2, 1, { height: 2 })]);
    const hard = submit(s, [update(3, 1, { height: 3, note: 'b' })]);
    expect(hard.results[0]).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['height'] });
    expect(hard.events).toEqual([
      { type: 'entityChanged', datasetName: 'trees', entityId: E, version: 3 },
      { type: 'conflictDetected', datasetName: 'trees', entityId: E, version: 3, conflict: 'HARD', conflictingProperties: ['height'] },
    ]);
    // Against the current state, what the author saw (version 1) for the author's view.
    expect(versionsOf(s)[2]).toMatchObject({ appliedOn: 1, data: { height: 3, note: 'b' }, serverDiff: [{ property: 'height', old: 2, new: 3 }, { property: 'note', old: 'a', new: 'b' }], baseDiff: [{ property: 'height', old: 1, new: 3 }, { property: 'note', old: 'a', new: 'b' }] });
    expect(s.entities.get(E)!.conflict).toBe('HARD');

    const soft = submit(s, [update(4, 2, { age: 7 })]);
    expect(soft.results[0]).toMatchObject({ version: 4, conflict: 'SOFT', conflictingProperties: [] });
    // The entity keeps the strongest conflict.
    expect(s.entities.get(E)!.conflict).toBe('HARD');

    const s2 = withOak();
    submit(s2, [update(2, 1, { height: 2 })]);
    // Both sides set the same value: not shared, so SOFT, not HARD.
    const same = submit(s2, [update(3, 1, { height: 2, note: 'b' })]);
    expect(same.results[0]).toMatchObject({ version: 3, conflict: 'SOFT', conflictingProperties: [] });
    const soft2 = submit(s2, [update(4, 2, { age: 1 })]);
    expect(soft2.results[0]).toMatchObject({ version: 4, conflict: 'SOFT' });
    expect(s2.entities.get(E)!.conflict).toBe('SOFT');
    // Seen everything: no conflict.
    const s3 = withOak();
    const clean = submit(s3, [update(2, 1, { height: 2 }), update(3, 2, { height: 3 })]);
    expect(clean.results.map((r) => r.conflict)).toEqual([null, null]);
    expect(clean.events.map((e) => e.type)).toEqual(['entityChanged', 'entityChanged']);
    expect(s3.entities.get(E)!.conflict).toBeNull();
  });

  it('two changes to one entity in one batch see each other', () => {
    const s = newStore();
    const p = submit(s, [create(1), update(2, 1, { height: 2 }), update(3, 1, { height: 3 })]);
    expect(p.results.map(brief)).toEqual([
      [id(1), 'APPLIED', 1, null],
      [id(2), 'APPLIED', 2, null],
      [id(3), 'APPLIED', 3, 'HARD'],
    ]);
    expect(p.writes.entities).toEqual([expect.objectContaining({ id: E, version: 3, data: { height: 3, note: 'a' }, conflict: 'HARD' })]);
    expect(p.writes.versions.map((v) => [v.version, v.changeId])).toEqual([[1, id(1)], [2, id(2)], [3, id(3)]]);
  });

  it('a delete makes a deleted version; later changes are refused', () => {
    const s = withOak();
    const d = submit(s, [{ id: id(2), dataset: 'trees', entityId: E, action: 'DELETE', baseVersion: 1 }]);
    expect(d.results[0]).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null });
    expect(s.entities.get(E)).toMatchObject({ deleted: true, version: 2 });
    expect(versionsOf(s)[1]).toMatchObject({ action: 'DELETE', deleted: true, source: 'ONLINE' });
    const after = submit(s, [update(3, 2, { height: 5 })]);
    expect(after.results[0]).toMatchObject({ outcome: 'REJECTED', error: { code: 'ENTITY_DELETED' } });
  });

  it('echoes localId beside the minted entity id, and keeps a local-id entity in its implicit run', () => {
    const s = newStore();
    const local = { dataset: 'trees', deviceId: 'tab-1', localId: 'oak-1', entityId: null };
    const p = submit(s, [update(2, 1, { height: 2 }, local), create(1, local)]);
    const minted = p.results[1]!.entityId!;
    expect(p.results.map((r) => [r.outcome, r.localId, r.entityId])).toEqual([['HELD', 'oak-1', minted], ['APPLIED', 'oak-1', minted]]);
    expect(p.results[1]!.released.map(brief)).toEqual([[id(2), 'APPLIED', 2, null]]);
    expect(s.versions.map((v) => [v.version, v.branchId, v.source, v.trunkVersion])).toEqual([[1, localBranchId(minted), 'IN_ORDER', null], [2, localBranchId(minted), 'RELEASED', null]]);
    // A change without a local id has no localId key at all.
    expect('localId' in submit(s, [update(3, 2, { note: 'x' }, { entityId: minted })]).results[0]!).toBe(false);
  });
});

describe('planBatch: rejections and resends', () => {
  it('rejects with exact codes, and records every rejection', () => {
    const s = withOak();
    s.datasets.set('birds', { id: uuid(0xd5, 9), name: 'birds', properties: ['wings'] });
    const p = submit(s, [
      create(2, { dataset: 'nope', entityId: E2 }),
      update(3, 1, { height: 1 }, { entityId: E2 }),
      create(4),
      update(5, 1, { colour: 'red', height: 2, size: 1 }),
      update(6, 1, {}, { operations: [{ op: 'SET', property: 'girth', value: 1 }] }),
      update(7, 1, { wings: 2 }, { dataset: 'birds' }),
      create(8, { dataset: 'birds', data: {} }),
      update(9, 3, { height: 1 }),
      { id: 'not-a-uuid', dataset: 'trees', entityId: E, action: 'UPDATE', baseVersion: 1 },
      { id: 'x'.repeat(201), dataset: 'trees', entityId: E, action: 'UPDATE', baseVersion: 1 },
    ]);
    expect(p.results.map((r) => [r.outcome, r.error])).toEqual([
      ['REJECTED', err('UNKNOWN_DATASET', '"nope"')],
      ['REJECTED', err('ENTITY_NOT_FOUND', E2)],
      ['REJECTED', err('ENTITY_EXISTS', E)],
      ['REJECTED', err('UNKNOWN_PROPERTY', 'colour, size')],
      ['REJECTED', err('UNKNOWN_PROPERTY', 'girth')],
      // An entity of another dataset does not exist from this one, and its id cannot be taken.
      ['REJECTED', err('ENTITY_NOT_FOUND', E)],
      ['REJECTED', err('ENTITY_EXISTS', E)],
      ['REJECTED', expect.objectContaining({ code: 'BASE_VERSION_AHEAD' })],
      ['REJECTED', err('MALFORMED_ID', 'id "not-a-uuid"')],
      ['REJECTED', err('MALFORMED_ID', 'id of 201 characters')],
    ]);
    expect(p.results.map((r) => r.changeId)).toEqual([id(2), id(3), id(4), id(5), id(6), id(7), id(8), id(9), 'not-a-uuid', 'x'.repeat(201)]);
    expect(p.results[1]!.entityId).toBe(E2);
    expect(p.writes.versions).toEqual([]);
    expect(p.writes.entities).toEqual([]);
    // Each refusal of a dataset that exists is an event (for webhooks); "nope" does not exist.
    expect(p.events.map((e) => (e.type === 'changeRejected' ? [e.changeId.length, e.code] : e.type))).toEqual(REJECTED_EVENTS);
    expect(p.writes.changes.map((c) => [c.changeId.length, c.original, c.outcome, c.errorCode])).toEqual([
      [36, true, 'REJECTED', 'UNKNOWN_DATASET'],
      [36, true, 'REJECTED', 'ENTITY_NOT_FOUND'],
      [36, true, 'REJECTED', 'ENTITY_EXISTS'],
      [36, true, 'REJECTED', 'UNKNOWN_PROPERTY'],
      [36, true, 'REJECTED', 'UNKNOWN_PROPERTY'],
      [36, true, 'REJECTED', 'ENTITY_NOT_FOUND'],
      [36, true, 'REJECTED', 'ENTITY_EXISTS'],
      [36, true, 'REJECTED', 'BASE_VERSION_AHEAD'],
      [10, true, 'REJECTED', 'MALFORMED_ID'],
      // Too long to be a key: recorded cut, and not as the original (a resend is decided afresh).
      [200, false, 'REJECTED', 'MALFORMED_ID'],
    ]);
    expect(p.writes.changes[0]).toMatchObject({ version: null, errorMessage: err('UNKNOWN_DATASET', '"nope"').message });
  });

  it('a resend is DUPLICATE with the first outcome, version and conflict, and changes nothing', () => {
    const s = withOak();
    submit(s, [update(2, 1, { height: 2 })]);
    submit(s, [update(3, 1, { height: 3 })]);
    const before = structuredClone(snapshot(s));
    const p = submit(s, [update(3, 1, { height: 3 }), create(1), update(9, 1, { colour: 1 })]);
    expect(p.results[0]).toEqual({ changeId: id(3), outcome: 'DUPLICATE', originalOutcome: 'APPLIED', entityId: E, dataset: 'trees', version: 3, conflict: 'HARD', conflictingProperties: ['height'], waitsFor: null, error: null, released: [] });
    expect(p.results[1]).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 1, conflict: null });
    // A resend of a rejection answers its error; within one batch a resend sees the first.
    const again = submit(s, [update(9, 1, { colour: 1 }), update(10, 1, { age: 1 }), update(10, 1, { age: 1 })]);
    expect(again.results[0]).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'REJECTED', version: null, error: err('UNKNOWN_PROPERTY', 'colour') });
    expect(again.results[2]).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 4, conflict: 'SOFT', conflictingProperties: [], error: null });
    expect(p.writes.versions).toEqual([]);
    expect(snapshot(s).versions.slice(0, 3)).toEqual(before.versions);
    // Only the new refusal is an event, not the resends.
    expect(p.events).toEqual([{ type: 'changeRejected', datasetName: 'trees', entityId: E, changeId: id(9), deviceId: null, ...err('UNKNOWN_PROPERTY', 'colour') }]);
    expect(again.events.map((e) => e.type)).toEqual(['entityChanged', 'conflictDetected']);
  });

  it('the same id with another payload is CHANGE_ID_REUSED, recorded beside the original', () => {
    const s = withOak();
    const p = submit(s, [create(1, { label: 'Elm' })]);
    expect(p.results[0]).toMatchObject({ outcome: 'REJECTED', entityId: E, error: err('CHANGE_ID_REUSED', id(1)) });
    expect(p.writes.changes).toEqual([expect.objectContaining({ changeId: id(1), original: false, outcome: 'REJECTED', errorCode: 'CHANGE_ID_REUSED' })]);
    // The original still answers resends.
    expect(submit(s, [create(1)]).results[0]).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 1 });
    // A resend in other letter case is the same change.
    expect(submit(s, [create(1, { id: id(1).toUpperCase() })]).results[0]).toMatchObject({ changeId: id(1), outcome: 'DUPLICATE' });
  });

  it('a resend of a held change answers HELD with waitsFor; once released, APPLIED with its version', () => {
    const s = withOak();
    const run = (n: number, base: number, data: Record<string, unknown>) => update(n, base, data, { branchId: B, trunkVersion: 1 });
    expect(submit(s, [run(3, 2, { note: 'b' })]).results[0]).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(submit(s, [run(3, 2, { note: 'b' })]).results[0]).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'HELD', waitsFor: 1, version: null });
    const p = submit(s, [run(2, 1, { height: 2 }), run(3, 2, { note: 'b' })]);
    expect(p.results[1]).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 3, waitsFor: null });
    expect(submit(s, [run(3, 2, { note: 'b' })]).results[0]).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 3, waitsFor: null });
  });
});

describe('planBatch: offline runs', () => {
  const run = (n: number, base: number, data: Record<string, unknown>, over: Partial<ChangeInput> = {}) => update(n, base, data, { branchId: B, trunkVersion: 1, ...over });

  it('a later change is HELD until its predecessor arrives in the same batch, then released', () => {
    const s = withOak();
    const p = submit(s, [run(4, 3, { age: 3 }), run(3, 2, { note: 'b' }), run(2, 1, { height: 2 })]);
    expect(p.results.map(brief)).toEqual([
      [id(4), 'HELD', null, null],
      [id(3), 'HELD', null, null],
      [id(2), 'APPLIED', 2, null, [[id(3), 'APPLIED', 3, null], [id(4), 'APPLIED', 4, null]]],
    ]);
    expect(p.results.map((r) => r.waitsFor)).toEqual([2, 1, null]);
    expect(p.events).toEqual([
      { type: 'changeHeld', datasetName: 'trees', entityId: E, changeId: id(4), branchId: B, deviceId: null, waitsFor: 2 },
      { type: 'changeHeld', datasetName: 'trees', entityId: E, changeId: id(3), branchId: B, deviceId: null, waitsFor: 1 },
      { type: 'entityChanged', datasetName: 'trees', entityId: E, version: 2 },
      { type: 'entityChanged', datasetName: 'trees', entityId: E, version: 3 },
      { type: 'entityChanged', datasetName: 'trees', entityId: E, version: 4 },
      { type: 'backlogFlushed', reason: 'RELEASED', datasetName: 'trees', entityId: E, changes: [{ changeId: id(3), version: 3 }, { changeId: id(4), version: 4 }] },
    ]);
    // Held and released within the batch: nothing of the backlog is written, the log rows end APPLIED.
    expect(p.writes).toMatchObject({ heldInserted: [], heldDeleted: [], outcomes: [] });
    expect(p.writes.changes.map((c) => [c.changeId, c.outcome, c.version])).toEqual([[id(4), 'APPLIED', 4], [id(3), 'APPLIED', 3], [id(2), 'APPLIED', 2]]);
    expect(versionsOf(s).map((v) => [v.version, v.source, v.appliedOn, v.baseVersion, v.branchId])).toEqual([
      [1, 'ONLINE', null, null, null],
      [2, 'IN_ORDER', 1, 1, B],
      [3, 'RELEASED', 2, 2, B],
      [4, 'RELEASED', 3, 3, B],
    ]);
    expect(s.entities.get(E)).toMatchObject({ data: { height: 2, note: 'b', age: 3 }, version: 4, conflict: null });
  });

  it('held in one batch, released by its predecessor in a later one', () => {
    const s = withOak();
    const first = submit(s, [run(3, 2, { note: 'b' })]);
    expect(first.results[0]).toMatchObject({ outcome: 'HELD', waitsFor: 1, entityId: E });
    expect(first.writes.heldInserted).toEqual([expect.objectContaining({ changeId: id(3), branchId: B, trunkVersion: 1, baseVersion: 2, waitsFor: 1, datasetName: 'trees' })]);
    expect(logOf(s, id(3))).toEqual([expect.objectContaining({ outcome: 'HELD', version: null })]);
    const second = submit(s, [run(2, 1, { height: 2 })]);
    expect(second.results.map(brief)).toEqual([[id(2), 'APPLIED', 2, null, [[id(3), 'APPLIED', 3, null]]]]);
    expect(second.writes.heldDeleted).toEqual([id(3)]);
    expect(second.writes.outcomes).toEqual([{ changeId: id(3), outcome: 'APPLIED', version: 3, errorCode: null, errorMessage: null }]);
    expect(second.events.at(-1)).toEqual({ type: 'backlogFlushed', reason: 'RELEASED', datasetName: 'trees', entityId: E, changes: [{ changeId: id(3), version: 3 }] });
    expect(s.held).toEqual([]);
    expect(logOf(s, id(3))).toEqual([expect.objectContaining({ outcome: 'APPLIED', version: 3 })]);
    expect(versionsOf(s)[2]).toMatchObject({ source: 'RELEASED', appliedOn: 2, baseDiff: [{ property: 'note', old: 'a', new: 'b' }] });
  });

  it('a run crossing an online edit: its second change is HARD on the shared property', () => {
    const s = withOak();
    submit(s, [update(9, 1, { age: 40 })]);
    const p = submit(s, [run(2, 1, { height: 2 }), run(3, 2, { age: 41 })]);
    expect(p.results.map(brief)).toEqual([[id(2), 'APPLIED', 3, 'SOFT'], [id(3), 'APPLIED', 4, 'HARD']]);
    expect(p.results[1]!.conflictingProperties).toEqual(['age']);
  });

  it('an ODK Collect run sent in reverse in one batch ends versions 1..3 in run order', () => {
    const s = newStore();
    const odk = (n: number, base: number, data: Record<string, unknown>) => update(n, base, data, { branchId: B, trunkVersion: null });
    const p = submit(s, [odk(3, 2, { note: 'two' }), odk(2, 1, { height: 2 }), create(1, { data: { height: 1 } })]);
    expect(p.results.map(brief)).toEqual([
      [id(3), 'HELD', null, null],
      [id(2), 'HELD', null, null],
      [id(1), 'APPLIED', 1, null, [[id(2), 'APPLIED', 2, null], [id(3), 'APPLIED', 3, null]]],
    ]);
    expect(p.results.map((r) => r.waitsFor)).toEqual([1, 0, null]);
    expect(versionsOf(s).map((v) => [v.version, v.changeId, v.source, v.branchId, v.appliedOn])).toEqual([
      [1, id(1), 'IN_ORDER', B, null],
      [2, id(2), 'RELEASED', B, 1],
      [3, id(3), 'RELEASED', B, 2],
    ]);
    expect(s.entities.get(E)).toMatchObject({ data: { height: 2, note: 'two' }, version: 3, conflict: null });
    expect(s.held).toEqual([]);
  });

  it('an ODK Collect create sent after its run, in a later batch, adopts the run', () => {
    const s = newStore();
    const odk = (n: number, base: number, data: Record<string, unknown>) => update(n, base, data, { branchId: B, trunkVersion: null });
    expect(submit(s, [odk(2, 1, { height: 2 })]).results[0]).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    const p = submit(s, [create(1, { data: { height: 1 } })]);
    expect(p.results.map(brief)).toEqual([[id(1), 'APPLIED', 1, null, [[id(2), 'APPLIED', 2, null]]]]);
    expect(versionsOf(s)[0]).toMatchObject({ branchId: B, source: 'IN_ORDER', trunkVersion: null });
  });
});

describe('planForce', () => {
  const run = (n: number, base: number, data: Record<string, unknown>) => update(n, base, data, { branchId: B, trunkVersion: 1 });

  it('applies a held change FORCED and SOFT on the current version, then releases its successor', () => {
    const s = withOak();
    submit(s, [run(4, 3, { age: 3 }), run(3, 2, { note: 'b' })]);
    expect(heldIds(s)).toEqual([id(4), id(3)]);
    // Oldest first, as the flush lists them: the second is released by the first's successor chain.
    const p = force(s, [id(3), id(4)]);
    expect(p.results.map(brief)).toEqual([[id(3), 'APPLIED', 2, 'SOFT', [[id(4), 'APPLIED', 3, null]]]]);
    expect(p.events).toEqual([
      { type: 'entityChanged', datasetName: 'trees', entityId: E, version: 2 },
      { type: 'conflictDetected', datasetName: 'trees', entityId: E, version: 2, conflict: 'SOFT', conflictingProperties: [] },
      { type: 'backlogFlushed', reason: 'FORCED', datasetName: 'trees', entityId: E, changes: [{ changeId: id(3), version: 2 }] },
      { type: 'entityChanged', datasetName: 'trees', entityId: E, version: 3 },
      { type: 'backlogFlushed', reason: 'RELEASED', datasetName: 'trees', entityId: E, changes: [{ changeId: id(4), version: 3 }] },
    ]);
    expect(p.writes.heldDeleted.sort()).toEqual([id(3), id(4)].sort());
    expect(p.writes.changes).toEqual([]);
    expect(p.writes.outcomes).toEqual([
      { changeId: id(3), outcome: 'APPLIED', version: 2, errorCode: null, errorMessage: null },
      { changeId: id(4), outcome: 'APPLIED', version: 3, errorCode: null, errorMessage: null },
    ]);
    expect(versionsOf(s).map((v) => [v.version, v.source, v.conflict, v.appliedOn])).toEqual([[1, 'ONLINE', null, null], [2, 'FORCED', 'SOFT', 1], [3, 'RELEASED', null, 2]]);
    expect(versionsOf(s)[1]!.baseDiff).toBeNull();
    expect(versionsOf(s)[1]!.authorViewUnavailable).toEqual(expect.any(String));
    expect(s.held).toEqual([]);
    expect(s.entities.get(E)).toMatchObject({ conflict: 'SOFT', version: 3 });
    // The late predecessor is applied beneath: flagged SOFT, values of the forced change kept.
    const late = submit(s, [run(2, 1, { note: 'late', height: 9 })]);
    expect(late.results[0]).toMatchObject({ outcome: 'APPLIED', version: 4, conflict: 'SOFT' });
    expect(s.entities.get(E)!.data).toEqual({ height: 9, note: 'b', age: 3 });
  });

  it('a forced update makes its missing entity with the fixed label; a change no longer held is skipped', () => {
    const s = newStore();
    submit(s, [update(2, 1, { height: 2 }, { branchId: B, trunkVersion: null })]);
    const p = force(s, [id(2), id(99)]);
    expect(p.results.map(brief)).toEqual([[id(2), 'APPLIED', 1, 'SOFT']]);
    expect(UNKNOWN_LABEL).toBe('(label unknown)');
    expect(s.entities.get(E)).toMatchObject({ label: '(label unknown)', data: { height: 2 }, version: 1 });
    expect(force(s, [id(2)]).results).toEqual([]);
    // The run's create arrives: applied beneath the forced update, its label replaces the placeholder.
    const c = submit(s, [create(1, { data: { height: 1, note: 'c' }, branchId: B, trunkVersion: null })]);
    expect(c.results[0]).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(s.entities.get(E)).toMatchObject({ label: 'Oak', data: { height: 2, note: 'c' } });
  });

  it('a forced delete of a missing entity, or a change onto a deleted one, ends REJECTED in the log', () => {
    const s = withOak();
    submit(s, [{ id: id(3), dataset: 'trees', entityId: E, action: 'DELETE', baseVersion: 2, branchId: B, trunkVersion: 1 }, { id: id(4), dataset: 'trees', entityId: E2, action: 'DELETE', baseVersion: 2, branchId: uuid(0xb, 2), trunkVersion: null }]);
    expect(heldIds(s)).toEqual([id(3), id(4)]);
    submit(s, [{ id: id(2), dataset: 'trees', entityId: E, action: 'DELETE', baseVersion: 1 }]);
    const p = force(s, [id(3), id(4)]);
    expect(p.results.map((r) => [r.changeId, r.outcome, r.error])).toEqual([[id(3), 'REJECTED', err('ENTITY_DELETED', E)], [id(4), 'REJECTED', err('ENTITY_NOT_FOUND', E2)]]);
    expect(p.writes.outcomes.map((o) => [o.changeId, o.outcome, o.errorCode, o.version])).toEqual([[id(3), 'REJECTED', 'ENTITY_DELETED', null], [id(4), 'REJECTED', 'ENTITY_NOT_FOUND', null]]);
    expect(p.events).toEqual([
      { type: 'changeRejected', datasetName: 'trees', entityId: E, changeId: id(3), deviceId: null, ...err('ENTITY_DELETED', E) },
      { type: 'changeRejected', datasetName: 'trees', entityId: E2, changeId: id(4), deviceId: null, ...err('ENTITY_NOT_FOUND', E2) },
    ]);
    expect(s.held).toEqual([]);
    expect(submit(s, [{ id: id(3), dataset: 'trees', entityId: E, action: 'DELETE', baseVersion: 2, branchId: B, trunkVersion: 1 }]).results[0]).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'REJECTED', error: { code: 'ENTITY_DELETED' } });
  });
});

describe('batchKeys, historyNeeds, originNeeds', () => {
  const b = (input: ChangeInput, implicit = false): BatchChange => ({ ...prepare(input), ...(implicit ? { implicitBranch: uuid(0x1b, 1) } : {}) });
  const entity = (id: string, version: number): EntityRecord => ({ id, datasetId: 'd', label: 'x', data: {}, version, conflict: null, deleted: false });
  const heldOf = (input: ChangeInput): HeldRecord => {
    const v = prepare(input).validation;
    if (!v.ok) throw new Error('invalid');
    return { changeId: v.change.id, entityId: v.change.entityId, datasetName: 'trees', deviceId: null, branchId: v.change.branchId!, trunkVersion: v.change.trunkVersion, baseVersion: v.change.baseVersion ?? 0, waitsFor: 0, change: v.change };
  };

  it('batchKeys: deduplicated, invalid changes named only by their key, unaddressable ones not at all', () => {
    const batch = [
      b(create(1)),
      b(update(2, 1, {}, { branchId: B, trunkVersion: 1, dataset: 'birds' })),
      b(update(1, 1, {})),
      b(update(3, 1, {}, { entityId: E2, branchId: B.toUpperCase(), trunkVersion: 1 })),
      b({ id: id(4), dataset: 'ghost', entityId: 'bad', action: 'UPDATE', baseVersion: 1, branchId: uuid(0xb, 7) }),
      b({ id: 'y'.repeat(201), dataset: 'ghost2', entityId: E2, action: 'UPDATE', baseVersion: 1 }),
      b(update(5, 1, {}, { entityId: uuid(0xe, 5) }), true),
      b(update(6, 1, {}, { entityId: uuid(0xe, 5) }), true),
    ];
    expect(batchKeys(batch)).toEqual({
      changeKeys: [id(1), id(2), id(3), id(4), id(5), id(6)],
      // Refused changes name their dataset too (a refusal is an event of a dataset that exists).
      datasetNames: ['trees', 'birds', 'ghost', 'ghost2'],
      entityIds: [E, E2, uuid(0xe, 5)],
      branchIds: [B, uuid(0x1b, 1)],
    });
    expect(batchKeys([])).toEqual({ changeKeys: [], datasetNames: [], entityIds: [], branchIds: [] });
  });

  it('historyNeeds: from what each change saw, the earliest per entity, only for versions that exist', () => {
    const E3 = uuid(0xe, 3);
    const entities = new Map([[E, entity(E, 5)], [E2, entity(E2, 2)], [E3, entity(E3, 4)]]);
    // Its base version (the author's view) on.
    expect(historyNeeds([b(update(1, 3, {}))], [], entities)).toEqual(new Map([[E, 3]]));
    expect(historyNeeds([b(update(1, 3, {})), b(update(2, 2, {}))], [], entities)).toEqual(new Map([[E, 2]]));
    expect(historyNeeds([b(update(2, 2, {})), b(update(1, 3, {}))], [], entities)).toEqual(new Map([[E, 2]]));
    expect(historyNeeds([b(update(1, 5, {}))], [], entities)).toEqual(new Map([[E, 5]]));
    // Nothing for versions past the entity's, for an unknown entity, or for invalid changes.
    expect(historyNeeds([b(update(1, 6, {})), b(update(2, 1, {}, { entityId: uuid(0xe, 9) })), b(update(3, 1, { x: 1 }, { id: 'bad' }))], [], entities)).toEqual(new Map());
    // A create, or a change that may join an implicit run, needs the whole history.
    expect(historyNeeds([b(create(1))], [], entities)).toEqual(new Map([[E, 1]]));
    expect(historyNeeds([b(update(1, 4, {}), true)], [], entities)).toEqual(new Map([[E, 1]]));
    expect(historyNeeds([b(update(1, 4, {}), true), b(update(2, 4, {}))], [], entities)).toEqual(new Map([[E, 1]]));
    // A run's change saw its trunk (with a branch, an implicit run changes nothing).
    expect(historyNeeds([b(update(1, 4, {}, { branchId: B, trunkVersion: 2 }), true)], [], entities)).toEqual(new Map([[E, 2]]));
    expect(historyNeeds([b(update(1, 4, {}, { branchId: B, trunkVersion: 2, entityId: E2 }))], [], entities)).toEqual(new Map([[E2, 2]]));
    expect(historyNeeds([b(update(1, 4, {}, { branchId: B, trunkVersion: 1, entityId: E2 }))], [], entities)).toEqual(new Map([[E2, 1]]));
    // Held changes count as well.
    const held = [heldOf(update(7, 3, {}, { branchId: B, trunkVersion: 2, entityId: E3 })), heldOf(update(8, 3, {}, { branchId: B, trunkVersion: 1 }))];
    expect(historyNeeds([b(update(1, 4, {}))], held, entities)).toEqual(new Map([[E, 1], [E3, 2]]));
    expect(historyNeeds([], held.slice(0, 1), entities)).toEqual(new Map([[E3, 2]]));
  });

  it('originNeeds: branchless creates, run changes begun offline, held ones begun offline', () => {
    expect(originNeeds([b(create(1)), b(create(2, { entityId: E2, branchId: B }))], [])).toEqual({ origins: [E, E2], offlineRuns: [E] });
    expect(originNeeds([b(update(1, 1, {}, { branchId: B })), b(update(2, 1, {}, { entityId: E2, branchId: B, trunkVersion: 1 })), b(update(3, 1, {}, { entityId: uuid(0xe, 3) }))], [])).toEqual({ origins: [E], offlineRuns: [] });
    expect(originNeeds([b(update(1, 1, {}), true), b(update(2, 1, {}, { id: 'bad', branchId: B }))], [])).toEqual({ origins: [E], offlineRuns: [] });
    const held = [heldOf(update(7, 1, {}, { branchId: B, entityId: E2 })), heldOf(update(8, 3, {}, { branchId: B, trunkVersion: 2, entityId: uuid(0xe, 3) }))];
    expect(originNeeds([], held)).toEqual({ origins: [E2], offlineRuns: [] });
    expect(originNeeds([b(create(1)), b(create(1, { id: id(2) }))], held)).toEqual({ origins: [E, E2], offlineRuns: [E] });
  });

  it('the plan refuses to read history the facts did not load', () => {
    const s = withOak();
    submit(s, [update(2, 1, { height: 2 })]);
    const batch = [prepare(update(3, 1, { height: 3 }))];
    const facts = factsFor(s, batch);
    expect(planBatch(batch, facts).results[0]).toMatchObject({ conflict: 'HARD' });
    expect(() => planBatch(batch, { ...facts, history: new Map(), historyFrom: new Map() })).toThrow('versions of ' + E + ' from 1 were not loaded (from 3)');
    expect(() => planBatch(batch, { ...facts, historyFrom: new Map([[E, 3]]) })).toThrow(/from 1 were not loaded \(from 3\)/);
  });

  it('a held change of a dataset that no longer exists is refused when forced', () => {
    const s = newStore();
    submit(s, [update(2, 1, { height: 2 }, { branchId: B, trunkVersion: null })]);
    expect(heldIds(s)).toEqual([id(2)]);
    const facts = loadFacts(s, { changeKeys: [], datasetNames: [], entityIds: [E], branchIds: [], heldOfEntities: [E] }, () => ({ history: new Map(), origins: [], offlineRuns: [] }));
    const p = planForce([id(2)], { ...facts, datasets: new Map() });
    expect(p.results[0]).toMatchObject({ outcome: 'REJECTED', error: err('UNKNOWN_DATASET', 'trees') });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const ENTITIES = [E, E2, uuid(0xe, 3)];
type Gen = Omit<ChangeInput, 'id'>;
const genEntity = fc.constantFrom(...ENTITIES);
const genGroup: fc.Arbitrary<Gen[]> = fc.oneof(
  fc.tuple(genEntity, fc.constantFrom('trees', 'trees', 'birds')).map(([e, ds]) => [{ dataset: ds, entityId: e, action: 'CREATE' as const, label: 'x', data: ds === 'trees' ? { a: 1 } : {} }]),
  fc.tuple(genEntity, fc.integer({ min: 1, max: 4 }), fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 3 })).map(([e, base, p, v]) => [{ dataset: 'trees', entityId: e, action: 'UPDATE' as const, baseVersion: base, data: { [p]: v } }]),
  fc.tuple(genEntity, fc.integer({ min: 1, max: 4 })).map(([e, base]) => [{ dataset: 'trees', entityId: e, action: 'DELETE' as const, baseVersion: base }]),
  // A run on trunk 1 or begun offline (its create with the run's id, or ODK Collect's without).
  fc.record({ e: genEntity, trunk: fc.constantFrom(null, 1, 2), length: fc.integer({ min: 1, max: 3 }), odk: fc.boolean(), r: fc.integer({ min: 1, max: 1e6 }) }).map(({ e, trunk, length, odk, r }) => {
    const branchId = uuid(0xb, r);
    const first = trunk ?? 1;
    const c: Gen = { dataset: 'trees', entityId: e, action: 'CREATE', label: 'run', data: { a: 9 }, ...(odk ? {} : { branchId, trunkVersion: null }) };
    return [...(trunk === null ? [c] : []), ...Array.from({ length }, (_, i): Gen => ({ dataset: 'trees', entityId: e, action: 'UPDATE', data: { b: i }, branchId, trunkVersion: trunk, baseVersion: first + i }))];
  }),
  // Local ids: a create and updates of one device's entity, maybe without the create.
  fc.record({ local: fc.constantFrom('l1', 'l2'), withCreate: fc.boolean(), length: fc.integer({ min: 0, max: 2 }) }).map(({ local, withCreate, length }) => [
    ...(withCreate ? [{ dataset: 'trees', deviceId: 'dev', localId: local, action: 'CREATE' as const, label: 'local', data: { c: 1 } }] : []),
    ...Array.from({ length }, (_, i): Gen => ({ dataset: 'trees', deviceId: 'dev', localId: local, action: 'UPDATE', baseVersion: i + 1, data: { c: i + 2 } })),
  ]),
  fc.constant<Gen[]>([{ dataset: 'nope', entityId: E, action: 'UPDATE', baseVersion: 1, data: { a: 1 } }]),
);

/** Changes with ids, shuffled, maybe one sent twice (or reused with another payload). */
const genBatch = fc
  .tuple(fc.array(genGroup, { minLength: 1, maxLength: 6 }), fc.integer(), fc.constantFrom('none', 'resend', 'reuse'))
  .map(([groups, seed, extra]) => {
    const flat = groups.flat();
    const sent: ChangeInput[] = (flat.length > 0 ? flat : [{ dataset: 'trees', entityId: E, action: 'CREATE' as const, label: 'x' }]).map((c, i) => ({ ...c, id: id(i + 1) }) as ChangeInput);
    const order = fc.sample(fc.shuffledSubarray(sent, { minLength: sent.length, maxLength: sent.length }), { seed, numRuns: 1 })[0]!;
    if (extra === 'resend') return [...order, order[0]!];
    if (extra === 'reuse') return [...order, { ...order[0]!, label: 'other', action: 'CREATE' as const, data: {} }];
    return order;
  });

const stores = () => newStore({ trees: ['a', 'b', 'c'], birds: [] });

function checkInvariants(s: MemoryStore): void {
  const byEntity = new Map<string, number[]>();
  for (const v of s.versions) byEntity.set(v.entityId, [...(byEntity.get(v.entityId) ?? []), v.version]);
  for (const [e, vs] of byEntity) {
    expect(vs).toEqual(vs.map((_, i) => i + 1));
    expect(s.entities.get(e)!.version).toBe(vs.length);
  }
  for (const e of s.entities.keys()) expect(byEntity.has(e)).toBe(true);
  const ids = s.versions.map((v) => v.changeId);
  expect(new Set(ids).size).toBe(ids.length);
  // A change's log row names the version it made, and a held change is HELD in the log.
  for (const v of s.versions) expect(s.changes.filter((c) => c.original && c.changeId === v.changeId).map((c) => [c.outcome, c.version])).toEqual([['APPLIED', v.version]]);
  for (const h of s.held) expect(s.changes.find((c) => c.original && c.changeId === h.changeId)?.outcome).toBe('HELD');
}

function checkResults(results: readonly ChangeResult[], inputs: readonly ChangeInput[]): void {
  expect(results.map((r) => r.changeId)).toEqual(inputs.map((i) => i.id.toLowerCase()));
  const all = (rs: readonly ChangeResult[]): ChangeResult[] => rs.flatMap((r) => [r, ...all(r.released)]);
  for (const r of all(results)) {
    expect(CHANGE_OUTCOMES).toContain(r.outcome);
    expect(r.version !== null).toBe(r.outcome === 'APPLIED' || (r.outcome === 'DUPLICATE' && r.originalOutcome === 'APPLIED'));
    expect(r.waitsFor !== null).toBe(r.outcome === 'HELD' || (r.outcome === 'DUPLICATE' && r.originalOutcome === 'HELD'));
    expect(r.error !== null).toBe(r.outcome === 'REJECTED' || (r.outcome === 'DUPLICATE' && r.originalOutcome === 'REJECTED'));
    if (r.outcome !== 'APPLIED' && r.outcome !== 'DUPLICATE') expect(r.conflict).toBeNull();
    if (r.outcome !== 'APPLIED') expect(r.released).toEqual([]);
  }
}

describe('properties', () => {
  it('law: one batch answers and stores what its changes sent one at a time would', () => {
    fc.assert(
      fc.property(genBatch, (batch) => {
        const one = stores();
        const many = stores();
        const together = submit(one, batch);
        const apart = batch.map((c) => submit(many, [c]));
        expect(together.results).toEqual(apart.flatMap((p) => p.results));
        expect(together.events).toEqual(apart.flatMap((p) => p.events));
        expect(snapshot(one)).toEqual(snapshot(many));
      }),
      { numRuns: 200 },
    );
  });

  it('versions are dense 1..n per entity, one per change id; results answer the inputs in order', () => {
    fc.assert(
      fc.property(genBatch, fc.integer({ min: 1, max: 4 }), (batch, cut) => {
        const s = stores();
        // Sent as a few batches, the same store throughout.
        const size = Math.ceil(batch.length / cut);
        for (let i = 0; i < batch.length; i += size) {
          const part = batch.slice(i, i + size);
          checkResults(submit(s, part).results, part);
          checkInvariants(s);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('forcing the backlog oldest first empties it, all at once as one by one', () => {
    fc.assert(
      fc.property(genBatch, (batch) => {
        const one = stores();
        const many = stores();
        submit(one, batch);
        submit(many, batch);
        const due = heldIds(one);
        const together = force(one, due);
        const apart = due.map((d) => force(many, [d]));
        expect(together.results).toEqual(apart.flatMap((p) => p.results));
        expect(together.events).toEqual(apart.flatMap((p) => p.events));
        expect(snapshot(one)).toEqual(snapshot(many));
        expect(one.held).toEqual([]);
        for (const r of together.results) expect(['APPLIED', 'REJECTED']).toContain(r.outcome);
        for (const r of together.results.filter((x) => x.outcome === 'APPLIED')) expect(r.conflict).not.toBeNull();
        checkInvariants(one);
        // Nothing forced is forced again.
        expect(force(one, due).results).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });

  it('planning never mutates its facts (they are frozen) and writes nothing for a batch of resends', () => {
    fc.assert(
      fc.property(genBatch, (batch) => {
        const s = stores();
        submit(s, batch);
        const again = batch.map((c) => prepare(c));
        const plan = planBatch(again, factsFor(s, again));
        for (const r of plan.results) expect(['DUPLICATE', 'REJECTED']).toContain(r.outcome);
        expect(plan.writes.versions).toEqual([]);
        expect(plan.writes.entities).toEqual([]);
        expect(plan.writes.heldInserted).toEqual([]);
        expect(plan.writes.heldDeleted).toEqual([]);
        expect(plan.writes.outcomes).toEqual([]);
        // A reused id with another payload is refused afresh (an event); nothing else is.
        expect(plan.events.filter((e) => e.type !== 'changeRejected' || e.code !== 'CHANGE_ID_REUSED')).toEqual([]);
        // Only unaddressable ids and reused ids are logged again, never as the original.
        for (const c of plan.writes.changes) expect(c.original).toBe(false);
      }),
      { numRuns: 100 },
    );
  });
});

describe('more precise cases', () => {
  const MINTED = uuid(0x10ca1, 1);
  const local = { dataset: 'trees', deviceId: 'tab-1', localId: 'oak-1', entityId: null };

  it('a local-id change joins the implicit run only when the entity is missing, a create, ahead, or already in that run', () => {
    // The entity exists (made by its id) and the run has none of it: a local-id update is online.
    const s = newStore();
    submit(s, [create(1, { entityId: MINTED })]);
    submit(s, [{ ...update(9, 1, {}), ...local }]).results; // mints MINTED for the local id
    expect(versionsOf(s, MINTED).map((v) => [v.version, v.source, v.branchId])).toEqual([[1, 'ONLINE', null], [2, 'ONLINE', null]]);
    // Ahead of the entity: it joins the run, so it is held rather than refused.
    const ahead = submit(s, [{ ...update(10, 4, { note: 'x' }), ...local }]);
    expect(ahead.results[0]).toMatchObject({ outcome: 'HELD', waitsFor: 3, localId: 'oak-1', entityId: MINTED });
    expect(ahead.events).toEqual([{ type: 'changeHeld', datasetName: 'trees', entityId: MINTED, changeId: id(10), branchId: localBranchId(MINTED), deviceId: 'tab-1', waitsFor: 3 }]);
    // Once the run holds a version of the entity, later local-id changes stay in it.
    const t = newStore();
    submit(t, [create(1, local)]);
    const p = submit(t, [{ ...update(2, 1, { height: 3 }), ...local }]);
    expect(p.results[0]).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(versionsOf(t, MINTED).map((v) => [v.source, v.branchId, v.trunkVersion, v.baseVersion])).toEqual([['IN_ORDER', localBranchId(MINTED), null, 0], ['IN_ORDER', localBranchId(MINTED), null, 1]]);
  });

  it('an ODK Collect create applied first: its run updates apply on it, in order', () => {
    const s = newStore();
    const odk = (n: number, base: number, data: Record<string, unknown>) => update(n, base, data, { branchId: B, trunkVersion: null });
    submit(s, [create(1)]);
    const p = submit(s, [odk(2, 1, { height: 2 })]);
    expect(p.results.map(brief)).toEqual([[id(2), 'APPLIED', 2, null]]);
    expect(p.events).toEqual([{ type: 'entityChanged', datasetName: 'trees', entityId: E, version: 2 }]);
    submit(s, [odk(3, 2, { note: 'b' })]);
    expect(versionsOf(s).map((v) => [v.version, v.source, v.appliedOn, v.branchId, v.conflict])).toEqual([[1, 'ONLINE', null, null, null], [2, 'IN_ORDER', 1, B, null], [3, 'IN_ORDER', 2, B, null]]);
  });

  it('an ODK Collect create after a forced update of its run applies beneath it, as an update', () => {
    const s = newStore();
    submit(s, [update(2, 1, { height: 2 }, { branchId: B, trunkVersion: null })]);
    force(s, [id(2)]);
    const c = submit(s, [create(1, { data: { height: 1, note: 'c' } })]);
    expect(c.results[0]).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: 'HARD', conflictingProperties: ['height'] });
    expect(versionsOf(s)[1]).toMatchObject({ action: 'UPDATE', branchId: B, label: 'Oak', data: { height: 2, note: 'c' } });
    expect(s.entities.get(E)).toMatchObject({ label: 'Oak', version: 2 });
  });

  it('a late create with the same label and values as the forced update of its run is SOFT (forced), not HARD: both sides set the same values', () => {
    for (const branchId of [B, null]) {
      const s = newStore();
      const same = { height: 2, note: 'c', age: 3 };
      submit(s, [update(2, 1, same, { branchId: B, trunkVersion: null, label: 'Oak' })]);
      expect(force(s, [id(2)]).results.map(brief)).toEqual([[id(2), 'APPLIED', 1, 'SOFT']]);
      // With the run's id, or without one as ODK Collect sends it: the run's create either way.
      const c = submit(s, [create(1, { data: same, label: 'Oak', branchId, trunkVersion: null })]);
      expect(c.results[0]).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: 'SOFT', conflictingProperties: [] });
      expect(c.events.filter((e) => e.type === 'conflictDetected')).toEqual([{ type: 'conflictDetected', datasetName: 'trees', entityId: E, version: 2, conflict: 'SOFT', conflictingProperties: [] }]);
      expect(s.entities.get(E)).toMatchObject({ label: 'Oak', data: same, conflict: 'SOFT' });
      // One value different: HARD on that one only.
      const t = newStore();
      submit(t, [update(2, 1, same, { branchId: B, trunkVersion: null, label: 'Oak' })]);
      force(t, [id(2)]);
      const d = submit(t, [create(1, { data: { ...same, age: 4 }, label: 'Oak', branchId, trunkVersion: null })]);
      expect(d.results[0]).toMatchObject({ conflict: 'HARD', conflictingProperties: ['age'] });
      expect(t.entities.get(E)!.data).toEqual(same);
    }
  });

  it('a release chain stops at a refused change; only what applied is flushed', () => {
    const s = withOak();
    const run = (over: Partial<ChangeInput>) => ({ dataset: 'trees', entityId: E, branchId: B, trunkVersion: 1, ...over }) as ChangeInput;
    const u3 = run({ id: id(4), action: 'UPDATE', baseVersion: 3, data: { note: 'x' } });
    const d2 = run({ id: id(3), action: 'DELETE', baseVersion: 2 });
    const u1 = run({ id: id(2), action: 'UPDATE', baseVersion: 1, data: { height: 2 } });
    const u4 = run({ id: id(5), action: 'UPDATE', baseVersion: 4, data: { note: 'y' } });
    const p = submit(s, [u3, d2, u4, u1, u3]);
    // A resend after the refusal, in the same batch, is told the refusal.
    expect(p.results[4]).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'REJECTED', version: null, waitsFor: null, conflict: null, error: err('ENTITY_DELETED', E) });
    expect(p.results[3]!.released.map((r) => [r.changeId, r.outcome, r.error?.code ?? null])).toEqual([[id(3), 'APPLIED', null], [id(4), 'REJECTED', 'ENTITY_DELETED']]);
    expect(p.events.filter((e) => e.type === 'backlogFlushed')).toEqual([{ type: 'backlogFlushed', reason: 'RELEASED', datasetName: 'trees', entityId: E, changes: [{ changeId: id(3), version: 3 }] }]);
    // The one after the refused change stays held; the refused one is logged REJECTED.
    expect(heldIds(s)).toEqual([id(5)]);
    expect(logOf(s, id(4))).toEqual([expect.objectContaining({ outcome: 'REJECTED', errorCode: 'ENTITY_DELETED', version: null })]);
  });

  it('a forced change whose entity id was taken in another dataset is refused ENTITY_EXISTS', () => {
    const s = newStore({ trees: ['height'], birds: ['wings'] });
    submit(s, [update(2, 1, { height: 2 }, { branchId: B, trunkVersion: null })]);
    submit(s, [create(1, { dataset: 'birds', data: {} })]);
    const p = force(s, [id(2)]);
    expect(p.results).toEqual([expect.objectContaining({ changeId: id(2), outcome: 'REJECTED', entityId: E, error: err('ENTITY_EXISTS', E) })]);
    expect(versionsOf(s)).toHaveLength(1);
  });

  it('an operation that does not fit the current value is refused, and nothing is written for it', () => {
    const s = withOak();
    const p = submit(s, [update(2, 1, {}, { operations: [{ op: 'INCREMENT', property: 'note', by: 1 }] }), update(3, 1, { age: 1 })]);
    expect(p.results.map((r) => [r.outcome, r.error?.code ?? null, r.version])).toEqual([['REJECTED', 'OPERATION_TYPE_MISMATCH', null], ['APPLIED', null, 2]]);
    expect(p.writes.changes.map((c) => [c.changeId, c.outcome, c.errorCode])).toEqual([[id(2), 'REJECTED', 'OPERATION_TYPE_MISMATCH'], [id(3), 'APPLIED', null]]);
    expect(p.writes.versions.map((v) => v.changeId)).toEqual([id(3)]);
  });

  it('a run that names another trunk, or another entity, is refused by its run facts', () => {
    const s = withOak();
    submit(s, [create(9, { entityId: E2 }), update(8, 1, { height: 2 })]);
    submit(s, [update(2, 1, { height: 3 }, { branchId: B, trunkVersion: 1 })]);
    const p = submit(s, [update(3, 2, { note: 'b' }, { branchId: B, trunkVersion: 2 }), update(4, 1, { note: 'c' }, { branchId: B, trunkVersion: 1, entityId: E2 })]);
    expect(p.results.map((r) => [r.outcome, r.error?.code ?? null])).toEqual([['REJECTED', 'BRANCH_TRUNK_CHANGED'], ['REJECTED', 'BRANCH_ON_OTHER_ENTITY']]);
    expect(p.writes.versions).toEqual([]);
  });

  it('a reused id stays reused when resent in the same batch; the original keeps answering', () => {
    const s = withOak();
    const p = submit(s, [create(1, { label: 'Elm' }), create(1, { label: 'Elm' }), create(1)]);
    expect(p.results.map((r) => [r.outcome, r.error?.code ?? null])).toEqual([['REJECTED', 'CHANGE_ID_REUSED'], ['REJECTED', 'CHANGE_ID_REUSED'], ['DUPLICATE', null]]);
  });
});

// planForce on an empty list plans nothing.
it('planForce([]) and planBatch([]) plan nothing', () => {
  const s = withOak();
  const empty = { results: [], writes: { changes: [], outcomes: [], heldInserted: [], heldDeleted: [], entities: [], versions: [], subsetRows: [] }, events: [] };
  expect(planForce([], factsFor(s, []))).toEqual(empty);
  expect(planBatch([], factsFor(s, []))).toEqual(empty);
});
