import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { entities } from '../../src/db/entities.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * An entity's last conflict time (entities.last_conflict_at, the conflict inbox's order): the
 * batch that gives it a conflicting version sets it to that version's time; a later version that
 * leaves the conflict standing keeps it; an entity never in conflict has none. The dashboard's
 * tests see it as an order; here it is pinned where `npm run mutate:sync` breaks the write path.
 */
const ctx = useSyncContext();

const conflictTime = async (id: string) => (await ctx.db.select({ at: entities.lastConflictAt, conflict: entities.conflict }).from(entities).where(eq(entities.id, id)))[0]!;
const versionTime = async (id: string, version: number) => (await ctx.history(id)).find((v) => v.version === version)!.createdAt;

describe('the last conflict time of an entity', () => {
  it('set by the batch that made its conflicting version, kept while the conflict stands, none without one', async () => {
    const ds = await ctx.newDataset(['n', 'm']);
    const [calm, torn] = [await ctx.newEntity(ds, 'Calm', { n: 0 }), await ctx.newEntity(ds, 'Torn', { n: 0 })];
    // Both edited in one batch: calm in order, torn twice from version 1 (the second conflicts).
    const r = await ctx.submit(
      { dataset: ds, entityId: calm, action: 'UPDATE', baseVersion: 1, data: { n: 1 } },
      { dataset: ds, entityId: torn, action: 'UPDATE', baseVersion: 1, data: { n: 1 } },
      { dataset: ds, entityId: torn, action: 'UPDATE', baseVersion: 1, data: { n: 2 } },
    );
    expect(r.map((x) => [x.outcome, x.version, x.conflict])).toEqual([
      ['APPLIED', 2, null],
      ['APPLIED', 2, null],
      ['APPLIED', 3, 'HARD'],
    ]);
    expect(await conflictTime(calm)).toEqual({ at: null, conflict: null });
    const made = await conflictTime(torn);
    expect(made.conflict).toBe('HARD');
    expect(made.at).not.toBeNull();
    expect(new Date(made.at!).getTime()).toBe((await versionTime(torn, 3)).getTime());
    // A later, clean version of another property: the conflict stands, and so does its time.
    const [later] = await ctx.submit({ dataset: ds, entityId: torn, action: 'UPDATE', baseVersion: 3, data: { m: 1 } });
    expect([later!.outcome, later!.version, later!.conflict]).toEqual(['APPLIED', 4, null]);
    expect(await conflictTime(torn)).toEqual(made);
  });
});
