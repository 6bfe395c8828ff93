import { sql } from 'drizzle-orm';
import { heldChanges } from '../db/changes.js';
import type { Db } from '../db/client.js';

export interface BacklogStats {
  /** Held changes waiting in the backlog, across every dataset. */
  held: number;
  /** Seconds the oldest of them has waited; null when the backlog is empty. */
  oldestAgeSeconds: number | null;
}

/**
 * The backlog as the database sees it now, shared by every instance (what a metrics scrape
 * reports). The age is measured by the database clock, the one `heldSince` was written with,
 * so a skewed application clock cannot make it negative.
 */
export async function backlogStats(db: Db): Promise<BacklogStats> {
  const [row] = await db
    .select({
      held: sql<number>`/* backlogStats */ count(*)::int`,
      oldestAgeSeconds: sql<number | null>`extract(epoch from now() - min(${heldChanges.heldSince}))::float8`,
    })
    .from(heldChanges);
  return { held: Number(row?.held ?? 0), oldestAgeSeconds: row?.oldestAgeSeconds == null ? null : Number(row.oldestAgeSeconds) };
}
