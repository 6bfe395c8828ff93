import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { expect } from 'vitest';
import type { ChangeInput, Operation, PropertyValues } from '../../src/core/types.js';
import type { ChangeResult } from '../../src/core/results.js';
import type { SyncContext } from '../helpers/sync-context.js';
import { entityConflict, World, type Edit, type MChange, type MResult, type Predicted } from './reference-model.js';

/**
 * fast-check commands (model-based testing) that drive the sync layer and the reference model
 * side by side: online creates, edits (some on stale versions) and deletes; offline runs begun on
 * a version or with an offline create, whose changes are delivered in any order, in batches,
 * twice; forced flushes; pulls. Every answer is compared with the model's as it comes; the whole
 * stored state once the commands ran (checkWorld).
 */

export const PROPERTIES = ['n', 'tags', 'note', 'size'];

export interface Real {
  ctx: SyncContext;
  dataset: string;
  cursor: string | null;
  pulled: number;
}
type Cmd = fc.AsyncCommand<World, Real>;

// Types never clash: `n` is only ever a number (SET, INCREMENT), `tags` only a list (LIST_*).
const LABELS = fc.constantFrom('Oak', 'Elm', 'Ash tree', 'B');
const WORDS = fc.constantFrom('x', 'y', 'oak', 'a long note');
const valueArb = fc.oneof(fc.integer({ min: -5, max: 5 }), WORDS, fc.boolean(), fc.constant(null), fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }));
const opArb: fc.Arbitrary<Operation> = fc.oneof(
  fc.integer({ min: -3, max: 3 }).map((by): Operation => ({ op: 'INCREMENT', property: 'n', by })),
  fc.integer({ min: 0, max: 9 }).map((value): Operation => ({ op: 'SET', property: 'n', value })),
  fc.record({ value: fc.integer({ min: 0, max: 3 }), index: fc.option(fc.integer({ min: 0, max: 2 })) }).map(({ value, index }): Operation => ({ op: 'LIST_ADD', property: 'tags', value, index })),
  fc.integer({ min: 0, max: 3 }).map((value): Operation => ({ op: 'LIST_REMOVE', property: 'tags', value })),
  WORDS.map((value): Operation => ({ op: 'SET', property: 'note', value })),
  fc.constant<Operation>({ op: 'UNSET', property: 'note' }),
  LABELS.map((value): Operation => ({ op: 'SET_LABEL', value })),
);
const editArb: fc.Arbitrary<Edit> = fc.record({
  label: fc.option(LABELS, { freq: 3 }),
  data: fc.dictionary(fc.constantFrom('note', 'size'), valueArb, { maxKeys: 2 }).map((d): PropertyValues => ({ ...d })),
  operations: fc.array(opArb, { maxLength: 3 }),
});
const NO_EDIT: Edit = { label: null, data: {}, operations: [] };

function inputOf(c: MChange, dataset: string): ChangeInput & { id: string } {
  return {
    id: c.id,
    dataset,
    entityId: c.entityId,
    action: c.action,
    label: c.edit.label,
    data: c.edit.data,
    operations: c.edit.operations,
    baseVersion: c.baseVersion,
    trunkVersion: c.trunkVersion,
    branchId: c.runId,
  };
}

function expectConflict(got: { conflict: string | null; conflictingProperties: string[] }, want: { conflict: Predicted; conflictingProperties: string[] | null }, at: string): void {
  if (want.conflict === 'FLAGGED') expect(['SOFT', 'HARD'], `${at}: flagged`).toContain(got.conflict);
  else expect(got.conflict, `${at}: conflict`).toBe(want.conflict);
  if (want.conflictingProperties) expect(got.conflictingProperties, `${at}: conflicting properties`).toEqual(want.conflictingProperties);
}

function expectResult(got: ChangeResult, want: MResult, at: string): void {
  const shape = (r: { changeId: string; outcome: string; originalOutcome: string | null; version: number | null; waitsFor: number | null }, code: string | null) => ({
    changeId: r.changeId,
    outcome: r.outcome,
    originalOutcome: r.originalOutcome,
    version: r.version,
    waitsFor: r.waitsFor,
    code,
  });
  expect(shape(got, got.error?.code ?? null), at).toEqual(shape(want, want.errorCode));
  expectConflict(got, want, `${at} ${want.changeId}`);
  expect(got.released.map((r) => r.changeId), `${at}: released`).toEqual(want.released.map((r) => r.changeId));
  got.released.forEach((r, i) => expectResult(r, want.released[i]!, `${at} > released`));
}

async function deliver(m: World, r: Real, batch: MChange[]): Promise<void> {
  const inputs = batch.map((c) => inputOf(c, r.dataset));
  const want = batch.map((c) => m.deliver(c));
  const got = await r.ctx.submitSent(inputs);
  got.forEach((g, i) => expectResult(g, want[i]!, `batch item ${i}`));
}

const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;
const show = (e: Edit) => JSON.stringify(e);

const createOnline = fc.record({ label: LABELS, edit: editArb }).map(
  ({ label, edit }): Cmd => ({
    check: () => true,
    run: async (m, r) => {
      const c = m.add({ id: randomUUID(), entityId: randomUUID(), runId: null, action: 'CREATE', edit: { ...edit, label }, baseVersion: null, trunkVersion: null, position: 0 });
      await deliver(m, r, [c]);
    },
    toString: () => `createOnline(${label}, ${show(edit)})`,
  }),
);

const editOnline = fc.record({ entity: fc.nat(), edit: editArb, stale: fc.nat({ max: 2 }), remove: fc.nat({ max: 7 }).map((n) => n === 0) }).map(
  ({ entity, edit, stale, remove }): Cmd => ({
    check: (m) => m.live().length > 0,
    run: async (m, r) => {
      const entityId = pick(m.live(), entity);
      const base = Math.max(1, m.current(entityId)!.version - stale);
      const c = m.add({ id: randomUUID(), entityId, runId: null, action: remove ? 'DELETE' : 'UPDATE', edit: remove ? NO_EDIT : edit, baseVersion: base, trunkVersion: null, position: 0 });
      await deliver(m, r, [c]);
    },
    toString: () => `${remove ? 'deleteOnline' : 'editOnline'}(entity ${entity}, ${stale} stale${remove ? '' : `, ${show(edit)}`})`,
  }),
);

/** An offline run on what the client saw of a live entity: nothing is sent yet. */
const startRun = fc.record({ entity: fc.nat(), edits: fc.array(editArb, { minLength: 1, maxLength: 4 }), endsWithDelete: fc.nat({ max: 3 }).map((n) => n === 0) }).map(
  ({ entity, edits, endsWithDelete }): Cmd => ({
    check: (m) => m.live().length > 0,
    run: async (m) => {
      const entityId = pick(m.live(), entity);
      const trunk = m.current(entityId)!.version;
      const id = randomUUID();
      const last = endsWithDelete && edits.length > 1 ? edits.length - 1 : -1;
      const changes = edits.map((edit, i) =>
        m.add({ id: randomUUID(), entityId, runId: id, action: i === last ? 'DELETE' : 'UPDATE', edit: i === last ? NO_EDIT : edit, baseVersion: trunk + i, trunkVersion: trunk, position: trunk + i }),
      );
      m.runs.push({ id, entityId, trunk, changes });
    },
    toString: () => `startRun(entity ${entity}, ${edits.length} changes${endsWithDelete && edits.length > 1 ? ', the last a delete' : ''}: ${edits.map(show).join(' ')})`,
  }),
);

/** An offline run that begins with an offline create (trunkVersion null). */
const startOfflineCreate = fc.record({ label: LABELS, first: editArb, edits: fc.array(editArb, { maxLength: 3 }) }).map(
  ({ label, first, edits }): Cmd => ({
    check: () => true,
    run: async (m) => {
      const entityId = randomUUID();
      const id = randomUUID();
      const create = m.add({ id: randomUUID(), entityId, runId: id, action: 'CREATE', edit: { ...first, label }, baseVersion: null, trunkVersion: null, position: 0 });
      const updates = edits.map((edit, i) => m.add({ id: randomUUID(), entityId, runId: id, action: 'UPDATE', edit, baseVersion: i + 1, trunkVersion: null, position: i + 1 }));
      m.runs.push({ id, entityId, trunk: null, changes: [create, ...updates] });
    },
    toString: () => `startOfflineCreate(${label}, ${show(first)}, then ${edits.map(show).join(' ')})`,
  }),
);

/** One batch of run changes, any of them, any order; a change sent before is a resend. */
const deliverRun = fc.array(fc.record({ run: fc.nat(), change: fc.nat() }), { minLength: 1, maxLength: 3 }).map(
  (picks): Cmd => ({
    check: (m) => m.runs.length > 0,
    run: async (m, r) => {
      await deliver(
        m,
        r,
        picks.map((p) => pick(pick(m.runs, p.run).changes, p.change)),
      );
    },
    toString: () => `deliver(${picks.map((p) => `run ${p.run} change ${p.change}`).join(', ')})`,
  }),
);

/** The rest of one run, shuffled (a small deterministic shuffle from `seed`), cut into batches of `per`. */
const deliverRest = fc.record({ run: fc.nat(), seed: fc.nat(), per: fc.integer({ min: 1, max: 3 }) }).map(
  ({ run, seed, per }): Cmd => ({
    check: (m) => m.runs.length > 0,
    run: async (m, r) => {
      let x = seed;
      const rest = pick(m.runs, run)
        .changes.filter((c) => c.status === 'unsent')
        .map((c) => ({ c, key: (x = (x * 1103515245 + 12345) % 2 ** 31) }))
        .sort((a, b) => a.key - b.key)
        .map(({ c }) => c);
      for (let i = 0; i < rest.length; i += per) await deliver(m, r, rest.slice(i, i + per));
    },
    toString: () => `deliverRest(run ${run}, seed ${seed}, ${per} a batch)`,
  }),
);

const flush: Cmd = {
  check: () => true,
  run: async (m, r) => {
    const want = m.flush();
    const mine = new Set(m.changes.keys());
    // The backlog is the database's: keep what this run's model knows.
    const got = (await r.ctx.flush(0)).filter((x) => mine.has(x.changeId));
    expect(got.map((x) => x.changeId), 'forced, in order').toEqual(want.map((x) => x.changeId));
    got.forEach((g, i) => expectResult(g, want[i]!, `forced ${i}`));
  },
  toString: () => 'flush()',
};

const pull: Cmd = {
  check: () => true,
  run: async (m, r) => {
    const page = await r.ctx.pullAll(r.dataset, r.cursor, { limit: 7 });
    r.cursor = page.cursor;
    const want = m.written.slice(r.pulled);
    r.pulled = m.written.length;
    const key = (v: { entityId: string; version: number; changeId: string }) => `${v.entityId} v${v.version} ${v.changeId}`;
    expect(page.versions.map(key).sort(), 'pulled since the last pull').toEqual(want.map(key).sort());
    // Each entity's versions come in version order.
    for (const id of new Set(page.versions.map((v) => v.entityId))) {
      const vs = page.versions.filter((v) => v.entityId === id).map((v) => v.version);
      expect(vs, `pulled versions of ${id}`).toEqual([...vs].sort((a, b) => a - b));
    }
  },
  toString: () => 'pull()',
};

export const commandArbs: fc.Arbitrary<Cmd>[] = [createOnline, editOnline, editOnline, startRun, startRun, startOfflineCreate, deliverRun, deliverRun, deliverRun, deliverRest, deliverRest, fc.constant(flush), fc.constant(pull)];

/**
 * After the sequence, what any client would still send: the rest of every run, latest change
 * first (each held until its predecessor comes, then the chain released), then a forced flush of
 * what is still held and a pull of everything not pulled yet.
 */
export async function finish(m: World, r: Real): Promise<void> {
  for (const run of m.runs) for (const c of run.changes.filter((x) => x.status === 'unsent').reverse()) await deliver(m, r, [c]);
  await flush.run(m, r);
  await pull.run(m, r);
}

/** Everything stored equals the model: histories, entities, the backlog, the change log. */
export async function checkWorld(m: World, r: Real): Promise<void> {
  for (const entityId of m.entityIds) {
    const want = m.histories.get(entityId)!;
    const got = await r.ctx.history(entityId);
    const at = `entity ${entityId}`;
    expect(got.map((v) => [v.version, v.changeId]), `${at}: history`).toEqual(want.map((v) => [v.version, v.changeId]));
    got.forEach((g, i) => {
      const w = want[i]!;
      expect({ action: g.action, label: g.label, data: g.data, deleted: g.deleted, source: g.source, branchId: g.branchId }, `${at} v${g.version}`).toEqual({
        action: w.action,
        label: w.label,
        data: w.data,
        deleted: w.deleted,
        source: w.source,
        branchId: w.runId,
      });
      expectConflict(g, w, `${at} v${g.version}`);
    });
    const entity = await r.ctx.entity(entityId);
    const last = want.at(-1);
    if (!last) expect(entity, `${at} does not exist`).toBeNull();
    else {
      expect({ version: entity?.version, label: entity?.label, data: entity?.data, deleted: entity?.deleted }, at).toEqual({ version: last.version, label: last.label, data: last.data, deleted: last.deleted });
      expectConflict({ conflict: entity!.conflict, conflictingProperties: [] }, { conflict: entityConflict(want).exact, conflictingProperties: null }, `${at} (entity)`);
    }
    const held = [...m.changes.values()].filter((c) => c.entityId === entityId && c.status === 'held');
    expect((await r.ctx.held({ entityId })).map((h) => h.changeId).sort(), `${at}: held`).toEqual(held.map((c) => c.id).sort());
  }
  for (const c of m.changes.values()) {
    const log = await r.ctx.logOf(c.id);
    const want = c.status === 'unsent' ? null : { outcome: { held: 'HELD', applied: 'APPLIED', rejected: 'REJECTED' }[c.status], version: c.version, errorCode: c.errorCode };
    expect(log && { outcome: log.outcome, version: log.version, errorCode: log.errorCode }, `change log of ${c.id}`).toEqual(want);
  }
}
