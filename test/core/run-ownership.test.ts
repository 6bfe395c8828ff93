import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mayReachEntity, maySeeRunOf, type Principal } from '../../src/core/auth.js';
import { adoptRun, checkBranch, isOwnRun, withRunCreate, type BranchFacts, type EntityOrigin } from '../../src/core/placement.js';
import type { ChangeResult } from '../../src/core/results.js';
import { ERROR_CODES, type ChangeInput, type ValidChange } from '../../src/core/types.js';
import { validChange } from '../helpers/core.js';
import { force, heldIds, newStore, submit, uuid, type MemoryStore } from './batch-memory.js';

/**
 * Issue 17 items 1 and 4 in the pure rules: a run belongs to the device that began it (checkBranch,
 * withRunCreate, adoptRun, the plan), and seen from a dataset nothing of another exists: its
 * entities, their runs, its backlog (the plan), nor may any path reach them (mayReachEntity).
 */

const ENTITY = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const RUN = 'c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f';
const DEVICES = [null, 'tab-1', 'tab-2'] as const;

type Applied = BranchFacts['applied'][number];
type Held = BranchFacts['held'][number];
const applied = (deviceId: string | null, over: Partial<Applied> = {}): Applied => ({ entityId: ENTITY, version: 2, baseVersion: 1, trunkVersion: 1, conflict: null, source: 'IN_ORDER', changed: {}, deviceId, ...over });
const held = (deviceId: string | null, over: Partial<Held> = {}): Held => ({ entityId: ENTITY, baseVersion: 3, trunkVersion: 1, changeId: '9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a', deviceId, ...over });
const inRun = (deviceId: string | null, over: Partial<ValidChange> = {}): ValidChange => validChange({ entityId: ENTITY, branchId: RUN, trunkVersion: 1, baseVersion: 2, deviceId, ...over });
const OTHER_DEVICE = { code: 'BRANCH_OF_OTHER_DEVICE', message: `${ERROR_CODES.BRANCH_OF_OTHER_DEVICE}: ${RUN}` };

describe('checkBranch: a run belongs to the device that began it', () => {
  it('every device (none included) × every device of an applied or a held step: refused exactly when they differ', () => {
    for (const mine of DEVICES) {
      for (const theirs of DEVICES) {
        for (const branch of [{ applied: [applied(theirs)], held: [] }, { applied: [], held: [held(theirs)] }]) {
          expect(checkBranch(inRun(mine), branch), `${mine} naming a run of ${theirs}`).toEqual(mine === theirs ? null : OTHER_DEVICE);
        }
      }
    }
  });

  it('one step of another device is enough, and it is said before anything else about the run', () => {
    const mixed = { applied: [applied('tab-1')], held: [held('tab-2', { baseVersion: 4 })] };
    expect(checkBranch(inRun('tab-1'), mixed)).toEqual(OTHER_DEVICE);
    // Another entity, another trunk, a taken position: none of it is told to another device.
    const revealing = { applied: [applied('tab-2', { entityId: uuid(0xe, 9), trunkVersion: 5, baseVersion: 2 })], held: [] };
    expect(checkBranch(inRun('tab-1'), revealing)).toEqual(OTHER_DEVICE);
    expect(checkBranch(inRun('tab-2'), revealing)?.code).toBe('BRANCH_ON_OTHER_ENTITY');
  });

  it('property: refused BRANCH_OF_OTHER_DEVICE iff some step of the run is another device’s; otherwise the device changes nothing', () => {
    const device = fc.constantFrom(...DEVICES);
    const step = fc.record({ deviceId: device, baseVersion: fc.integer({ min: 0, max: 6 }), trunkVersion: fc.constantFrom(null, 1), entity: fc.boolean() });
    fc.assert(
      fc.property(device, fc.array(step, { maxLength: 5 }), fc.array(step, { maxLength: 5 }), fc.integer({ min: 1, max: 7 }), (mine, as, hs, base) => {
        const entityId = (own: boolean) => (own ? ENTITY : uuid(0xe, 9));
        const branch: BranchFacts = {
          applied: as.map((a, i) => applied(a.deviceId, { baseVersion: a.baseVersion, trunkVersion: a.trunkVersion, entityId: entityId(a.entity), version: i + 2 })),
          held: hs.map((h) => held(h.deviceId, { baseVersion: h.baseVersion, trunkVersion: h.trunkVersion, entityId: entityId(h.entity) })),
        };
        const change = inRun(mine, { baseVersion: base });
        const foreign = [...as, ...hs].some((s) => s.deviceId !== mine);
        expect(isOwnRun(change, branch)).toBe(!foreign);
        const verdict = checkBranch(change, branch);
        if (foreign) expect(verdict).toEqual(OTHER_DEVICE);
        else {
          // The same run, every step made by the change's device: the other rules decide, as before.
          const same = (d: string | null): BranchFacts => ({ applied: branch.applied.map((a) => ({ ...a, deviceId: d })), held: branch.held.map((h) => ({ ...h, deviceId: d })) });
          expect(verdict).toEqual(checkBranch({ ...change, deviceId: 'x' }, same('x')));
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('withRunCreate and adoptRun: only the run’s own device’s create', () => {
  const origin = (deviceId: string | null): EntityOrigin => ({ version: 1, action: 'CREATE', source: 'ONLINE', branchId: null, conflict: null, changed: { label: 'Oak' }, deviceId });
  const update = (deviceId: string | null) => inRun(deviceId, { trunkVersion: null, baseVersion: 1 });

  it('withRunCreate: the entity’s create is the run’s position 0 only when both are one device’s', () => {
    for (const mine of DEVICES) {
      for (const theirs of DEVICES) {
        const made = withRunCreate(update(mine), null, origin(theirs));
        expect(made?.applied.map((a) => [a.baseVersion, a.deviceId]) ?? [], `${mine} on a create of ${theirs}`).toEqual(mine === theirs ? [[0, mine]] : []);
      }
    }
  });

  it('adoptRun: a branchless create takes the oldest run begun offline by its own device, and no other', () => {
    const create = (deviceId: string | null) => validChange({ entityId: ENTITY, action: 'CREATE', label: 'Oak', baseVersion: null, deviceId });
    const runs = [
      { branchId: uuid(0xb, 1), deviceId: 'tab-2' },
      { branchId: uuid(0xb, 2), deviceId: 'tab-1' },
      { branchId: uuid(0xb, 3), deviceId: 'tab-1' },
    ];
    expect(adoptRun(create('tab-1'), null, runs)).toMatchObject({ branchId: uuid(0xb, 2), trunkVersion: null });
    expect(adoptRun(create('tab-2'), null, runs)).toMatchObject({ branchId: uuid(0xb, 1) });
    expect(adoptRun(create(null), null, runs)).toEqual(create(null));
    expect(adoptRun(create('tab-3'), null, runs)).toEqual(create('tab-3'));
  });
});

describe('mayReachEntity and maySeeRunOf', () => {
  const p = (over: Partial<Principal>): Principal => ({ tokenId: 't', role: 'reviewer', deviceId: null, datasets: null, subset: null, ...over });

  it('an entity is reached from its own dataset only, by a principal that may use it; a missing one by no one', () => {
    const cases: [Principal, string | null, string | null, boolean][] = [
      [p({}), 'a', 'a', true],
      [p({}), 'b', 'a', false],
      [p({}), 'b', null, true],
      [p({}), null, 'a', false],
      [p({}), null, null, false],
      [p({ datasets: ['a'] }), 'a', 'a', true],
      [p({ datasets: ['a'] }), 'b', 'a', false],
      [p({ datasets: ['a'] }), 'b', null, false],
      [p({ datasets: ['a'] }), 'b', 'b', false],
      [p({ role: 'collector', deviceId: 'tab-1', datasets: ['a'] }), 'a', 'a', true],
      [p({ role: 'collector', datasets: null }), 'b', 'a', false],
    ];
    for (const [principal, entity, from, expected] of cases) expect(mayReachEntity(principal, entity, from), JSON.stringify([principal, entity, from])).toBe(expected);
  });

  it('a run id: reviewers, admins and collectors for any device see all; a device-bound collector its own device’s only', () => {
    expect(maySeeRunOf(p({}), 'tab-2')).toBe(true);
    expect(maySeeRunOf(p({ role: 'admin' }), null)).toBe(true);
    expect(maySeeRunOf(p({ role: 'collector' }), 'tab-2')).toBe(true);
    expect(maySeeRunOf(p({ role: 'collector', deviceId: 'tab-1' }), 'tab-1')).toBe(true);
    expect(maySeeRunOf(p({ role: 'collector', deviceId: 'tab-1' }), 'tab-2')).toBe(false);
    expect(maySeeRunOf(p({ role: 'collector', deviceId: 'tab-1' }), null)).toBe(false);
    expect(maySeeRunOf(p({ role: 'collector', deviceId: 'tab-1' }), undefined)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// The plan (batch-plan.ts) over the in-memory store

const E = uuid(0xe, 1);
const B = uuid(0xb, 1);
const id = (n: number) => uuid(0xc, n);
const step = (n: number, base: number, deviceId: string | null, over: Partial<ChangeInput> = {}): ChangeInput => ({
  id: id(n),
  dataset: 'trees',
  deviceId,
  entityId: E,
  action: 'UPDATE',
  branchId: B,
  trunkVersion: 1,
  baseVersion: base,
  data: { note: `${deviceId}-${base}` },
  ...over,
});
const withOak = (s: MemoryStore = newStore(), dataset = 'trees', deviceId: string | null = null) => {
  submit(s, [{ id: id(100), dataset, deviceId, entityId: E, action: 'CREATE', label: 'Oak', data: { note: 'v1' } }]);
  return s;
};
/** The birds entity E, created by bird-phone (whose offline runs build on it). */
const withBird = () => withOak(newStore({ trees: ['note'], birds: ['note'] }), 'birds', 'bird-phone');
const brief = (r: ChangeResult): unknown => [r.outcome, r.error?.code ?? r.waitsFor ?? r.version, ...(r.released.length ? [r.released.map(brief)] : [])];

describe('the plan: another device’s change is never placed into the run', () => {
  it('the issue: tab-1 sends the missing first step of tab-2’s run: refused and recorded; tab-2’s own releases its steps', () => {
    const s = withOak();
    submit(s, [step(3, 3, 'tab-2'), step(2, 2, 'tab-2')]);
    const intrusion = submit(s, [step(1, 1, 'tab-1')]);
    expect(intrusion.results.map(brief)).toEqual([['REJECTED', 'BRANCH_OF_OTHER_DEVICE']]);
    expect(intrusion.writes.changes.map((c) => [c.changeId, c.outcome, c.errorCode, c.deviceId])).toEqual([[id(1), 'REJECTED', 'BRANCH_OF_OTHER_DEVICE', 'tab-1']]);
    expect(intrusion.writes.heldDeleted).toEqual([]);
    expect(intrusion.writes.versions).toEqual([]);
    // Only the refusal is announced (to webhooks): nothing of the run or its entity.
    expect(intrusion.events.map((e) => [e.type, 'code' in e ? e.code : null, 'datasetName' in e ? e.datasetName : null])).toEqual([['changeRejected', 'BRANCH_OF_OTHER_DEVICE', 'trees']]);
    expect(heldIds(s)).toEqual([id(3), id(2)]);
    const own = submit(s, [step(4, 1, 'tab-2')]);
    expect(own.results.map(brief)).toEqual([['APPLIED', 2, [['APPLIED', 3], ['APPLIED', 4]]]]);
    expect(s.versions.filter((v) => v.branchId === B).map((v) => v.deviceId)).toEqual(['tab-2', 'tab-2', 'tab-2']);
  });

  it('property: whatever the order and batching of two devices’ steps of one run id, every step in it is the first device’s, the rest refused and recorded', () => {
    const arrival = fc.record({ device: fc.constantFrom('tab-1', 'tab-2', null), base: fc.integer({ min: 1, max: 5 }), batch: fc.integer({ min: 0, max: 2 }) });
    fc.assert(
      fc.property(fc.array(arrival, { minLength: 1, maxLength: 10 }), fc.boolean(), (arrivals, forceAtEnd) => {
        const s = withOak();
        const sent = arrivals.map((a, i) => step(i + 1, a.base, a.device));
        const batches = [0, 1, 2].map((b) => sent.filter((_, i) => arrivals[i]!.batch === b)).filter((b) => b.length > 0);
        const results = batches.flatMap((b) => submit(s, b).results);
        if (forceAtEnd) force(s, heldIds(s));
        const owner = sent.find((c) => results.some((r) => r.changeId === c.id && r.outcome !== 'REJECTED'))?.deviceId;
        const all = (rs: readonly ChangeResult[]): ChangeResult[] => rs.flatMap((r) => [r, ...all(r.released)]);
        for (const r of all(results)) {
          const c = sent.find((x) => x.id === r.changeId)!;
          if (c.deviceId !== owner) expect(r, JSON.stringify(r)).toMatchObject({ outcome: 'REJECTED', error: { code: 'BRANCH_OF_OTHER_DEVICE' } });
          else expect(r.error?.code).not.toBe('BRANCH_OF_OTHER_DEVICE');
        }
        // Stored: every version and held step of the run is the owner's; every refusal is in the log.
        expect(new Set([...s.versions.filter((v) => v.branchId === B).map((v) => v.deviceId), ...s.held.map((h) => h.deviceId)])).toEqual(new Set(owner === undefined ? [] : [owner]));
        for (const c of sent.filter((x) => x.deviceId !== owner)) {
          expect(s.changes.filter((row) => row.changeId === c.id).map((row) => [row.outcome, row.errorCode])).toContainEqual(['REJECTED', 'BRANCH_OF_OTHER_DEVICE']);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('the plan: seen from a dataset, nothing of another exists', () => {
  const both = () => newStore({ trees: ['note'], birds: ['note'] });
  const inTrees = (n: number, entityId: string, runId: string, over: Partial<ChangeInput> = {}): ChangeInput => step(n, 2, 'tab-1', { entityId, branchId: runId, trunkVersion: null, ...over });
  /** The answer without the ids, which differ by construction. */
  const answer = (r: ChangeResult) => ({ outcome: r.outcome, waitsFor: r.waitsFor, version: r.version, code: r.error?.code ?? null, released: r.released.length });

  it('property: a change in trees naming a birds entity (and its run’s id) gets the answer a change naming an id no dataset has gets', () => {
    const change = fc.record({
      action: fc.constantFrom('CREATE', 'UPDATE', 'DELETE'),
      base: fc.integer({ min: 1, max: 4 }),
      trunk: fc.constantFrom(null, 1, 2),
      inRun: fc.boolean(),
      birdsRun: fc.constantFrom('none', 'applied', 'held'),
      device: fc.constantFrom('tab-1', 'bird-phone'),
    });
    fc.assert(
      fc.property(change, (g) => {
        const s = withBird();
        // The birds entity's own run, of bird-phone, with position 1 applied and/or position 3 held.
        const bird = (n: number, base: number) => step(n, base, 'bird-phone', { dataset: 'birds', trunkVersion: null });
        if (g.birdsRun === 'applied') submit(s, [bird(50, 1)]);
        if (g.birdsRun === 'held') submit(s, [bird(50, 1), bird(51, 3)]);
        const sent = (entityId: string, runId: string, n: number): ChangeInput => ({
          id: id(n),
          dataset: 'trees',
          deviceId: g.device,
          entityId,
          action: g.action as ChangeInput['action'],
          ...(g.action === 'CREATE' ? { label: 'x' } : { baseVersion: g.base }),
          ...(g.inRun ? { branchId: runId, trunkVersion: g.action === 'CREATE' ? null : g.trunk === null ? null : Math.min(g.trunk, g.base) } : {}),
          data: {},
        });
        const onBird = submit(s, [sent(E, B, 1)]).results[0]!;
        const onNothing = submit(s, [sent(uuid(0xe, 77), uuid(0xb, 77), 2)]).results[0]!;
        // Only a create learns that the id is taken, as with any unique id.
        if (g.action === 'CREATE') expect(onBird).toMatchObject({ outcome: 'REJECTED', error: { code: 'ENTITY_EXISTS' } });
        else expect(answer(onBird)).toEqual(answer(onNothing));
        // Nothing of birds moved.
        expect(s.entities.get(E)).toMatchObject({ datasetId: s.datasets.get('birds')!.id, version: g.birdsRun === 'none' ? 1 : 2 });
      }),
      { numRuns: 400 },
    );
  });

  it('held in trees on a birds entity: birds’ run of that id never releases it, and forced it is refused without touching birds', () => {
    const s = withBird();
    submit(s, [step(10, 3, 'bird-phone', { dataset: 'birds', trunkVersion: null })]);
    const held = submit(s, [inTrees(1, E, B, { baseVersion: 3 }), inTrees(2, E, B, { baseVersion: 4 })]);
    expect(held.results.map(brief)).toEqual([['HELD', 2], ['HELD', 3]]);
    expect(held.events.map((e) => [e.type, 'datasetName' in e ? e.datasetName : null])).toEqual([['changeHeld', 'trees'], ['changeHeld', 'trees']]);
    // birds' positions 1 and 2 arrive: birds' own 3 is released, trees' 3 and 4 stay.
    const released = submit(s, [step(11, 1, 'bird-phone', { dataset: 'birds', trunkVersion: null }), step(12, 2, 'bird-phone', { dataset: 'birds', trunkVersion: null })]);
    expect(released.results.map(brief)).toEqual([['APPLIED', 2], ['APPLIED', 3, [['APPLIED', 4]]]]);
    expect(heldIds(s)).toEqual([id(1), id(2)]);
    const forced = force(s, [id(1), id(2)]);
    expect(forced.results.map(brief)).toEqual([['REJECTED', 'ENTITY_EXISTS'], ['REJECTED', 'ENTITY_EXISTS']]);
    expect(forced.results.map((r) => r.dataset)).toEqual(['trees', 'trees']);
    expect(forced.writes.versions).toEqual([]);
    // The refusals are announced in trees, where the changes were sent; nothing of birds' entity.
    expect(forced.events.map((e) => [e.type, 'code' in e ? e.code : null, 'datasetName' in e ? e.datasetName : null])).toEqual([
      ['changeRejected', 'ENTITY_EXISTS', 'trees'],
      ['changeRejected', 'ENTITY_EXISTS', 'trees'],
    ]);
    expect(s.entities.get(E)).toMatchObject({ version: 4, data: { note: 'bird-phone-3' } });
  });

  it('a held delete of a birds entity, forced, is ENTITY_NOT_FOUND, as for a missing one', () => {
    const s = withBird();
    submit(s, [inTrees(1, E, B, { action: 'DELETE', data: undefined })]);
    expect(force(s, [id(1)]).results.map(brief)).toEqual([['REJECTED', 'ENTITY_NOT_FOUND']]);
  });

  it('a branchless create in birds adopts no run held in trees', () => {
    const s = both();
    submit(s, [inTrees(1, E, B, { deviceId: null, baseVersion: 1 })]);
    const created = submit(s, [{ id: id(2), dataset: 'birds', entityId: E, action: 'CREATE', label: 'Bird', data: {} }]);
    expect(created.results.map(brief)).toEqual([['APPLIED', 1]]);
    expect(s.versions.map((v) => [v.entityId, v.branchId])).toEqual([[E, null]]);
    expect(heldIds(s)).toEqual([id(1)]);
  });
});
