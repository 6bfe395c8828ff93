import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChange } from '../../src/core/apply.js';
import { placeChange, runPosition, type BranchFacts } from '../../src/core/placement.js';
import type { EntityState, PropertyValues, ValidChange } from '../../src/core/types.js';
import { validChange } from '../helpers/core.js';

/**
 * DESIGN steps 2 and 5 as a law: a run delivered in any order of arrival ends as if it had
 * arrived in order. The server is modelled only as far as the law needs: hold what placeChange
 * holds, apply what it applies (applyChange on the current state), and after each apply release
 * the held change at the next position of the run, placed again. No forcing: nothing times out.
 */

const ENTITY = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const RUN = 'c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f';

interface Outcome {
  state: EntityState | null;
  /** Run positions in the order they were applied. */
  landed: number[];
  /** Server version of each position. */
  versions: Map<number, number>;
  held: number[];
}

function deliver(arrivals: readonly ValidChange[], start: EntityState | null): Outcome {
  let entity = start;
  const applied: BranchFacts['applied'][number][] = [];
  const held = new Map<number, ValidChange>();
  const facts = (): BranchFacts => ({
    applied,
    held: [...held.values()].map((c) => ({ entityId: c.entityId, baseVersion: runPosition(c), trunkVersion: c.trunkVersion, changeId: c.id, deviceId: c.deviceId })),
  });
  const landed: number[] = [];
  const versions = new Map<number, number>();
  const land = (c: ValidChange) => {
    const a = applyChange(entity, c);
    entity = { label: a.label, data: a.data, deleted: a.deleted, version: (entity?.version ?? 0) + 1 };
    const position = runPosition(c);
    applied.push({ entityId: c.entityId, version: entity.version, baseVersion: position, trunkVersion: c.trunkVersion, conflict: null, source: 'IN_ORDER', changed: a.changed, deviceId: c.deviceId });
    landed.push(position);
    versions.set(position, entity.version);
  };
  const arrive = (c: ValidChange, released: boolean) => {
    const p = placeChange(c, entity, facts());
    if (p.kind === 'reject') throw new Error(`position ${runPosition(c)} rejected: ${p.error.code}`);
    if (p.kind === 'hold') {
      // A released change was handed on because its predecessor just landed: it must apply now.
      if (released) throw new Error(`position ${runPosition(c)} held again after its predecessor landed`);
      held.set(runPosition(c), c);
      return;
    }
    land(c);
    const next = held.get(runPosition(c) + 1);
    if (next) {
      held.delete(runPosition(next));
      arrive(next, true);
    }
  };
  for (const c of arrivals) arrive(c, false);
  return { state: entity, landed, versions, held: [...held.keys()].sort((a, b) => a - b) };
}

/** Each change of the run sets the shared `height` (so order shows) and a property of its own. */
const edit = (i: number): PropertyValues => ({ height: i, [`p${i}`]: i });

const runOnTrunk = fc
  .record({ version: fc.integer({ min: 1, max: 5 }), back: fc.integer({ min: 0, max: 4 }), length: fc.integer({ min: 1, max: 6 }), endsDeleted: fc.boolean(), relabel: fc.nat(6) })
  .map(({ version, back, length, endsDeleted, relabel }) => {
    const trunk = Math.max(1, version - back);
    const run = Array.from({ length }, (_, i) =>
      validChange({
        id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        entityId: ENTITY,
        branchId: RUN,
        trunkVersion: trunk,
        baseVersion: trunk + i,
        action: endsDeleted && i === length - 1 ? 'DELETE' : 'UPDATE',
        data: endsDeleted && i === length - 1 ? {} : edit(i),
        label: i === relabel ? `Label ${i}` : null,
      }),
    );
    const start: EntityState = { label: 'Oak', data: { height: -1, species: 'oak' }, version, deleted: false };
    return { run, start };
  });

const runFromCreate = fc.record({ length: fc.integer({ min: 0, max: 6 }) }).map(({ length }) => {
  const create = validChange({ id: '00000000-0000-4000-8000-00000000000c', entityId: ENTITY, branchId: RUN, trunkVersion: null, baseVersion: null, action: 'CREATE', label: 'Birch', data: { species: 'birch' } });
  const updates = Array.from({ length }, (_, i) =>
    validChange({ id: `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`, entityId: ENTITY, branchId: RUN, trunkVersion: null, baseVersion: i + 1, data: edit(i + 1) }),
  );
  return { run: [create, ...updates], start: null };
});

const permuted = <T>(xs: readonly T[]) => fc.shuffledSubarray([...xs], { minLength: xs.length, maxLength: xs.length });

describe('a run converges whatever the order of arrival', () => {
  for (const [name, runs] of [
    ['a run on a trunk the server has (an online change may follow its trunk)', runOnTrunk],
    ['a run that began with an offline create', runFromCreate],
  ] as const) {
    it(`law, ${name}: every change applied once, in run order, to the state in-order delivery gives`, () => {
      fc.assert(
        fc.property(
          runs.chain(({ run, start }) => fc.tuple(fc.constant(run), fc.constant(start), permuted(run))),
          ([run, start, arrivals]) => {
            const inOrder = deliver(run, start);
            const positions = run.map(runPosition);
            // In order, every change applies on arrival: the reference the law compares with.
            expect(inOrder.landed).toEqual(positions);
            const got = deliver(arrivals, start);
            expect(got.held).toEqual([]);
            expect(got.landed).toEqual(positions);
            expect(got.state).toEqual(inOrder.state);
            // Server versions follow run order: dense from the version the run found.
            expect(positions.map((p) => got.versions.get(p))).toEqual(positions.map((_, i) => (start?.version ?? 0) + i + 1));
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  it('law: whatever part of a run arrived, in any order, what applied is the run up to its first gap, and the rest is held', () => {
    fc.assert(
      fc.property(
        runOnTrunk.chain(({ run, start }) => fc.tuple(fc.constant(run), fc.constant(start), fc.shuffledSubarray(run))),
        ([run, start, subset]) => {
          const got = deliver(subset, start);
          const arrived = new Set(subset.map(runPosition));
          const positions = run.map(runPosition);
          const gap = positions.findIndex((p) => !arrived.has(p));
          const prefix = gap === -1 ? positions : positions.slice(0, gap);
          expect(got.landed).toEqual(prefix);
          expect(got.held).toEqual(positions.filter((p) => arrived.has(p) && !prefix.includes(p)));
        },
      ),
      { numRuns: 300 },
    );
  });
});
