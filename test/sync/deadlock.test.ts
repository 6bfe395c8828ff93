import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import type { ChangeResult } from '../../src/core/results.js';
import { backend } from '../helpers/database.js';
import { useSyncContext, type Sent } from '../helpers/sync-context.js';

/**
 * Batches over the same entities in opposite orders, at the same instant (DESIGN "Processing a
 * change": every entity a batch touches is locked in one fixed order, so no two batches deadlock).
 * Each round sends {A, B, C} twice forwards and twice backwards ({C, B, A}), two changes per
 * entity in each batch, all four at once. Nothing may fail: no batch throws, no change is
 * rejected or INTERNAL_ERROR, Postgres counts no deadlock (a retried 40P01 would hide from the
 * answers, not from pg_stat_database), every change made exactly one version, the versions of
 * each entity are 1..n. Real concurrency needs Postgres.
 */

const ROUNDS = 25;
const ENTITIES = 3;

/** postgres.js answers rows as an array, PGlite as `{ rows }`. */
const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? (r as T[]) : (r as { rows: T[] }).rows);

describe.runIf(backend === 'postgres')('multi-entity batches in opposite orders at once', () => {
  const ctx = useSyncContext({ max: 8 });

  async function deadlocks(): Promise<number> {
    // The statistics collector reports with a delay; a snapshot cleared first is read fresh.
    await ctx.db.execute(sql`select pg_stat_clear_snapshot()`);
    const [row] = rowsOf<{ n: string | number }>(await ctx.db.execute(sql`select deadlocks as n from pg_stat_database where datname = current_database()`));
    return Number(row!.n);
  }

  it(`${ROUNDS} rounds of {A, B, C} against {C, B, A}: no deadlock, nothing lost, versions contiguous`, async () => {
    const ds = await ctx.newDataset(['n', 'by']);
    const ids = await Promise.all(Array.from({ length: ENTITIES }, (_, i) => ctx.newEntity(ds, `E${i}`, { n: 0 })));
    const before = await deadlocks();
    const sent: Sent[] = [];
    const results: ChangeResult[] = [];
    const failures: unknown[] = [];

    for (let round = 0; round < ROUNDS; round++) {
      const batch = (order: readonly string[], tag: string): Sent[] =>
        [...order, ...order].map((entityId, i) => ({ id: randomUUID(), dataset: ds, entityId, action: 'UPDATE', baseVersion: 1, data: { n: i, by: `${tag} r${round}` } }));
      const forwards = [batch(ids, 'f1'), batch(ids, 'f2')];
      const backwards = [batch([...ids].reverse(), 'b1'), batch([...ids].reverse(), 'b2')];
      const all = [forwards[0]!, backwards[0]!, forwards[1]!, backwards[1]!];
      const settled = await Promise.allSettled(all.map((b) => ctx.submitSent(b)));
      settled.forEach((s, i) => {
        sent.push(...all[i]!);
        if (s.status === 'rejected') failures.push({ round, batch: i, error: String(s.reason?.cause ?? s.reason) });
        else results.push(...s.value);
      });
      // A deadlock costs a second to detect: stop at the first round that had one.
      if (failures.length > 0 || (await deadlocks()) !== before) break;
    }
    expect(failures).toEqual([]);
    expect(results.filter((r) => r.outcome !== 'APPLIED').map((r) => ({ outcome: r.outcome, error: r.error }))).toEqual([]);
    expect(await deadlocks(), 'deadlocks counted by Postgres in this database').toBe(before);

    const perEntity = (2 * ENTITIES * 4 * ROUNDS) / ENTITIES + 1;
    const seen = new Map<string, number>();
    for (const id of ids) {
      const history = await ctx.history(id);
      expect(history.map((v) => v.version), id).toEqual(Array.from({ length: perEntity }, (_, i) => i + 1));
      for (const v of history) seen.set(v.changeId, (seen.get(v.changeId) ?? 0) + 1);
      expect((await ctx.entity(id))!.version).toBe(perEntity);
    }
    // Each change sent made exactly one version, the one its answer named.
    const versionOf = new Map(results.map((r) => [r.changeId, r.version]));
    for (const c of sent) {
      expect(seen.get(c.id), c.id).toBe(1);
      expect((await ctx.logOf(c.id))?.version, c.id).toBe(versionOf.get(c.id));
    }
  });
});
