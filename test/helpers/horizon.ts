import { sql } from 'drizzle-orm';
import type { Db } from '../../src/db/client.js';
import { PULL_HORIZON } from '../../src/sync/changes-since.js';
import { rowsOf } from '../../src/sync/batch-store.js';

/**
 * Waiting for the pull horizon (PULL_HORIZON in src/sync/changes-since.ts) in tests that pull over
 * src/sync. A pull hands out a row once every older transaction of its database has ended; a
 * transaction of another database counts as ours when pg_stat_activity does not show it, so on a
 * Postgres shared with other test files a horizon can be held back for a moment (never wrong:
 * the page is short).
 */

/** The newest transaction id written so far (versions and subset log alike); 0 when none. */
async function written(db: Db): Promise<bigint> {
  const [row] = rowsOf<{ x: string | null }>(
    await db.execute(sql`select greatest((select max(txid) from entity_versions), (select max(txid) from subset_log))::text as x`),
  );
  return BigInt(row?.x ?? '0');
}

const WAIT_MS = 30_000;
const stuck = () => new Error('a transaction older than the rows written is still running');

/** Waits until a statement's horizon is past everything written, bounded. */
export async function pullable(db: Db): Promise<void> {
  const until = Date.now() + WAIT_MS;
  for (;;) {
    const [row] = rowsOf<{ ok: boolean }>(
      await db.execute(
        sql`select coalesce(${sql.raw(PULL_HORIZON)} > greatest((select max(txid) from entity_versions), (select max(txid) from subset_log)), true) as ok`,
      ),
    );
    if (row?.ok) return;
    if (Date.now() > until) throw stuck();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Reads a page until its own horizon has passed everything written before the read began, bounded.
 * Waiting once (pullable) and then reading is not enough: each statement computes its horizon anew,
 * and a transaction of another database that ends between its snapshot and its pg_stat_activity
 * read counts as ours for that statement.
 */
export async function settledRead<P extends { basis: { horizon: string } }>(db: Db, read: () => Promise<P>): Promise<P> {
  const target = await written(db);
  const until = Date.now() + WAIT_MS;
  for (;;) {
    const page = await read();
    if (BigInt(page.basis.horizon) > target) return page;
    if (Date.now() > until) throw stuck();
    await new Promise((r) => setTimeout(r, 20));
  }
}
