import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadFacts } from '../../src/sync/batch-store.js';
import { factKeys, factNeeds, prepare } from '../../src/sync/submit-changes.js';
import { offlineRun, useSyncContext, type Sent } from '../helpers/sync-context.js';

/**
 * Issue 22: a batch loads what its own changes need of history, origins and offline runs with
 * its first facts (keys.early), and only what its held changes add afterwards. Loading early is a
 * shortcut, never a difference: before each batch of random offline runs (on existing entities
 * edited online meanwhile, and offline creates), delivered in random order with duplicates, the
 * facts loaded with the shortcut equal those loaded without it, in the same transaction; then the
 * batch goes through submitChanges and the next one sees what it left (held changes, runs).
 */

const PROPS = ['a', 'b', 'c'] as const;
const DATASET = `early_${randomUUID().slice(0, 8)}`;
const ctx = useSyncContext();
beforeAll(async () => {
  await ctx.newDataset(PROPS, DATASET);
});

/** The facts of a batch, loaded both ways in one transaction (rolled back: only read, and locks). */
async function bothWays(batch: readonly Sent[]) {
  const changes = batch.map((c) => prepare(c));
  const keys = factKeys(changes, null);
  const { early, ...plain } = keys;
  expect(early).toBeDefined();
  let facts: unknown[] = [];
  await ctx.db
    .transaction(async (tx) => {
      facts = [await loadFacts(tx, keys, factNeeds(changes)), await loadFacts(tx, plain, factNeeds(changes))];
      throw new Rollback();
    })
    .catch((e: unknown) => {
      if (!(e instanceof Rollback)) throw e;
    });
  return facts;
}
class Rollback extends Error {}

interface Plan {
  /** Online updates made to each existing entity before the runs are sent (so runs see less than the head). */
  online: number[];
  /** Per run: on which existing entity (index) or an offline create (null), and its length. */
  runs: { on: number | null; length: number; implicit: boolean }[];
  /** The order the changes are sent in, and how they are cut into batches. */
  order: number[];
  cuts: number[];
  duplicates: number[];
}

const planArb: fc.Arbitrary<Plan> = fc
  .record({
    online: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 2, maxLength: 2 }),
    runs: fc.array(fc.record({ on: fc.option(fc.integer({ min: 0, max: 1 }), { freq: 2 }), length: fc.integer({ min: 1, max: 4 }), implicit: fc.boolean() }), { minLength: 1, maxLength: 3 }),
  })
  .chain((p) => {
    const total = p.runs.reduce((n, r) => n + r.length, 0);
    return fc.record({
      online: fc.constant(p.online),
      runs: fc.constant(p.runs),
      order: fc.shuffledSubarray([...Array(total).keys()], { minLength: total, maxLength: total }),
      cuts: fc.array(fc.integer({ min: 1, max: total }), { maxLength: 3 }),
      duplicates: fc.array(fc.integer({ min: 0, max: total - 1 }), { maxLength: 2 }),
    });
  });

describe('facts loaded early equal facts loaded after the held changes are known', () => {
  it('for random offline runs delivered in random order and batches, with duplicates', async () => {
    await fc.assert(
      fc.asyncProperty(planArb, async (plan) => {
        const entities = [await ctx.newEntity(DATASET, 'One', { a: 1 }), await ctx.newEntity(DATASET, 'Two', { b: 1 })];
        const versions = [1, 1];
        for (const [i, n] of plan.online.entries()) {
          for (let k = 0; k < n; k++) {
            await ctx.submit({ dataset: DATASET, entityId: entities[i]!, action: 'UPDATE', baseVersion: versions[i]!, data: { c: k } });
            versions[i]!++;
          }
        }
        const device = `device-${randomUUID().slice(0, 8)}`;
        const all: Sent[] = plan.runs.flatMap((r, n) => {
          if (r.on === null) {
            // An offline create and its updates; ODK Collect's form: the create without a run id.
            const run = offlineRun(DATASET, randomUUID(), null, { deviceId: device });
            const create = { ...run.create(`New ${n}`, { a: n }), ...(r.implicit ? { branchId: null } : {}) } as Sent;
            return [create, ...Array.from({ length: r.length - 1 }, (_, k) => run.update(k + 1, { b: k }))];
          }
          // On an existing entity, begun at version 1 (it has seen none of the online edits).
          const run = offlineRun(DATASET, entities[r.on]!, 1, { deviceId: device });
          return Array.from({ length: r.length }, (_, k) => run.update(k + 1, { [PROPS[k % 3]!]: `${n}.${k}` }));
        });
        const sent = [...plan.order.map((i) => all[i]!), ...plan.duplicates.map((i) => all[i]!)];
        const cuts = [...new Set([0, ...plan.cuts.filter((c) => c < sent.length), sent.length])].sort((x, y) => x - y);
        for (let k = 1; k < cuts.length; k++) {
          const batch = sent.slice(cuts[k - 1], cuts[k]);
          const [early, late] = await bothWays(batch);
          expect(early).toEqual(late);
          await ctx.submitSent(batch);
        }
      }),
      { numRuns: Number(process.env.EARLY_FACTS_RUNS ?? 25) },
    );
  }, 300_000);

  it('a held change that saw less than the batch: its history comes from further back, as without the shortcut', async () => {
    const entity = await ctx.newEntity(DATASET, 'Three', { a: 1 });
    await ctx.submit({ dataset: DATASET, entityId: entity, action: 'UPDATE', baseVersion: 1, data: { a: 2 } });
    await ctx.submit({ dataset: DATASET, entityId: entity, action: 'UPDATE', baseVersion: 2, data: { a: 3 } });
    // A run begun on version 1: its second change first (held, it saw version 1 only).
    const run = offlineRun(DATASET, entity, 1);
    const second = run.update(2, { b: 2 });
    expect((await ctx.submitSent([second]))[0]).toMatchObject({ outcome: 'HELD' });
    // The run's first change, as an online-looking update sent from version 3 would see far less
    // history than the held one needs: the held one asks for versions from 1.
    const first = run.update(1, { c: 1 }, { trunkVersion: 3, baseVersion: 3 });
    const [early, late] = (await bothWays([first])) as { history: Map<string, { version: number }[]>; historyFrom: Map<string, number> }[];
    expect(early).toEqual(late);
    expect(late!.historyFrom.get(entity)).toBe(1);
    expect(late!.history.get(entity)!.map((v) => v.version)).toEqual([1, 2, 3]);
  });
});

