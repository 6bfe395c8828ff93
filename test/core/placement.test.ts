import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  authorView,
  beneathLaterChanges,
  checkBranch,
  isRunStart,
  placeChange,
  runPosition,
  seenUpTo,
  type BranchFacts,
} from '../../src/core/placement.js';
import { ERROR_CODES, type ConflictType, type EntityState, type ErrorCode, type PropertyValues, type ValidChange, type VersionSource } from '../../src/core/types.js';
import { deepFreeze, validChange } from '../helpers/core.js';

const ENTITY = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const OTHER_ENTITY = 'b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e';
const BRANCH = 'c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f';

const change = (over: Partial<ValidChange> = {}): ValidChange => validChange({ entityId: ENTITY, ...over });

/** A change of the offline run BRANCH that began on server version `trunk` (null: with an offline create). */
const inRun = (trunk: number | null, over: Partial<ValidChange> = {}): ValidChange => change({ branchId: BRANCH, trunkVersion: trunk, ...over });
const offlineCreate = (over: Partial<ValidChange> = {}): ValidChange =>
  inRun(null, { action: 'CREATE', label: 'Oak', baseVersion: null, data: { height: 1 }, ...over });

const state = (version: number, deleted = false, data: PropertyValues = {}): EntityState => ({ label: 'Oak', data, version, deleted });

type AppliedFact = BranchFacts['applied'][number];
type HeldFact = BranchFacts['held'][number];
const applied = (over: Partial<AppliedFact> = {}): AppliedFact => ({
  entityId: ENTITY,
  version: 2,
  baseVersion: 1,
  trunkVersion: 1,
  conflict: null,
  source: 'IN_ORDER',
  changed: {},
  deviceId: null,
  ...over,
});
const held = (over: Partial<HeldFact> = {}): HeldFact => ({
  entityId: ENTITY,
  baseVersion: 3,
  trunkVersion: 1,
  changeId: '9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a',
  deviceId: null,
  ...over,
});
const facts = (a: AppliedFact[] = [], h: HeldFact[] = []): BranchFacts => ({ applied: a, held: h });
const NO_FACTS = facts();

const rejected = (code: ErrorCode, detail?: string) => ({
  kind: 'reject',
  error: { code, message: detail === undefined ? ERROR_CODES[code] : `${ERROR_CODES[code]}: ${detail}` },
});
const APPLY = { kind: 'apply', asUpdate: false } as const;

describe('runPosition', () => {
  it('an offline create is position 0, whatever baseVersion it carries', () => {
    expect(runPosition({ action: 'CREATE', baseVersion: null })).toBe(0);
    expect(runPosition({ action: 'CREATE', baseVersion: 5 })).toBe(0);
  });

  it('an update or delete is at its client baseVersion', () => {
    expect(runPosition({ action: 'UPDATE', baseVersion: 1 })).toBe(1);
    expect(runPosition({ action: 'UPDATE', baseVersion: 3 })).toBe(3);
    expect(runPosition({ action: 'DELETE', baseVersion: 7 })).toBe(7);
  });

  it('an update without baseVersion counts as 0', () => {
    expect(runPosition({ action: 'UPDATE', baseVersion: null })).toBe(0);
  });
});

describe('isRunStart', () => {
  it('a change without a branch is made on a server version: always a start', () => {
    expect(isRunStart(change({ baseVersion: 5, trunkVersion: null, branchId: null }))).toBe(true);
    expect(isRunStart(change({ action: 'DELETE', baseVersion: 1 }))).toBe(true);
  });

  it('an offline create begins its run', () => {
    expect(isRunStart(offlineCreate())).toBe(true);
  });

  it('the first change of a run on a server version: baseVersion == trunkVersion', () => {
    expect(isRunStart(inRun(1, { baseVersion: 1 }))).toBe(true);
    expect(isRunStart(inRun(4, { baseVersion: 4 }))).toBe(true);
    expect(isRunStart(inRun(4, { action: 'DELETE', baseVersion: 4 }))).toBe(true);
  });

  it('a later change of a run: baseVersion > trunkVersion', () => {
    expect(isRunStart(inRun(1, { baseVersion: 2 }))).toBe(false);
    expect(isRunStart(inRun(4, { baseVersion: 9 }))).toBe(false);
  });

  it('an update in a run that began with an offline create is never a start', () => {
    expect(isRunStart(inRun(null, { baseVersion: 1 }))).toBe(false);
    expect(isRunStart(inRun(null, { baseVersion: 3 }))).toBe(false);
  });
});

describe('checkBranch', () => {
  it('a new branch is consistent', () => {
    expect(checkBranch(inRun(1, { baseVersion: 1 }), NO_FACTS)).toBeNull();
    expect(checkBranch(offlineCreate(), NO_FACTS)).toBeNull();
    expect(checkBranch(inRun(null, { baseVersion: 2 }), NO_FACTS)).toBeNull();
  });

  it('a change filling a gap of its run is consistent', () => {
    const branch = facts([applied({ baseVersion: 1, version: 2 }), applied({ baseVersion: 2, version: 3 })], [held({ baseVersion: 4 }), held({ baseVersion: 5 })]);
    expect(checkBranch(inRun(1, { baseVersion: 3 }), branch)).toBeNull();
    expect(checkBranch(inRun(1, { baseVersion: 6 }), branch)).toBeNull();
  });

  it('an offline create whose updates are held is consistent', () => {
    const branch = facts([], [held({ baseVersion: 1, trunkVersion: null }), held({ baseVersion: 2, trunkVersion: null })]);
    expect(checkBranch(offlineCreate(), branch)).toBeNull();
  });

  it('BRANCH_ON_OTHER_ENTITY: an applied change of the branch is on another entity', () => {
    const branch = facts([applied({ entityId: OTHER_ENTITY })]);
    expect(checkBranch(inRun(1, { baseVersion: 2 }), branch)).toEqual({ code: 'BRANCH_ON_OTHER_ENTITY', message: `${ERROR_CODES.BRANCH_ON_OTHER_ENTITY}: ${BRANCH}` });
  });

  it('BRANCH_ON_OTHER_ENTITY: a held change of the branch is on another entity', () => {
    const branch = facts([], [held({ entityId: OTHER_ENTITY, baseVersion: 1, trunkVersion: null })]);
    expect(checkBranch(offlineCreate(), branch)).toEqual({ code: 'BRANCH_ON_OTHER_ENTITY', message: `${ERROR_CODES.BRANCH_ON_OTHER_ENTITY}: ${BRANCH}` });
  });

  it('BRANCH_ON_OTHER_ENTITY is reported before a trunk change or a taken position', () => {
    const branch = facts([applied({ entityId: OTHER_ENTITY, trunkVersion: 3, baseVersion: 3 })]);
    expect(checkBranch(inRun(1, { baseVersion: 3 }), branch)?.code).toBe('BRANCH_ON_OTHER_ENTITY');
  });

  it('BRANCH_TRUNK_CHANGED: the run began on another server version', () => {
    expect(checkBranch(inRun(2, { baseVersion: 3 }), facts([applied({ trunkVersion: 1, baseVersion: 1 })]))).toEqual({
      code: 'BRANCH_TRUNK_CHANGED',
      message: `${ERROR_CODES.BRANCH_TRUNK_CHANGED}: the run began at trunkVersion 1, this change says 2`,
    });
  });

  it('BRANCH_TRUNK_CHANGED: known only from held changes', () => {
    expect(checkBranch(inRun(1, { baseVersion: 2 }), facts([], [held({ trunkVersion: 3, baseVersion: 5 })]))).toEqual({
      code: 'BRANCH_TRUNK_CHANGED',
      message: `${ERROR_CODES.BRANCH_TRUNK_CHANGED}: the run began at trunkVersion 3, this change says 1`,
    });
  });

  it('BRANCH_TRUNK_CHANGED: a run that began with an offline create, then a change naming a trunk', () => {
    expect(checkBranch(inRun(3, { baseVersion: 4 }), facts([applied({ trunkVersion: null, baseVersion: 0, version: 1 })]))).toEqual({
      code: 'BRANCH_TRUNK_CHANGED',
      message: `${ERROR_CODES.BRANCH_TRUNK_CHANGED}: the run began at trunkVersion null, this change says 3`,
    });
  });

  it('BRANCH_TRUNK_CHANGED: a run that began on a trunk, then a change without one', () => {
    expect(checkBranch(inRun(null, { baseVersion: 4 }), facts([applied({ trunkVersion: 2, baseVersion: 2 })]))).toEqual({
      code: 'BRANCH_TRUNK_CHANGED',
      message: `${ERROR_CODES.BRANCH_TRUNK_CHANGED}: the run began at trunkVersion 2, this change says null`,
    });
    expect(checkBranch(offlineCreate(), facts([applied({ trunkVersion: 2, baseVersion: 2 })]))?.code).toBe('BRANCH_TRUNK_CHANGED');
  });

  it('BRANCH_TRUNK_CHANGED is reported before a taken position', () => {
    expect(checkBranch(inRun(2, { baseVersion: 2 }), facts([applied({ trunkVersion: 1, baseVersion: 2 })]))?.code).toBe('BRANCH_TRUNK_CHANGED');
  });

  it('BRANCH_POSITION_TAKEN: another change of the run is applied at this position', () => {
    expect(checkBranch(inRun(1, { baseVersion: 2 }), facts([applied({ baseVersion: 1 }), applied({ baseVersion: 2, version: 3 })]))).toEqual({
      code: 'BRANCH_POSITION_TAKEN',
      message: `${ERROR_CODES.BRANCH_POSITION_TAKEN}: baseVersion 2`,
    });
  });

  it('BRANCH_POSITION_TAKEN: another change of the run is held at this position', () => {
    expect(checkBranch(inRun(1, { baseVersion: 3 }), facts([], [held({ baseVersion: 3 })]))).toEqual({
      code: 'BRANCH_POSITION_TAKEN',
      message: `${ERROR_CODES.BRANCH_POSITION_TAKEN}: baseVersion 3`,
    });
  });

  it('BRANCH_POSITION_TAKEN: a second offline create of the run (position 0)', () => {
    expect(checkBranch(offlineCreate(), facts([applied({ trunkVersion: null, baseVersion: 0, version: 1 })]))).toEqual({
      code: 'BRANCH_POSITION_TAKEN',
      message: `${ERROR_CODES.BRANCH_POSITION_TAKEN}: baseVersion 0`,
    });
  });

  it('BRANCH_POSITION_TAKEN: a second run start', () => {
    expect(checkBranch(inRun(1, { baseVersion: 1 }), facts([applied({ baseVersion: 1 })]))?.code).toBe('BRANCH_POSITION_TAKEN');
  });
});

describe('placeChange: creates', () => {
  it('a create with a trunkVersion is malformed', () => {
    expect(placeChange(inRun(2, { action: 'CREATE', label: 'Oak', baseVersion: null }), null, NO_FACTS)).toEqual(
      rejected('MALFORMED_CHANGE', 'a create begins its run: it has no trunkVersion'),
    );
    expect(placeChange(inRun(2, { action: 'CREATE', label: 'Oak', baseVersion: null }), state(3), NO_FACTS)).toEqual(
      rejected('MALFORMED_CHANGE', 'a create begins its run: it has no trunkVersion'),
    );
  });

  it('a create of a new entity applies', () => {
    expect(placeChange(change({ action: 'CREATE', label: 'Oak', baseVersion: null }), null, null)).toEqual(APPLY);
    expect(placeChange(offlineCreate(), null, NO_FACTS)).toEqual(APPLY);
  });

  it('an offline create whose updates are held applies (it is their missing start)', () => {
    const branch = facts([], [held({ baseVersion: 1, trunkVersion: null }), held({ baseVersion: 2, trunkVersion: null })]);
    expect(placeChange(offlineCreate(), null, branch)).toEqual(APPLY);
  });

  it('a create of an existing entity is ENTITY_EXISTS', () => {
    expect(placeChange(change({ action: 'CREATE', label: 'Oak', baseVersion: null }), state(1), null)).toEqual(rejected('ENTITY_EXISTS', ENTITY));
    expect(placeChange(offlineCreate(), state(3), NO_FACTS)).toEqual(rejected('ENTITY_EXISTS', ENTITY));
  });

  it('an offline create whose run has applied versions, none forced, is still ENTITY_EXISTS', () => {
    const branch = facts([applied({ trunkVersion: null, baseVersion: 1, source: 'RELEASED', version: 2 })]);
    expect(placeChange(offlineCreate(), state(2), branch)).toEqual(rejected('ENTITY_EXISTS', ENTITY));
  });

  it('an offline create after a forced update of its own run made the entity: applies as an update', () => {
    const branch = facts([applied({ trunkVersion: null, baseVersion: 1, source: 'FORCED', version: 1, conflict: 'SOFT' })]);
    expect(placeChange(offlineCreate(), state(1), branch)).toEqual({ kind: 'apply', asUpdate: true });
  });

  it('asUpdate also when the forced version is not the newest of the run', () => {
    const branch = facts([
      applied({ trunkVersion: null, baseVersion: 2, source: 'FORCED', version: 1, conflict: 'SOFT' }),
      applied({ trunkVersion: null, baseVersion: 3, source: 'RELEASED', version: 2 }),
    ]);
    expect(placeChange(offlineCreate(), state(2), branch)).toEqual({ kind: 'apply', asUpdate: true });
  });

  it('a forced version on another entity does not make a create an update', () => {
    const branch = facts([applied({ entityId: OTHER_ENTITY, trunkVersion: null, baseVersion: 1, source: 'FORCED', version: 1 })]);
    expect(placeChange(offlineCreate(), state(1), branch)).toEqual(rejected('ENTITY_EXISTS', ENTITY));
  });

  it('a create without a branch never becomes an update', () => {
    expect(placeChange(change({ action: 'CREATE', label: 'Oak', baseVersion: null }), state(1), null)).toEqual(rejected('ENTITY_EXISTS', ENTITY));
  });

  it('an offline create after its forced run made the entity and someone deleted it: ENTITY_DELETED, not "already exists"', () => {
    // DESIGN step 6: such a create "is applied as an update ... never rejected as 'already exists'";
    // an update of a deleted entity is rejected as ENTITY_DELETED.
    const branch = facts([applied({ trunkVersion: null, baseVersion: 1, source: 'FORCED', version: 1, conflict: 'SOFT' })]);
    expect(placeChange(offlineCreate(), state(2, true), branch)).toEqual(rejected('ENTITY_DELETED', ENTITY));
  });
});

describe('placeChange: updates and deletes of an entity that does not exist', () => {
  it('an update of a run that began with an offline create is held until the create lands', () => {
    expect(placeChange(inRun(null, { baseVersion: 1 }), null, NO_FACTS)).toEqual({ kind: 'hold', waitsFor: 0 });
    expect(placeChange(inRun(null, { baseVersion: 3 }), null, NO_FACTS)).toEqual({ kind: 'hold', waitsFor: 2 });
  });

  it('held even when its predecessor is held too', () => {
    expect(placeChange(inRun(null, { baseVersion: 2 }), null, facts([], [held({ baseVersion: 1, trunkVersion: null })]))).toEqual({ kind: 'hold', waitsFor: 1 });
  });

  it('a delete of such a run is held likewise', () => {
    expect(placeChange(inRun(null, { action: 'DELETE', baseVersion: 2 }), null, NO_FACTS)).toEqual({ kind: 'hold', waitsFor: 1 });
  });

  it('an update without a branch: ENTITY_NOT_FOUND', () => {
    expect(placeChange(change({ baseVersion: 1 }), null, null)).toEqual(rejected('ENTITY_NOT_FOUND', ENTITY));
    expect(placeChange(change({ action: 'DELETE', baseVersion: 1 }), null, null)).toEqual(rejected('ENTITY_NOT_FOUND', ENTITY));
  });

  it('an update of a run that began on a server version: ENTITY_NOT_FOUND, start or not', () => {
    expect(placeChange(inRun(1, { baseVersion: 1 }), null, NO_FACTS)).toEqual(rejected('ENTITY_NOT_FOUND', ENTITY));
    expect(placeChange(inRun(1, { baseVersion: 3 }), null, NO_FACTS)).toEqual(rejected('ENTITY_NOT_FOUND', ENTITY));
  });
});

describe('placeChange: updates and deletes of an existing entity', () => {
  it('a deleted entity: ENTITY_DELETED, with or without a branch', () => {
    expect(placeChange(change({ baseVersion: 2 }), state(2, true), null)).toEqual(rejected('ENTITY_DELETED', ENTITY));
    expect(placeChange(inRun(1, { baseVersion: 1 }), state(2, true), NO_FACTS)).toEqual(rejected('ENTITY_DELETED', ENTITY));
    expect(placeChange(inRun(1, { baseVersion: 2 }), state(3, true), facts([applied({ baseVersion: 1 })]))).toEqual(rejected('ENTITY_DELETED', ENTITY));
  });

  it('ENTITY_DELETED is reported before a trunk ahead of the server', () => {
    expect(placeChange(inRun(9, { baseVersion: 9 }), state(2, true), NO_FACTS)).toEqual(rejected('ENTITY_DELETED', ENTITY));
  });

  it('TRUNK_VERSION_AHEAD: a run start on a version the server does not have', () => {
    expect(placeChange(inRun(4, { baseVersion: 4 }), state(3), NO_FACTS)).toEqual(rejected('TRUNK_VERSION_AHEAD', 'trunkVersion 4, server version 3'));
  });

  it('TRUNK_VERSION_AHEAD: a later change of such a run too (not held)', () => {
    expect(placeChange(inRun(4, { baseVersion: 6 }), state(3), NO_FACTS)).toEqual(rejected('TRUNK_VERSION_AHEAD', 'trunkVersion 4, server version 3'));
  });

  it('a trunk equal to or below the server version is not ahead', () => {
    expect(placeChange(inRun(3, { baseVersion: 3 }), state(3), NO_FACTS)).toEqual(APPLY);
    expect(placeChange(inRun(1, { baseVersion: 1 }), state(3), NO_FACTS)).toEqual(APPLY);
  });

  it('BASE_VERSION_AHEAD: a change without a branch on a version the server does not have', () => {
    expect(placeChange(change({ baseVersion: 5 }), state(3), null)).toEqual(rejected('BASE_VERSION_AHEAD', 'baseVersion 5, server version 3'));
    expect(placeChange(change({ baseVersion: 4 }), state(3), null)).toEqual(rejected('BASE_VERSION_AHEAD', 'baseVersion 4, server version 3'));
  });

  it('a change without a branch on the current or an older version applies against it', () => {
    expect(placeChange(change({ baseVersion: 3 }), state(3), null)).toEqual(APPLY);
    expect(placeChange(change({ baseVersion: 1 }), state(3), null)).toEqual(APPLY);
    expect(placeChange(change({ action: 'DELETE', baseVersion: 2 }), state(3), null)).toEqual(APPLY);
  });

  it('a run start applies, even when later changes of its run are held', () => {
    expect(placeChange(inRun(2, { baseVersion: 2 }), state(2), NO_FACTS)).toEqual(APPLY);
    expect(placeChange(inRun(2, { baseVersion: 2 }), state(5), facts([], [held({ trunkVersion: 2, baseVersion: 3 }), held({ trunkVersion: 2, baseVersion: 4 })]))).toEqual(APPLY);
  });

  it('a later change whose predecessor is applied applies', () => {
    expect(placeChange(inRun(1, { baseVersion: 2 }), state(2), facts([applied({ baseVersion: 1, version: 2 })]))).toEqual(APPLY);
    // Server numbering differs from the client's: the predecessor is found by client position.
    const branch = facts([applied({ trunkVersion: 3, baseVersion: 3, version: 7 }), applied({ trunkVersion: 3, baseVersion: 4, version: 9 })]);
    expect(placeChange(inRun(3, { baseVersion: 5 }), state(10), branch)).toEqual(APPLY);
  });

  it('a later change whose predecessor is not applied is held, waiting for it', () => {
    expect(placeChange(inRun(1, { baseVersion: 2 }), state(1), NO_FACTS)).toEqual({ kind: 'hold', waitsFor: 1 });
    expect(placeChange(inRun(1, { baseVersion: 4 }), state(3), facts([applied({ baseVersion: 1 }), applied({ baseVersion: 2, version: 3 })]))).toEqual({
      kind: 'hold',
      waitsFor: 3,
    });
  });

  it('a predecessor that is only held does not count', () => {
    expect(placeChange(inRun(1, { baseVersion: 4 }), state(1), facts([], [held({ baseVersion: 3 })]))).toEqual({ kind: 'hold', waitsFor: 3 });
  });

  it('a later change is held, not rejected, when its client baseVersion is beyond the server version', () => {
    expect(placeChange(inRun(1, { baseVersion: 7 }), state(2), facts([applied({ baseVersion: 1 })]))).toEqual({ kind: 'hold', waitsFor: 6 });
  });

  it('a later change with no branch facts at all is held', () => {
    expect(placeChange(inRun(1, { baseVersion: 2 }), state(1), null)).toEqual({ kind: 'hold', waitsFor: 1 });
  });

  it('a later delete follows the same rule', () => {
    expect(placeChange(inRun(1, { action: 'DELETE', baseVersion: 2 }), state(2), facts([applied({ baseVersion: 1 })]))).toEqual(APPLY);
    expect(placeChange(inRun(1, { action: 'DELETE', baseVersion: 3 }), state(2), facts([applied({ baseVersion: 1 })]))).toEqual({ kind: 'hold', waitsFor: 2 });
  });

  it('in a run that began with an offline create: the first update applies once the create is applied', () => {
    expect(placeChange(inRun(null, { baseVersion: 1 }), state(1), facts([applied({ trunkVersion: null, baseVersion: 0, version: 1 })]))).toEqual(APPLY);
  });

  it('in a run that began with an offline create: a later update waits for its predecessor, not the create', () => {
    const branch = facts([applied({ trunkVersion: null, baseVersion: 0, version: 1 })]);
    expect(placeChange(inRun(null, { baseVersion: 2 }), state(1), branch)).toEqual({ kind: 'hold', waitsFor: 1 });
    expect(placeChange(inRun(null, { baseVersion: 2 }), state(2), facts([...branch.applied, applied({ trunkVersion: null, baseVersion: 1, version: 2 })]))).toEqual(APPLY);
  });

  it('a forced later change of the run does not count as the predecessor of an earlier one', () => {
    const branch = facts([applied({ baseVersion: 4, version: 2, source: 'FORCED', conflict: 'SOFT' })]);
    expect(placeChange(inRun(1, { baseVersion: 3 }), state(2), branch)).toEqual({ kind: 'hold', waitsFor: 2 });
  });

  it('does not modify its inputs', () => {
    const c = deepFreeze(inRun(1, { baseVersion: 2, data: { a: 1 } }));
    const e = deepFreeze(state(2, false, { a: 0 }));
    const b = deepFreeze(facts([applied({ baseVersion: 1 })], [held({ baseVersion: 3 })]));
    expect(placeChange(c, e, b)).toEqual(APPLY);
  });
});

// ---------------------------------------------------------------- placeChange: properties

const sourceArb = fc.constantFrom<VersionSource>('ONLINE', 'IN_ORDER', 'RELEASED', 'FORCED');
const conflictArb = fc.constantFrom<ConflictType | null>(null, 'SOFT', 'HARD');
const appliedArb = (entityId = fc.constant(ENTITY)) =>
  fc.record({
    entityId,
    version: fc.integer({ min: 1, max: 20 }),
    baseVersion: fc.integer({ min: 0, max: 10 }),
    trunkVersion: fc.option(fc.integer({ min: 1, max: 10 })),
    conflict: conflictArb,
    source: sourceArb,
    changed: fc.constant({}),
    deviceId: fc.constant(null),
  });
const heldArb = fc.record({
  entityId: fc.constant(ENTITY),
  baseVersion: fc.integer({ min: 1, max: 10 }),
  trunkVersion: fc.option(fc.integer({ min: 1, max: 10 })),
  changeId: fc.uuid(),
  deviceId: fc.constant(null),
});
const factsArb = fc.option(fc.record({ applied: fc.array(appliedArb(), { maxLength: 6 }), held: fc.array(heldArb, { maxLength: 4 }) }));
const entityArb = fc.option(fc.record({ label: fc.constant('Oak'), data: fc.constant({}), version: fc.integer({ min: 1, max: 12 }), deleted: fc.boolean() }));
const anyChangeArb = fc
  .record({
    action: fc.constantFrom<ValidChange['action']>('CREATE', 'UPDATE', 'DELETE'),
    baseVersion: fc.option(fc.integer({ min: 1, max: 12 })),
    trunkVersion: fc.option(fc.integer({ min: 1, max: 12 })),
    branchId: fc.option(fc.constant(BRANCH)),
  })
  // Only what validateChange lets through: updates and deletes carry a baseVersion, a trunk needs a
  // branch, and baseVersion is not below trunkVersion.
  .filter((c) => (c.action === 'CREATE' || c.baseVersion !== null) && (c.trunkVersion === null || c.branchId !== null))
  .filter((c) => c.trunkVersion === null || c.baseVersion === null || c.baseVersion >= c.trunkVersion)
  .map((over) => change({ ...over, label: over.action === 'CREATE' ? 'Oak' : null }));

describe('placeChange: properties', () => {
  it('never holds a run start', () => {
    fc.assert(
      fc.property(anyChangeArb, entityArb, factsArb, (c, e, b) => {
        fc.pre(isRunStart(c));
        expect(placeChange(c, e, b).kind).not.toBe('hold');
      }),
      { numRuns: 500 },
    );
  });

  it('holds only changes of a branch, and then waits for the position before its own', () => {
    fc.assert(
      fc.property(anyChangeArb, entityArb, factsArb, (c, e, b) => {
        const p = placeChange(c, e, b);
        if (p.kind === 'hold') {
          expect(c.branchId).not.toBeNull();
          expect(c.action).not.toBe('CREATE');
          expect(p.waitsFor).toBe(runPosition(c) - 1);
        }
        if (p.kind === 'apply' && p.asUpdate) expect(c.action).toBe('CREATE');
      }),
      { numRuns: 500 },
    );
  });

  const laterArb = fc
    .record({ trunk: fc.integer({ min: 1, max: 6 }), ahead: fc.integer({ min: 1, max: 6 }), extra: fc.integer({ min: 0, max: 6 }), action: fc.constantFrom<'UPDATE' | 'DELETE'>('UPDATE', 'DELETE') })
    .map(({ trunk, ahead, extra, action }) => ({ c: inRun(trunk, { action, baseVersion: trunk + ahead }), version: trunk + extra }));
  const otherPositions = (c: ValidChange) => fc.array(appliedArb(), { maxLength: 6 }).map((a) => a.filter((v) => v.baseVersion !== runPosition(c) - 1));

  it('law: a later change of a run on a live entity is held for its predecessor until that is applied, then applies', () => {
    fc.assert(
      fc.property(
        laterArb.chain(({ c, version }) => fc.tuple(fc.constant(c), fc.constant(version), otherPositions(c), fc.array(heldArb, { maxLength: 4 }), fc.integer({ min: 1, max: 20 }))),
        ([c, version, others, h, predecessorVersion]) => {
          expect(placeChange(c, state(version), facts(others, h))).toEqual({ kind: 'hold', waitsFor: runPosition(c) - 1 });
          const withPredecessor = facts([...others, applied({ baseVersion: runPosition(c) - 1, version: predecessorVersion })], h);
          expect(placeChange(c, state(version), withPredecessor)).toEqual(APPLY);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('law: while its entity does not exist, an update of a run that began offline is held, whatever the run has', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.constantFrom<'UPDATE' | 'DELETE'>('UPDATE', 'DELETE'), factsArb, (base, action, b) => {
        expect(placeChange(inRun(null, { action, baseVersion: base }), null, b)).toEqual({ kind: 'hold', waitsFor: base - 1 });
      }),
      { numRuns: 300 },
    );
  });

  it('law: the placement of a run start (not a create) or of a change without a branch does not depend on the run', () => {
    fc.assert(
      fc.property(anyChangeArb, entityArb, factsArb, fc.boolean(), (c0, e, b, dropBranch) => {
        const c = dropBranch ? { ...c0, branchId: null, trunkVersion: null } : c0;
        fc.pre(c.action !== 'CREATE' && isRunStart(c));
        expect(placeChange(c, e, b)).toEqual(placeChange(c, e, null));
      }),
      { numRuns: 500 },
    );
  });

  it('law: a change without a branch on a live entity applies on any version the server has had, and is ahead of one it has not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.constantFrom<'UPDATE' | 'DELETE'>('UPDATE', 'DELETE'), (base, newer, short, action) => {
        const c = change({ action, baseVersion: base });
        expect(placeChange(c, state(base + newer), null)).toEqual(APPLY);
        fc.pre(base - short >= 1);
        expect(placeChange(c, state(base - short), null)).toEqual(rejected('BASE_VERSION_AHEAD', `baseVersion ${base}, server version ${base - short}`));
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------- seenUpTo

describe('seenUpTo', () => {
  it('without a branch: the baseVersion', () => {
    expect(seenUpTo(change({ baseVersion: 4 }), false)).toBe(4);
    expect(seenUpTo(change({ action: 'DELETE', baseVersion: 1 }), false)).toBe(1);
  });

  it('a create without a branch has seen nothing', () => {
    expect(seenUpTo(change({ action: 'CREATE', label: 'Oak', baseVersion: null }), false)).toBe(0);
  });

  it('in a run: the trunk, for the start and every later change', () => {
    expect(seenUpTo(inRun(2, { baseVersion: 2 }), false)).toBe(2);
    expect(seenUpTo(inRun(2, { baseVersion: 5 }), false)).toBe(2);
  });

  it('in a run that began with an offline create: nothing', () => {
    expect(seenUpTo(offlineCreate(), false)).toBe(0);
    expect(seenUpTo(inRun(null, { baseVersion: 3 }), false)).toBe(0);
  });

  it('an offline create applied as an update over its forced run has seen nothing', () => {
    expect(seenUpTo(offlineCreate(), true)).toBe(0);
    expect(seenUpTo(inRun(3, { baseVersion: 3 }), true)).toBe(0);
    expect(seenUpTo(change({ baseVersion: 4 }), true)).toBe(0);
  });
});

// ---------------------------------------------------------------- beneathLaterChanges

describe('beneathLaterChanges', () => {
  it('without branch facts: the change unchanged, not beneath', () => {
    const c = inRun(1, { baseVersion: 2, data: { a: 1 }, label: 'Elm' });
    const r = beneathLaterChanges(c, null);
    expect(r.beneath).toBe(false);
    expect(r.change).toBe(c);
  });

  it('with only earlier changes of the run applied: unchanged, not beneath', () => {
    const c = inRun(1, { baseVersion: 3, data: { a: 1 } });
    const r = beneathLaterChanges(c, facts([applied({ baseVersion: 1, changed: { a: 9 } }), applied({ baseVersion: 2, version: 3, changed: { a: 8, label: 'X' } })]));
    expect(r).toEqual({ change: c, beneath: false });
    expect(r.change).toBe(c);
  });

  it('held later changes do not count', () => {
    const c = inRun(1, { baseVersion: 2, data: { a: 1 } });
    expect(beneathLaterChanges(c, facts([], [held({ baseVersion: 3 })]))).toEqual({ change: c, beneath: false });
  });

  it('later changes on another entity are ignored', () => {
    const c = inRun(1, { baseVersion: 2, data: { a: 1 } });
    expect(beneathLaterChanges(c, facts([applied({ entityId: OTHER_ENTITY, baseVersion: 3, changed: { a: 5 } })]))).toEqual({ change: c, beneath: false });
  });

  it('drops what a later change set, keeps the rest, and is beneath', () => {
    const c = inRun(1, { baseVersion: 2, data: { a: 1, b: 2, c: 3 }, label: 'Elm' });
    const r = beneathLaterChanges(c, facts([applied({ baseVersion: 4, version: 2, source: 'FORCED', changed: { b: 20 } })]));
    expect(r).toEqual({ change: { ...c, data: { a: 1, c: 3 }, label: 'Elm' }, beneath: true });
  });

  it('drops the label when a later change set it', () => {
    const c = inRun(1, { baseVersion: 2, data: { a: 1 }, label: 'Elm' });
    const r = beneathLaterChanges(c, facts([applied({ baseVersion: 3, version: 2, source: 'FORCED', changed: { label: 'Ash' } })]));
    expect(r).toEqual({ change: { ...c, data: { a: 1 }, label: null }, beneath: true });
  });

  it('a later change that set nothing still puts it beneath, dropping nothing', () => {
    const c = inRun(1, { baseVersion: 2, data: { a: 1 }, label: 'Elm' });
    const r = beneathLaterChanges(c, facts([applied({ baseVersion: 3, version: 2, source: 'FORCED', changed: {} })]));
    expect(r).toEqual({ change: { ...c, data: { a: 1 }, label: 'Elm' }, beneath: true });
  });

  it('keeps what any later change set (the union), not only the next one', () => {
    const c = inRun(1, { baseVersion: 2, data: { a: 1, b: 2, c: 3, d: 4 }, label: 'Elm' });
    const branch = facts([
      applied({ baseVersion: 1, version: 2, changed: { d: 40 } }),
      applied({ baseVersion: 4, version: 3, source: 'FORCED', conflict: 'SOFT', changed: { a: 10 } }),
      applied({ baseVersion: 5, version: 4, source: 'RELEASED', changed: { c: 30, label: 'Ash' } }),
    ]);
    expect(beneathLaterChanges(c, branch)).toEqual({ change: { ...c, data: { b: 2, d: 4 }, label: null }, beneath: true });
  });

  it('an offline create beneath the forced updates of its run', () => {
    const c = offlineCreate({ data: { height: 1, species: 'oak' }, label: 'Oak' });
    const branch = facts([applied({ trunkVersion: null, baseVersion: 1, version: 1, source: 'FORCED', conflict: 'SOFT', changed: { height: 5, label: '(label unknown)' } })]);
    expect(beneathLaterChanges(c, branch)).toEqual({ change: { ...c, data: { species: 'oak' }, label: null }, beneath: true });
  });

  it('does not modify its inputs', () => {
    const c = deepFreeze(inRun(1, { baseVersion: 2, data: { a: 1, b: 2 }, label: 'Elm' }));
    const b = deepFreeze(facts([applied({ baseVersion: 3, changed: { a: 5, label: 'X' } })]));
    expect(beneathLaterChanges(c, b).change).toEqual({ ...c, data: { b: 2 }, label: null });
    expect(c.data).toEqual({ a: 1, b: 2 });
  });

  const props = fc.constantFrom('a', 'b', 'c', 'd', 'label');
  const changedArb = fc.dictionary(props, fc.integer(), { maxKeys: 4 }).map((d) => ({ ...d }));
  const runFactArb = fc.array(fc.record({ baseVersion: fc.integer({ min: 0, max: 8 }), changed: changedArb }), { maxLength: 5 });
  const beneathArb = fc.record({
    position: fc.integer({ min: 1, max: 6 }),
    data: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer(), { maxKeys: 4 }).map((d) => ({ ...d })),
    label: fc.option(fc.constant('Elm')),
    run: runFactArb,
  });
  const runFacts = (run: { baseVersion: number; changed: PropertyValues }[]) => facts(run.map((l, i) => applied({ ...l, version: i + 2 })));

  it('law: it only drops, and never what no later change of the run set; every other field is the change as it was', () => {
    fc.assert(
      fc.property(beneathArb, ({ position, data, label, run }) => {
        const c = inRun(1, { baseVersion: position, data, label });
        const r = beneathLaterChanges(c, runFacts(run)).change;
        const setLater = new Set(run.filter((v) => v.baseVersion > position).flatMap((v) => Object.keys(v.changed)));
        for (const [k, v] of Object.entries(r.data)) expect(data[k], k).toBe(v);
        for (const k of Object.keys(data)) if (!setLater.has(k)) expect(r.data, k).toHaveProperty(k);
        if (!setLater.has('label')) expect(r.label).toBe(label);
        expect({ ...r, data: null, label: null }).toEqual({ ...c, data: null, label: null });
      }),
    );
  });

  it('law: nothing a later change of the run set survives (run order is the author\'s intent)', () => {
    fc.assert(
      fc.property(beneathArb, ({ position, data, label, run }) => {
        const r = beneathLaterChanges(inRun(1, { baseVersion: position, data, label }), runFacts(run)).change;
        for (const later of run.filter((v) => v.baseVersion > position)) {
          for (const k of Object.keys(later.changed)) {
            if (k === 'label') expect(r.label).toBeNull();
            else expect(r.data).not.toHaveProperty(k);
          }
        }
      }),
    );
  });

  it('law: changes of the run at or before its position never matter, and beneath is true iff a later one is applied', () => {
    fc.assert(
      fc.property(beneathArb, runFactArb, ({ position, data, label, run }, extra) => {
        const c = inRun(1, { baseVersion: position, data, label });
        const earlier = extra.map((v) => ({ ...v, baseVersion: v.baseVersion % (position + 1) }));
        const r = beneathLaterChanges(c, runFacts(run));
        expect(beneathLaterChanges(c, runFacts([...run, ...earlier]))).toEqual(r);
        expect(r.beneath).toBe(run.some((v) => v.baseVersion > position));
      }),
    );
  });

  it('law: idempotent: what is left of a change beneath its run is left as it is', () => {
    fc.assert(
      fc.property(beneathArb, ({ position, data, label, run }) => {
        const branch = runFacts(run);
        const once = beneathLaterChanges(inRun(1, { baseVersion: position, data, label }), branch).change;
        expect(beneathLaterChanges(once, branch).change).toEqual(once);
      }),
    );
  });
});

// ---------------------------------------------------------------- authorView

const FORCED_REASON = 'applied after the hold timeout without its predecessor: the author view is unknown';
const EARLIER_FORCED = 'an earlier change of the run was forced out of order';
const EARLIER_CONFLICT = 'an earlier change of the run was applied in conflict';
const NO_PREDECESSOR = 'the predecessor of this change is not applied';

describe('authorView', () => {
  it('a forced change: unavailable, whatever it is', () => {
    const forced = { kind: 'unavailable', reason: FORCED_REASON };
    expect(authorView(inRun(1, { baseVersion: 3 }), 'FORCED', false, facts([applied({ baseVersion: 2 })]))).toEqual(forced);
    expect(authorView(inRun(null, { baseVersion: 1 }), 'FORCED', false, NO_FACTS)).toEqual(forced);
    expect(authorView(offlineCreate(), 'FORCED', true, NO_FACTS)).toEqual(forced);
    expect(authorView(inRun(2, { baseVersion: 2 }), 'FORCED', false, null)).toEqual(forced);
  });

  it('a create, or a create applied as an update: the author saw nothing (version 0)', () => {
    expect(authorView(change({ action: 'CREATE', label: 'Oak', baseVersion: null }), 'ONLINE', false, null)).toEqual({ kind: 'version', version: 0 });
    expect(authorView(offlineCreate(), 'IN_ORDER', false, NO_FACTS)).toEqual({ kind: 'version', version: 0 });
    expect(authorView(offlineCreate(), 'IN_ORDER', true, facts([applied({ trunkVersion: null, baseVersion: 1, source: 'FORCED', conflict: 'SOFT' })]))).toEqual({
      kind: 'version',
      version: 0,
    });
  });

  it('without a branch: the baseVersion', () => {
    expect(authorView(change({ baseVersion: 3 }), 'ONLINE', false, null)).toEqual({ kind: 'version', version: 3 });
    expect(authorView(change({ action: 'DELETE', baseVersion: 1 }), 'ONLINE', false, null)).toEqual({ kind: 'version', version: 1 });
  });

  it('a run start: the trunk (its baseVersion)', () => {
    expect(authorView(inRun(2, { baseVersion: 2 }), 'IN_ORDER', false, NO_FACTS)).toEqual({ kind: 'version', version: 2 });
  });

  it('a run start is not affected by forced or conflicting later changes of its run', () => {
    const branch = facts([applied({ trunkVersion: 2, baseVersion: 4, source: 'FORCED', conflict: 'HARD', version: 5 })]);
    expect(authorView(inRun(2, { baseVersion: 2 }), 'IN_ORDER', false, branch)).toEqual({ kind: 'version', version: 2 });
  });

  it('a later change: the server version of its predecessor', () => {
    const branch = facts([applied({ baseVersion: 1, version: 3 }), applied({ baseVersion: 2, version: 5, source: 'RELEASED' })]);
    expect(authorView(inRun(1, { baseVersion: 3 }), 'RELEASED', false, branch)).toEqual({ kind: 'version', version: 5 });
    expect(authorView(inRun(1, { baseVersion: 2 }), 'IN_ORDER', false, facts([applied({ baseVersion: 1, version: 3 })]))).toEqual({ kind: 'version', version: 3 });
  });

  it('a later update of a run that began with an offline create: the version of its predecessor (the create)', () => {
    const branch = facts([applied({ trunkVersion: null, baseVersion: 0, version: 1 })]);
    expect(authorView(inRun(null, { baseVersion: 1 }), 'RELEASED', false, branch)).toEqual({ kind: 'version', version: 1 });
  });

  it('later changes of the run, even forced or in conflict, do not matter', () => {
    const branch = facts([applied({ baseVersion: 1, version: 2 }), applied({ baseVersion: 3, version: 3, source: 'FORCED', conflict: 'SOFT' })]);
    expect(authorView(inRun(1, { baseVersion: 2 }), 'IN_ORDER', false, branch)).toEqual({ kind: 'version', version: 2 });
  });

  it('unavailable when an earlier change of the run was forced', () => {
    const branch = facts([applied({ baseVersion: 2, version: 2, source: 'FORCED', conflict: 'SOFT' }), applied({ baseVersion: 3, version: 3, source: 'RELEASED' })]);
    expect(authorView(inRun(1, { baseVersion: 4 }), 'RELEASED', false, branch)).toEqual({ kind: 'unavailable', reason: EARLIER_FORCED });
  });

  it('unavailable when an earlier change of the run was applied in conflict (SOFT or HARD)', () => {
    for (const conflict of ['SOFT', 'HARD'] as const) {
      const branch = facts([applied({ baseVersion: 1, version: 3, conflict }), applied({ baseVersion: 2, version: 4 })]);
      expect(authorView(inRun(1, { baseVersion: 3 }), 'IN_ORDER', false, branch)).toEqual({ kind: 'unavailable', reason: EARLIER_CONFLICT });
    }
  });

  it('unavailable when the predecessor itself was applied in conflict', () => {
    expect(authorView(inRun(1, { baseVersion: 2 }), 'IN_ORDER', false, facts([applied({ baseVersion: 1, version: 3, conflict: 'HARD' })]))).toEqual({
      kind: 'unavailable',
      reason: EARLIER_CONFLICT,
    });
  });

  it('a forced earlier change is the reason given over a conflicting one', () => {
    const branch = facts([applied({ baseVersion: 1, version: 3, conflict: 'HARD' }), applied({ baseVersion: 2, version: 4, source: 'FORCED', conflict: 'SOFT' })]);
    expect(authorView(inRun(1, { baseVersion: 3 }), 'RELEASED', false, branch)).toEqual({ kind: 'unavailable', reason: EARLIER_FORCED });
  });

  it('unavailable when the predecessor is not applied', () => {
    expect(authorView(inRun(1, { baseVersion: 3 }), 'IN_ORDER', false, facts([applied({ baseVersion: 1 })]))).toEqual({ kind: 'unavailable', reason: NO_PREDECESSOR });
    expect(authorView(inRun(1, { baseVersion: 2 }), 'IN_ORDER', false, null)).toEqual({ kind: 'unavailable', reason: NO_PREDECESSOR });
  });

  it('law: later changes of the run never change the author view', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.array(appliedArb(), { maxLength: 6 }), fc.array(appliedArb(), { maxLength: 4 }), sourceArb, (position, a, later, source) => {
        const c = inRun(1, { baseVersion: position });
        const ahead = later.map((v) => ({ ...v, baseVersion: position + 1 + (v.baseVersion % 4) }));
        expect(authorView(c, source, false, facts([...a, ...ahead]))).toEqual(authorView(c, source, false, facts(a)));
      }),
    );
  });

  it('law: an earlier change of the run forced or in conflict leaves no author view, whatever else the run has', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.array(appliedArb(), { maxLength: 6 }), fc.nat(), fc.constantFrom<[VersionSource, ConflictType | null]>(['FORCED', 'SOFT'], ['IN_ORDER', 'SOFT'], ['RELEASED', 'HARD']), (position, a, at, [source, conflict]) => {
        const spoiled = applied({ baseVersion: at % position, source, conflict, version: 30 });
        expect(authorView(inRun(1, { baseVersion: position }), 'IN_ORDER', false, facts([...a, spoiled])).kind).toBe('unavailable');
      }),
    );
  });

  it('law: a view that is a version is the trunk or the version of the run\'s change just before', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(appliedArb(), { maxLength: 6 }), (position, a) => {
        const view = authorView(inRun(1, { baseVersion: position }), 'IN_ORDER', false, facts(a));
        if (view.kind === 'version') expect(position === 1 ? [1] : a.filter((v) => v.baseVersion === position - 1).map((v) => v.version)).toContain(view.version);
      }),
    );
  });
});
