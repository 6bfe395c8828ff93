import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK } from '../../src/sync/batch-store.js';
import { resolveConflict, restoreEntity } from '../../src/sync/resolve-conflict.js';
import { backend } from '../helpers/database.js';
import { waitUntil } from '../helpers/live.js';
import { newDevice } from '../helpers/subset-device.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * A reviewer's version waits for a reassignment as a batch's does (issue 20; Postgres only, where
 * transactions run side by side): a transaction holding a dataset's subset lock exclusively (what
 * setTokenSubset takes while it writes its moves) keeps a resolve with values and a restore of that
 * dataset waiting, so no reviewer's version is judged by rules about to change.
 */
describe.runIf(backend === 'postgres')("a reviewer's version and a reassignment (Postgres)", () => {
  const ctx = useSyncContext({ max: 4 });
  let raw: postgres.Sql;
  beforeAll(() => {
    raw = postgres(ctx.database.url!, { max: 2, onnotice: () => {} });
  });
  afterAll(async () => {
    await raw?.end({ timeout: 5 });
  });
  const admin = { tokenId: null, role: 'admin' as const, deviceId: null, datasets: null, subset: null };

  /** Runs `review` while the dataset's subset lock is held exclusively; answers once it was seen waiting for it. */
  async function underReassignment<T>(ds: string, review: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const holding = new Promise<void>((r) => (locked = r));
    const admin = raw.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${LOCK.subset}, hashtext(${ds}))`;
      locked();
      await released;
    });
    await holding;
    let settled = false;
    const pending = review().finally(() => (settled = true));
    try {
      await waitUntil(
        async () => (await raw`select 1 from pg_locks where locktype = 'advisory' and not granted and classid = ${LOCK.subset} and database = (select oid from pg_database where datname = current_database())`).length > 0 || settled,
        'the review to wait for the subset lock',
        20_000,
      );
      expect(settled, 'the review went on while the subset lock was held').toBe(false);
    } finally {
      release();
      await admin;
    }
    return pending;
  }

  it('a resolve with values and a restore wait for the subset lock, then write their log rows', async () => {
    const ds = await ctx.newDataset(['district', 'n']);
    const e = await ctx.newEntity(ds, 'Tree', { district: 'd1', n: 0 });
    await ctx.submit({ dataset: ds, entityId: e, action: 'UPDATE', baseVersion: 1, data: { n: 1 } });
    await ctx.submit({ dataset: ds, entityId: e, action: 'UPDATE', baseVersion: 1, data: { n: 2 } });
    const tablet = await newDevice(ctx.db, ds, [{ property: 'district', values: ['d1'] }]);
    await tablet.sync();
    await underReassignment(ds, () => resolveConflict(ctx.db, admin, { entityId: e, version: 3, values: { n: 5 } }));
    await ctx.submit({ dataset: ds, entityId: e, action: 'DELETE', baseVersion: 4 });
    await underReassignment(ds, () => restoreEntity(ctx.db, admin, { entityId: e, version: 5 }));
    const pages = await tablet.sync();
    expect(pages.flatMap((p) => p.versions.map((v) => [v.version, v.source, v.deleted]))).toEqual([
      [4, 'REVIEW', false],
      [5, 'ONLINE', true],
      [6, 'REVIEW', false],
    ]);
    await tablet.expectInSync();
  });
});
