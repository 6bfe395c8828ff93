import { randomUUID } from 'node:crypto';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/core/auth.js';
import { DomainError } from '../../src/core/errors.js';
import type { Database } from '../../src/db/client.js';
import { entities, entityVersions } from '../../src/db/entities.js';
import { createDataset } from '../../src/sync/datasets.js';
import { resolveConflict } from '../../src/sync/resolve-conflict.js';
import { submitChanges } from '../../src/sync/submit-changes.js';
import { backend, freshDatabase } from '../helpers/database.js';

/**
 * Issue 19: a reviewer resolves at version N while a conflicting change lands. Either the change
 * is first and the resolve is STALE_VERSION, or the resolve is first and the change's conflict
 * stays open; never both cleared. Real concurrency needs real connections (PGlite has one and
 * would serialise them by construction), so this runs on Postgres, many times, on a pool.
 */
describe.runIf(backend === 'postgres')('a resolve racing a conflicting change (Postgres)', () => {
  let database: Database;
  let ds: string;
  const admin: Principal = { tokenId: null, role: 'admin', deviceId: null, datasets: null, subset: null };
  beforeAll(async () => {
    database = await freshDatabase({ max: 20 });
    ds = `race_${randomUUID().slice(0, 8)}`;
    await createDataset(database.db, ds, ['height', 'note']);
  });
  afterAll(() => database?.close());

  const submit = (entityId: string, baseVersion: number | null, data: Record<string, unknown>, action: 'CREATE' | 'UPDATE' = 'UPDATE') =>
    submitChanges(database.db, [{ id: randomUUID(), dataset: ds, entityId, action, ...(action === 'CREATE' ? { label: 'Raced' } : { baseVersion }), data }]);

  /** An entity with a HARD conflict on height at version 3. */
  async function conflicted(): Promise<string> {
    const id = randomUUID();
    await submit(id, null, { height: 1 }, 'CREATE');
    await submit(id, 1, { height: 2 });
    const { results } = await submit(id, 1, { height: 3 });
    expect(results[0]).toMatchObject({ version: 3, conflict: 'HARD' });
    return id;
  }

  /**
   * One race: the resolve at version 3 (marking only, or writing a chosen note first) and a change
   * made on version 1 that sets height (HARD wherever it lands).
   */
  async function race(withValues: boolean): Promise<'change first' | 'resolve first'> {
    const id = await conflicted();
    const jitter = () => new Promise((r) => setTimeout(r, Math.random() * 3));
    const [resolved, changed] = await Promise.all([
      jitter().then(() => resolveConflict(database.db, admin, { entityId: id, version: 3, values: withValues ? { note: 'checked' } : null }).then(() => 'ok' as const, (e: unknown) => e)),
      jitter().then(() => submit(id, 1, { height: 9 })),
    ]);
    const change = changed.results[0]!;
    const [entity] = await database.db.select().from(entities).where(eq(entities.id, id));
    const versions = await database.db.select().from(entityVersions).where(and(eq(entityVersions.entityId, id))).orderBy(asc(entityVersions.version));
    const made = versions.find((v) => v.changeId === change.changeId)!;
    // Whichever was first, the change applied in HARD conflict, and its conflict is open.
    expect(change).toMatchObject({ outcome: 'APPLIED', conflict: 'HARD', conflictingProperties: ['height'] });
    expect(made).toMatchObject({ conflict: 'HARD', resolved: false, resolutionId: null });
    expect(entity).toMatchObject({ conflict: 'HARD', version: versions.length, data: { height: 9 } });
    if (resolved === 'ok') {
      // The resolve was first: it resolved version 3 only (after writing version 4, with values); the change came after.
      expect(versions.map((v) => [v.version, v.source, v.conflict, v.resolved])).toEqual([
        [1, 'ONLINE', null, false],
        [2, 'ONLINE', null, false],
        [3, 'ONLINE', 'HARD', true],
        ...(withValues ? [[4, 'REVIEW', null, false]] : []),
        [withValues ? 5 : 4, 'ONLINE', 'HARD', false],
      ]);
      expect(entity!.data).toEqual(withValues ? { height: 9, note: 'checked' } : { height: 9 });
      return 'resolve first';
    }
    // The change was first: the resolve named a version the entity had moved past, and nothing of it was written.
    expect(resolved).toBeInstanceOf(DomainError);
    expect(resolved).toMatchObject({ code: 'STALE_VERSION', message: expect.stringContaining('it is at version 4, not 3') });
    expect(versions.map((v) => [v.version, v.conflict, v.resolved])).toEqual([
      [1, null, false],
      [2, null, false],
      [3, 'HARD', false],
      [4, 'HARD', false],
    ]);
    expect(entity!.data).toEqual({ height: 9 });
    return 'change first';
  }

  it('200 races, 10 at a time, half of them writing values: never both cleared', async () => {
    const seen = { 'change first': 0, 'resolve first': 0 };
    for (let round = 0; round < 20; round++) {
      for (const order of await Promise.all(Array.from({ length: 10 }, (_, i) => race(i % 2 === 0)))) seen[order]++;
    }
    expect(seen['change first'] + seen['resolve first']).toBe(200);
    // Both orders happen under real concurrency (reported, so a run that never raced is visible).
    console.info(`resolve races: ${JSON.stringify(seen)}`);
  });
});
