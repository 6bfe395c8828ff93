import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ChangeInput, JsonValue, PropertyValues } from '../../src/core/types.js';
import type { ChangeResult } from '../../src/core/results.js';
import { appliedOf as appliedResults, useSyncContext } from '../helpers/sync-context.js';

/**
 * Issue 3's property, against the real sync layer: for any offline run of n changes delivered in
 * any permutation, with any duplicates, the final entity equals in-order delivery and version
 * numbers are dense. One database for the file, on the back end DATABASE_URL picks (the sync
 * context); every fast-check run uses fresh entity and branch ids, so runs cannot see each other.
 * The wider model (operations, deletes, online edits, several runs, forced flushes) is in
 * model.test.ts; concurrent delivery on Postgres in concurrent-delivery.test.ts.
 */

const PROPS = ['p0', 'p1', 'p2', 'p3', 'p4'] as const;
const DATASET = `perm_${randomUUID().slice(0, 8)}`;
// Fewer under `npm run mutate:sync` (stryker.sync.config.mjs), where each mutant runs them again.
const NUM_RUNS = Number(process.env.PERMUTATION_RUNS ?? 40);

const ctx = useSyncContext();
beforeAll(async () => {
  await ctx.newDataset(PROPS, DATASET);
});

// ---------------------------------------------------------------- model

interface Step {
  data: PropertyValues;
  label: string | null;
}

interface Run {
  /** true: the run begins with an offline create (trunkVersion null); false: it begins on version 1 of an existing entity. */
  startsWithCreate: boolean;
  /** For an existing entity: its label and data at version 1. For an offline create: the create's label when its step sets none. */
  initialLabel: string;
  initialData: PropertyValues;
  steps: Step[];
}

const valueArb: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.string({ maxLength: 6 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 3 }),
  fc.record({ k: fc.integer({ min: 0, max: 9 }) }),
);
// Labels are trimmed by validation; these need no trimming.
const labelArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ]{0,6}[A-Za-z0-9]$|^[A-Za-z0-9]$/);
const dataArb: fc.Arbitrary<PropertyValues> = fc.dictionary(fc.constantFrom(...PROPS), valueArb, { maxKeys: PROPS.length }).map((d) => ({ ...d }));
const stepArb: fc.Arbitrary<Step> = fc.record({ data: dataArb, label: fc.option(labelArb, { freq: 3 }) });

const runArb = (minSteps: number): fc.Arbitrary<Run> =>
  fc.record({
    startsWithCreate: fc.boolean(),
    initialLabel: labelArb,
    initialData: dataArb,
    steps: fc.array(stepArb, { minLength: minSteps, maxLength: 6 }),
  });

/**
 * A delivery: each listed change index once or twice, in a random order, cut into batches
 * (`cuts[i]`: a new submitChanges call starts after item i).
 */
interface Delivery {
  order: number[];
  cuts: boolean[];
}
const deliveryArb = (indices: readonly number[]): fc.Arbitrary<Delivery> =>
  fc.array(fc.integer({ min: 1, max: 2 }), { minLength: indices.length, maxLength: indices.length }).chain((copies) => {
    const items = indices.flatMap((i, k) => Array<number>(copies[k]!).fill(i));
    return fc.record({
      order: fc.shuffledSubarray(items, { minLength: items.length, maxLength: items.length }),
      cuts: fc.array(fc.boolean(), { minLength: items.length, maxLength: items.length }),
    });
  });

interface Ids {
  entityId: string;
  branchId: string;
  createId: string | null;
  changeIds: string[];
}

const freshIds = (run: Run): Ids => ({
  entityId: randomUUID(),
  branchId: randomUUID(),
  createId: run.startsWithCreate ? null : randomUUID(),
  changeIds: run.steps.map(() => randomUUID()),
});

/** The change the client sends for step k of the run, following the client conventions. */
function changeOf(run: Run, ids: Ids, k: number): ChangeInput {
  const step = run.steps[k]!;
  const common = { id: ids.changeIds[k]!, dataset: DATASET, entityId: ids.entityId, branchId: ids.branchId, data: step.data };
  if (run.startsWithCreate) {
    if (k === 0) return { ...common, action: 'CREATE', label: step.label ?? run.initialLabel, trunkVersion: null, baseVersion: null };
    return { ...common, action: 'UPDATE', label: step.label, trunkVersion: null, baseVersion: k };
  }
  return { ...common, action: 'UPDATE', label: step.label, trunkVersion: 1, baseVersion: 1 + k };
}

interface Snapshot {
  label: string;
  data: PropertyValues;
}

/** What in-order delivery makes: the state after each version, starting with version 1. */
function expectedStates(run: Run): Snapshot[] {
  const states: Snapshot[] = [];
  let s: Snapshot | null = run.startsWithCreate ? null : { label: run.initialLabel, data: { ...run.initialData } };
  if (s) states.push(s);
  run.steps.forEach((step) => {
    const label = step.label ?? (s ? s.label : run.initialLabel);
    s = { label, data: { ...(s?.data ?? {}), ...step.data } };
    states.push(s);
  });
  return states;
}

/** The entity exists at version 1 before the run begins (an online create, in order, first). */
async function setUp(run: Run, ids: Ids): Promise<void> {
  if (run.startsWithCreate) return;
  const results = await ctx.submit({ id: ids.createId!, dataset: DATASET, entityId: ids.entityId, action: 'CREATE', label: run.initialLabel, data: run.initialData });
  expect(results[0], JSON.stringify(results[0])).toMatchObject({ outcome: 'APPLIED', version: 1, conflict: null });
}

function batches(delivery: Delivery): number[][] {
  const out: number[][] = [];
  let current: number[] = [];
  delivery.order.forEach((k, i) => {
    current.push(k);
    if (delivery.cuts[i] || i === delivery.order.length - 1) {
      out.push(current);
      current = [];
    }
  });
  return out;
}

interface Tally {
  /** changeId -> how many times it was applied according to the results. */
  applied: Map<string, number>;
  sent: Set<string>;
}

/** Delivers the batches and checks each result's outcome against what was sent before. */
async function deliver(run: Run, ids: Ids, delivery: Delivery, tally: Tally): Promise<void> {
  for (const batch of batches(delivery)) {
    const results = await ctx.submitSent(batch.map((k) => changeOf(run, ids, k)));
    expect(results).toHaveLength(batch.length);
    batch.forEach((k, i) => {
      const r = results[i]!;
      const id = ids.changeIds[k]!;
      expect(r.changeId).toBe(id);
      if (tally.sent.has(id)) {
        expect(r.outcome, JSON.stringify(r)).toBe('DUPLICATE');
      } else {
        expect(['APPLIED', 'HELD'], JSON.stringify(r)).toContain(r.outcome);
        tally.sent.add(id);
      }
      expect(r.error).toBeNull();
    });
    for (const r of appliedResults(results)) tally.applied.set(r.changeId, (tally.applied.get(r.changeId) ?? 0) + 1);
  }
}

async function readEntity(entityId: string) {
  const entity = (await ctx.entity(entityId)) ?? undefined;
  const versions = await ctx.history(entityId);
  const held = await ctx.held({ entityId });
  const log = await ctx.logsOf(entityId);
  return { entity, versions, held, log };
}

/** Asserts the invariants both properties share: dense versions, each change applied exactly once, nothing held. */
async function checkDenseAndComplete(run: Run, ids: Ids, tally: Tally) {
  const got = await readEntity(ids.entityId);
  const n = run.steps.length + (run.startsWithCreate ? 0 : 1);
  expect(got.entity, 'the entity exists').toBeDefined();
  expect(got.entity!.version).toBe(n);
  expect(got.entity!.deleted).toBe(false);
  expect(got.versions.map((v) => v.version)).toEqual(Array.from({ length: n }, (_, i) => i + 1));

  const allIds = [...(ids.createId ? [ids.createId] : []), ...ids.changeIds];
  const perId = new Map<string, number>();
  for (const v of got.versions) perId.set(v.changeId, (perId.get(v.changeId) ?? 0) + 1);
  expect([...perId.keys()].sort()).toEqual([...allIds].sort());
  expect([...perId.values()].every((c) => c === 1)).toBe(true);

  // The results told the clients the same: each run change applied exactly once.
  expect(Object.fromEntries(tally.applied)).toEqual(Object.fromEntries(ids.changeIds.map((id) => [id, 1])));

  expect(got.held, 'backlog empty for the entity').toEqual([]);
  // The change log agrees: every change ended APPLIED, at the version that holds it.
  const versionOf = new Map(got.versions.map((v) => [v.changeId, v.version]));
  expect(got.log).toHaveLength(allIds.length);
  for (const row of got.log) {
    expect(row.outcome, row.changeId).toBe('APPLIED');
    expect(row.version, row.changeId).toBe(versionOf.get(row.changeId));
  }
  return got;
}

const show = (run: Run, delivery: Delivery) =>
  `${run.startsWithCreate ? 'offline create' : 'existing entity'}; run ${JSON.stringify(run.steps)}; batches ${JSON.stringify(batches(delivery))}`;

describe('offline runs through the sync layer', () => {
  it('runs on the back end DATABASE_URL picks (it used to open PGlite whatever was set)', () => {
    expect(ctx.database.kind).toBe(process.env.DATABASE_URL ? 'postgres' : 'pglite');
  });

  it('any permutation with any duplicates: the entity equals in-order delivery, versions 1..N dense, nothing held, no conflict', async () => {
    const arb = runArb(1).chain((run) => fc.record({ run: fc.constant(run), delivery: deliveryArb(run.steps.map((_, k) => k)) }));
    await fc.assert(
      fc.asyncProperty(arb, async ({ run, delivery }) => {
        const ids = freshIds(run);
        const tally: Tally = { applied: new Map(), sent: new Set() };
        await setUp(run, ids);
        await deliver(run, ids, delivery, tally);

        const got = await checkDenseAndComplete(run, ids, tally);
        const states = expectedStates(run);
        const last = states[states.length - 1]!;
        const context = show(run, delivery);
        expect({ label: got.entity!.label, data: got.entity!.data }, context).toEqual(last);
        expect(got.entity!.conflict, context).toBeNull();

        // Version by version, the history is the one in-order delivery writes.
        const order = [...(ids.createId ? [ids.createId] : []), ...ids.changeIds];
        expect(got.versions.map((v) => v.changeId), context).toEqual(order);
        got.versions.forEach((v, i) => {
          expect({ label: v.label, data: v.data }, `${context}; version ${v.version}`).toEqual(states[i]);
          expect(v.conflict, `${context}; version ${v.version}`).toBeNull();
          expect(v.conflictingProperties).toEqual([]);
          expect(v.deleted).toBe(false);
        });
        const runVersions = got.versions.slice(run.startsWithCreate ? 0 : 1);
        runVersions.forEach((v, k) => {
          expect(v.branchId).toBe(ids.branchId);
          expect(v.baseVersion).toBe(run.startsWithCreate ? k : 1 + k);
          expect(v.trunkVersion).toBe(run.startsWithCreate ? null : 1);
          expect(['IN_ORDER', 'RELEASED']).toContain(v.source);
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a change in the middle missing until a forced flush, then arriving: each change applied exactly once, versions dense, run order kept', async () => {
    const arb = runArb(3).chain((run) =>
      fc.integer({ min: 1, max: run.steps.length - 2 }).chain((missing) =>
        fc.record({
          run: fc.constant(run),
          missing: fc.constant(missing),
          delivery: deliveryArb(run.steps.map((_, k) => k).filter((k) => k !== missing)),
          lateTwice: fc.boolean(),
          // A change sent before the flush, sent again after it (a client that got no answer).
          resend: fc.option(fc.constantFrom(...run.steps.map((_, k) => k).filter((k) => k !== missing))),
        }),
      ),
    );
    await fc.assert(
      fc.asyncProperty(arb, async ({ run, missing, delivery, lateTwice, resend }) => {
        const ids = freshIds(run);
        const tally: Tally = { applied: new Map(), sent: new Set() };
        const context = `${show(run, delivery)}; missing ${missing}; resend ${resend}; late twice ${lateTwice}`;
        await setUp(run, ids);
        await deliver(run, ids, delivery, tally);

        // Everything after the gap waits for it; everything before it is applied.
        const before = await readEntity(ids.entityId);
        expect(before.held.map((h) => h.baseVersion).sort((a, b) => a - b), context).toEqual(
          run.steps.map((_, k) => (run.startsWithCreate ? k : 1 + k)).filter((_, k) => k > missing),
        );

        const forced = await ctx.flush(0);
        for (const r of appliedResults(forced).filter((r) => ids.changeIds.includes(r.changeId))) {
          tally.applied.set(r.changeId, (tally.applied.get(r.changeId) ?? 0) + 1);
        }
        const afterFlush = await readEntity(ids.entityId);
        expect(afterFlush.held, `${context}: the flush left changes held`).toEqual([]);

        // The missing change arrives at last (sometimes twice, sometimes with a resend of an older one).
        const lateOrder = [...(resend !== null ? [resend] : []), missing, ...(lateTwice ? [missing] : [])];
        await deliver(run, ids, { order: lateOrder, cuts: lateOrder.map(() => true) }, tally);

        const got = await checkDenseAndComplete(run, ids, tally);
        // Run order is the author's intent: what a later change set keeps its value.
        const states = expectedStates(run);
        expect({ label: got.entity!.label, data: got.entity!.data }, context).toEqual(states[states.length - 1]);

        const byChange = new Map(got.versions.map((v) => [v.changeId, v]));
        const late = byChange.get(ids.changeIds[missing]!)!;
        expect(late.version, `${context}: the late change is the newest version`).toBe(got.entity!.version);
        expect(late.source).toBe('IN_ORDER');
        expect(late.conflict, `${context}: applied beneath later changes, flagged SOFT`).toBe('SOFT');
        ids.changeIds.forEach((id, k) => {
          const v = byChange.get(id)!;
          if (k < missing) {
            expect(v.conflict, `${context}; change ${k}`).toBeNull();
            expect(['IN_ORDER', 'RELEASED']).toContain(v.source);
          }
          if (k > missing) expect(['FORCED', 'RELEASED'], `${context}; change ${k}`).toContain(v.source);
          // Forced without its predecessor: flagged so a reviewer sees it.
          if (v.source === 'FORCED') expect(v.conflict, `${context}; change ${k}`).not.toBeNull();
        });
        expect(got.versions.filter((v) => v.source === 'FORCED').length, context).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
