import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChangeResult } from '../../src/core/results.js';
import { backend } from '../helpers/database.js';
import { appliedOf, useSyncContext, type Sent } from '../helpers/sync-context.js';

/**
 * The permutation property under real concurrency (Postgres): several offline runs on one entity
 * (each on version 1, one more that begins with the entity's offline create on a second entity)
 * and online edits, every change sent once or twice, shuffled, cut into batches, and all batches
 * sent at the same instant on separate connections. Whatever interleaving the database chose:
 * every change applied exactly once, each run in its own order, versions 1..n, nothing held,
 * nothing rejected, and the values that do not depend on the interleaving are exact (each run's
 * own property holds its last step; counters add up; list elements are all there).
 */

const RUNS = Number(process.env.CONCURRENT_RUNS ?? 25);

interface Scenario {
  /** Steps of each run on version 1: the increment each step adds. */
  runs: number[][];
  /** Online edits on version 1: their increments. */
  online: number[];
  /** Steps of the run that begins with an offline create (its updates after the create). */
  offline: number[];
}

const stepsArb = fc.array(fc.integer({ min: -3, max: 5 }), { minLength: 1, maxLength: 4 });
const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  runs: fc.array(stepsArb, { minLength: 1, maxLength: 3 }),
  online: fc.array(fc.integer({ min: -3, max: 5 }), { maxLength: 3 }),
  offline: fc.array(fc.integer({ min: -3, max: 5 }), { maxLength: 4 }),
});

describe.runIf(backend === 'postgres')('permuted changes delivered concurrently', () => {
  const ctx = useSyncContext({ max: 10 });

  it(`${RUNS} scenarios: every change once, run order kept, versions dense, values exact`, async () => {
    const ds = await ctx.newDataset(['n', 'tags', 'p0', 'p1', 'p2', 'o']);
    await fc.assert(
      fc.asyncProperty(
        scenarioArb,
        fc.infiniteStream(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), fc.boolean())),
        async (s, randomness) => {
          const entityId = await ctx.newEntity(ds, 'Shared', { n: 0, tags: [] });
          const bornOffline = randomUUID();
          const changes: Sent[] = [];
          const runOf = new Map<string, { branch: string; position: number }>();
          s.runs.forEach((steps, r) => {
            const run = ctx.run(ds, entityId, 1);
            steps.forEach((by, k) => {
              const c = run.update(k + 1, { [`p${r}`]: k }, { operations: [{ op: 'INCREMENT', property: 'n', by }, { op: 'LIST_ADD', property: 'tags', value: r * 10 + k }] });
              changes.push(c);
              runOf.set(c.id, { branch: run.branchId, position: k + 1 });
            });
          });
          s.online.forEach((by) => changes.push({ id: randomUUID(), dataset: ds, entityId, action: 'UPDATE', baseVersion: 1, data: {}, operations: [{ op: 'INCREMENT', property: 'n', by }] }));
          const offline = ctx.run(ds, bornOffline, null);
          const create = offline.create('Born offline', { n: 0 });
          changes.push(create);
          runOf.set(create.id, { branch: offline.branchId, position: 0 });
          s.offline.forEach((by, k) => {
            const c = offline.update(k + 1, { o: k }, { operations: [{ op: 'INCREMENT', property: 'n', by }] });
            changes.push(c);
            runOf.set(c.id, { branch: offline.branchId, position: k + 1 });
          });

          // Each change once or twice, shuffled, cut into batches; all batches at once.
          const it = randomness[Symbol.iterator]();
          const items = changes.flatMap((c) => (it.next().value![1] ? [c, c] : [c])).map((c) => ({ c, key: it.next().value![0] }));
          items.sort((a, b) => a.key - b.key);
          const batches: Sent[][] = [[]];
          for (const { c } of items) {
            if (batches.at(-1)!.length > 0 && it.next().value![2]) batches.push([]);
            batches.at(-1)!.push(c);
          }
          const settled = await Promise.allSettled(batches.map((b) => ctx.submitSent(b)));
          const context = `batches ${JSON.stringify(batches.map((b) => b.map((c) => changes.indexOf(c))))}`;
          expect(settled.filter((x) => x.status === 'rejected').map((x) => String((x as PromiseRejectedResult).reason)), context).toEqual([]);
          const results = settled.flatMap((x) => (x as PromiseFulfilledResult<ChangeResult[]>).value);
          expect(results.filter((r) => !['APPLIED', 'HELD', 'DUPLICATE'].includes(r.outcome)).map((r) => r.error), context).toEqual([]);

          // Every change applied exactly once, by the answers and by the history.
          const applied = appliedOf(results).map((r) => r.changeId);
          expect([...applied].sort(), `${context}: applied once each`).toEqual(changes.map((c) => c.id).sort());
          for (const [id, n] of [[entityId, 1 + changes.filter((c) => c.entityId === entityId).length] as const, [bornOffline, 1 + s.offline.length] as const]) {
            const history = await ctx.history(id);
            expect(history.map((v) => v.version), `${context}: versions of ${id}`).toEqual(Array.from({ length: n }, (_, i) => i + 1));
            expect(new Set(history.map((v) => v.changeId)).size, context).toBe(n);
            // Each run in its own order.
            const positions = new Map<string, number[]>();
            for (const v of history) {
              const m = runOf.get(v.changeId);
              if (m) positions.set(m.branch, [...(positions.get(m.branch) ?? []), m.position]);
            }
            for (const [branch, ps] of positions) expect(ps, `${context}: run ${branch}`).toEqual([...ps].sort((a, b) => a - b));
            expect(await ctx.held({ entityId: id }), context).toEqual([]);
          }

          const shared = (await ctx.entity(entityId))!;
          const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
          expect(shared.data.n, context).toBe(sum(s.runs.flat()) + sum(s.online));
          expect([...(shared.data.tags as number[])].sort((a, b) => a - b), context).toEqual(s.runs.flatMap((steps, r) => steps.map((_, k) => r * 10 + k)).sort((a, b) => a - b));
          s.runs.forEach((steps, r) => expect(shared.data[`p${r}`], `${context}: run ${r}`).toBe(steps.length - 1));
          const born = (await ctx.entity(bornOffline))!;
          expect({ label: born.label, n: born.data.n, o: born.data.o, conflict: born.conflict }, context).toEqual({
            label: 'Born offline',
            n: sum(s.offline),
            o: s.offline.length > 0 ? s.offline.length - 1 : undefined,
            conflict: null,
          });
        },
      ),
      { numRuns: RUNS },
    );
  }, 240_000);
});
