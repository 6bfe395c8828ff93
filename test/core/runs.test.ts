import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  adoptRun,
  appliedOnVersion,
  buildsOnEntityCreate,
  placeChange,
  seenUpTo,
  unseenVersions,
  withRunCreate,
  type BranchFacts,
  type EntityOrigin,
} from '../../src/core/placement.js';
import type { EntityState, ValidChange } from '../../src/core/types.js';
import { deepFreeze, validChange } from '../helpers/core.js';

/** Issue 11: runs as ODK Collect sends them, and appliedOn as the version a change was applied against. */

const ENTITY = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const RUN = 'c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f';
const OTHER_RUN = 'd4e5f6a7-b8c9-4d0e-9f1a-3b4c5d6e7f80';

const inRun = (trunk: number | null, over: Partial<ValidChange> = {}): ValidChange => validChange({ entityId: ENTITY, branchId: RUN, trunkVersion: trunk, ...over });
const create = (over: Partial<ValidChange> = {}): ValidChange => validChange({ entityId: ENTITY, action: 'CREATE', label: 'Oak', baseVersion: null, ...over });
const origin = (over: Partial<EntityOrigin> = {}): EntityOrigin => ({ version: 1, action: 'CREATE', source: 'ONLINE', branchId: null, conflict: null, changed: { label: 'Oak' }, deviceId: null, ...over });
const member = (over: Partial<BranchFacts['applied'][number]> = {}): BranchFacts['applied'][number] => ({
  entityId: ENTITY,
  version: 2,
  baseVersion: 1,
  trunkVersion: null,
  conflict: null,
  source: 'IN_ORDER',
  changed: {},
  deviceId: null,
  ...over,
});
const facts = (applied: BranchFacts['applied'] = [], held: BranchFacts['held'] = []): BranchFacts => ({ applied, held });
const live = (version: number): EntityState => ({ label: 'Oak', data: {}, version, deleted: false });

describe('buildsOnEntityCreate', () => {
  it('only a run that began offline, only on an entity made by a create, and only by a create of its own device', () => {
    const run = (trunkVersion: number | null, deviceId: string | null = null) => ({ trunkVersion, deviceId });
    expect(buildsOnEntityCreate(run(null), { action: 'CREATE', deviceId: null })).toBe(true);
    expect(buildsOnEntityCreate(run(null, 'tab-1'), { action: 'CREATE', deviceId: 'tab-1' })).toBe(true);
    expect(buildsOnEntityCreate(run(1), { action: 'CREATE', deviceId: null })).toBe(false);
    expect(buildsOnEntityCreate(run(null), { action: 'UPDATE', deviceId: null })).toBe(false);
    expect(buildsOnEntityCreate(run(null), null)).toBe(false);
    // Another device's create, or a device's create for a run sent without a device, or the reverse.
    expect(buildsOnEntityCreate(run(null, 'tab-1'), { action: 'CREATE', deviceId: 'tab-2' })).toBe(false);
    expect(buildsOnEntityCreate(run(null, 'tab-1'), { action: 'CREATE', deviceId: null })).toBe(false);
    expect(buildsOnEntityCreate(run(null), { action: 'CREATE', deviceId: 'tab-1' })).toBe(false);
  });
});

describe('withRunCreate: the create of a run that began offline is its position 0, with or without its branchId', () => {
  it('adds the entity\'s branchless create to the run', () => {
    const made = withRunCreate(inRun(null, { baseVersion: 1 }), facts(), origin({ conflict: 'SOFT', changed: { label: 'Oak', height: 1 } }));
    expect(made).toEqual(facts([member({ version: 1, baseVersion: 0, trunkVersion: null, conflict: 'SOFT', source: 'ONLINE', changed: { label: 'Oak', height: 1 } })]));
  });

  it('starts from no facts at all', () => {
    expect(withRunCreate(inRun(null, { baseVersion: 1 }), null, origin())!.applied.map((v) => [v.version, v.baseVersion])).toEqual([[1, 0]]);
  });

  it('keeps the held changes and the run\'s own applied ones', () => {
    const before = deepFreeze(facts([member({ version: 2, baseVersion: 1 })], [{ entityId: ENTITY, baseVersion: 3, trunkVersion: null, changeId: 'x', deviceId: null }]));
    const after = withRunCreate(inRun(null, { baseVersion: 2 }), before, origin())!;
    expect(after.held).toBe(before.held);
    expect(after.applied.map((v) => [v.version, v.baseVersion])).toEqual([[2, 1], [1, 0]]);
  });

  it('changes nothing for a run on a trunk, a change without a run, a placeholder entity, a create that carried the run\'s id, or a run that has its position 0', () => {
    const f = facts([member()]);
    expect(withRunCreate(inRun(1, { baseVersion: 2 }), f, origin())).toBe(f);
    expect(withRunCreate(validChange({ entityId: ENTITY }), f, origin())).toBe(f);
    expect(withRunCreate(inRun(null, { baseVersion: 2 }), f, origin({ action: 'UPDATE', source: 'FORCED', branchId: RUN }))).toBe(f);
    expect(withRunCreate(inRun(null, { baseVersion: 2 }), f, origin({ branchId: RUN }))).toBe(f);
    expect(withRunCreate(inRun(null, { baseVersion: 2 }), f, null)).toBe(f);
    const started = facts([member({ version: 7, baseVersion: 0 })]);
    expect(withRunCreate(inRun(null, { baseVersion: 2 }), started, origin())).toBe(started);
  });

  it('so the run\'s first update applies on the branchless create, instead of waiting for it', () => {
    const u1 = inRun(null, { baseVersion: 1 });
    expect(placeChange(u1, live(1), facts())).toEqual({ kind: 'hold', waitsFor: 0 });
    expect(placeChange(u1, live(1), withRunCreate(u1, facts(), origin()))).toEqual({ kind: 'apply', asUpdate: false });
  });
});

describe('adoptRun: a create naming no run takes the run the server holds for its entity', () => {
  const runs = [RUN, OTHER_RUN].map((branchId) => ({ branchId, deviceId: null }));

  it('the oldest run that began offline, for an entity not made yet or made by a forced change', () => {
    expect(adoptRun(create(), null, runs)).toEqual({ ...create(), branchId: RUN, trunkVersion: null });
    expect(adoptRun(create(), origin({ action: 'UPDATE', source: 'FORCED', branchId: RUN }), runs)).toMatchObject({ branchId: RUN });
  });

  it('not when there is no such run, the entity was made by a create, the change names a run, or is no create', () => {
    expect(adoptRun(create(), null, [])).toEqual(create());
    expect(adoptRun(create(), origin(), runs)).toEqual(create());
    expect(adoptRun(create({ branchId: OTHER_RUN }), null, runs.slice(0, 1))).toMatchObject({ branchId: OTHER_RUN });
    const update = validChange({ entityId: ENTITY });
    expect(adoptRun(update, null, runs)).toBe(update);
  });

  it('then the late create is placed as its run\'s: beneath the forced change, not ENTITY_EXISTS', () => {
    const forced = facts([member({ version: 1, baseVersion: 1, source: 'FORCED' })]);
    const placeholder = origin({ action: 'UPDATE', source: 'FORCED', branchId: RUN });
    // Without the run it names nothing the server could place it in.
    expect(placeChange(create(), live(1), null)).toMatchObject({ kind: 'reject', error: { code: 'ENTITY_EXISTS' } });
    expect(placeChange(adoptRun(create(), placeholder, runs.slice(0, 1)), live(1), forced)).toEqual({ kind: 'apply', asUpdate: true });
  });
});

describe('unseenVersions', () => {
  const versions = [1, 2, 3, 4, 5].map((version) => ({ version }));

  it('without a run: after its baseVersion', () => {
    expect(unseenVersions(validChange({ baseVersion: 3 }), false, null, versions).map((v) => v.version)).toEqual([4, 5]);
  });

  it('in a run: after the trunk, except the run\'s own versions on this entity', () => {
    const f = facts([member({ version: 3, baseVersion: 1 }), member({ version: 5, baseVersion: 2, entityId: 'elsewhere' })]);
    expect(unseenVersions(inRun(1, { baseVersion: 2 }), false, f, versions).map((v) => v.version)).toEqual([2, 4, 5]);
  });

  it('a run that began offline: its create (in its facts) is seen', () => {
    const u1 = inRun(null, { baseVersion: 1 });
    expect(unseenVersions(u1, false, withRunCreate(u1, facts(), origin()), versions.slice(0, 2)).map((v) => v.version)).toEqual([2]);
    expect(unseenVersions(u1, false, facts(), versions.slice(0, 2)).map((v) => v.version)).toEqual([1, 2]);
  });

  it('a create beneath its forced run has seen nothing, its run included', () => {
    expect(unseenVersions(inRun(null, { action: 'CREATE', baseVersion: null }), true, facts([member({ version: 1 })]), versions).map((v) => v.version)).toEqual([1, 2, 3, 4, 5]);
  });

  it('property: a subset of the versions after what the author saw, never one of its run', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 6 }), fc.boolean(), (trunk, own, asUpdate) => {
        const change = inRun(trunk, { baseVersion: trunk + 1 });
        const f = facts(own.map((version, i) => member({ version, baseVersion: trunk + i })));
        const all = Array.from({ length: 12 }, (_, i) => ({ version: i + 1 }));
        const unseen = unseenVersions(change, asUpdate, f, all).map((v) => v.version);
        const after = seenUpTo(change, asUpdate);
        expect(unseen.every((v) => v > after)).toBe(true);
        if (!asUpdate) expect(unseen.filter((v) => own.includes(v))).toEqual([]);
        // Nothing else is left out: every version after what the author saw that is not its run's.
        for (const v of all) if (v.version > after && (asUpdate || !own.includes(v.version))) expect(unseen, String(v.version)).toContain(v.version);
        // In the order they were given.
        expect(unseen).toEqual([...unseen].sort((a, b) => a - b));
      }),
    );
  });
});

describe('appliedOnVersion: the server version a change was applied against', () => {
  it('a create, or a create beneath its forced run: none', () => {
    expect(appliedOnVersion(create(), false, null)).toBeNull();
    expect(appliedOnVersion(inRun(null, { action: 'CREATE', baseVersion: null }), true, facts([member()]))).toBeNull();
  });

  it('without a run: its baseVersion, whatever came since', () => {
    expect(appliedOnVersion(validChange({ baseVersion: 3 }), false, null)).toBe(3);
    expect(appliedOnVersion(validChange({ action: 'DELETE', baseVersion: 1 }), false, null)).toBe(1);
  });

  it('a run\'s first change: the trunk', () => {
    expect(appliedOnVersion(inRun(4, { baseVersion: 4 }), false, facts())).toBe(4);
  });

  it('a later change: its predecessor\'s version (3, though 4 came in between)', () => {
    expect(appliedOnVersion(inRun(2, { baseVersion: 3 }), false, facts([member({ version: 3, baseVersion: 2 })]))).toBe(3);
  });

  it('predecessor missing (forced, or beneath a forced successor): the closest earlier change of the run, else the trunk', () => {
    const f = facts([member({ version: 2, baseVersion: 1 }), member({ version: 5, baseVersion: 2 }), member({ version: 4, baseVersion: 6 })]);
    expect(appliedOnVersion(inRun(1, { baseVersion: 4 }), false, f)).toBe(5);
    expect(appliedOnVersion(inRun(7, { baseVersion: 9 }), false, facts())).toBe(7);
    expect(appliedOnVersion(inRun(null, { baseVersion: 2 }), false, facts())).toBeNull();
    // Another entity's versions never count.
    expect(appliedOnVersion(inRun(1, { baseVersion: 3 }), false, facts([member({ entityId: 'elsewhere', version: 9, baseVersion: 2 })]))).toBe(1);
  });

  it('the first update of a run that began offline: the create it builds on', () => {
    const u1 = inRun(null, { baseVersion: 1 });
    expect(appliedOnVersion(u1, false, withRunCreate(u1, facts(), origin({ version: 1 })))).toBe(1);
  });

  it('property: in a run, always the trunk or a version of the run with a lower position', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.uniqueArray(fc.integer({ min: 0, max: 8 }), { maxLength: 5 }), (trunk, step, positions) => {
        const position = trunk + step;
        const f = facts(positions.map((p, i) => member({ baseVersion: trunk + p, version: 10 + i })));
        const on = appliedOnVersion(inRun(trunk, { baseVersion: position }), false, f);
        const lower = f.applied.filter((v) => v.baseVersion < position);
        expect([trunk, ...lower.map((v) => v.version)]).toContain(on);
        // Changes of the run at or after its position never matter.
        const later = f.applied.filter((v) => v.baseVersion >= position);
        expect(appliedOnVersion(inRun(trunk, { baseVersion: position }), false, facts(lower))).toBe(on);
        expect(appliedOnVersion(inRun(trunk, { baseVersion: position }), false, facts([...later, ...lower].reverse()))).toBe(on);
        // The predecessor, when applied, is what it was applied against.
        const predecessor = lower.find((v) => v.baseVersion === position - 1);
        if (predecessor) expect(on).toBe(predecessor.version);
      }),
    );
  });

  it('law: an earlier change of the run joining the facts moves appliedOn only to that change, and only when it is closer', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 2, max: 6 }), fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }), fc.nat(), (trunk, step, positions, pick) => {
        const position = trunk + step;
        const all = positions.filter((p) => p < step).map((p, i) => member({ baseVersion: trunk + p, version: 10 + i }));
        fc.pre(all.length > 0);
        const joining = all[pick % all.length]!;
        const rest = all.filter((v) => v !== joining);
        const before = appliedOnVersion(inRun(trunk, { baseVersion: position }), false, facts(rest));
        const after = appliedOnVersion(inRun(trunk, { baseVersion: position }), false, facts(all));
        const closer = rest.every((v) => v.baseVersion < joining.baseVersion);
        expect(after).toBe(closer ? joining.version : before);
      }),
    );
  });
});
