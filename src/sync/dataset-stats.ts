import { fromPgTimestamp } from '../core/pg-time.js';
import { eq, min, sql } from 'drizzle-orm';
import { heldChanges } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { entities } from '../db/entities.js';

export interface DatasetStats {
  /** Entities not deleted. */
  entities: number;
  /** Entities with an unresolved HARD (SOFT) conflict, deleted ones included: a delete can be what a reviewer must look at. */
  hardConflicts: number;
  softConflicts: number;
  /** Changes of the dataset waiting in the backlog. */
  heldChanges: number;
  /** When the oldest of them was held; null when none is. */
  oldestHeldSince: Date | null;
}

/** A dataset at a glance (the dashboard's first view): two statements, one per table. */
export async function datasetStats(db: Db, dataset: { id: string; name: string }): Promise<DatasetStats> {
  const [counts] = await db
    .select({
      entities: sql<number>`/* datasetStats */ count(*) filter (where not ${entities.deleted})`.mapWith(Number),
      hardConflicts: sql<number>`count(*) filter (where ${entities.conflict} = 'HARD')`.mapWith(Number),
      softConflicts: sql<number>`count(*) filter (where ${entities.conflict} = 'SOFT')`.mapWith(Number),
    })
    .from(entities)
    .where(eq(entities.datasetId, dataset.id));
  const [held] = await db
    .select({ heldChanges: sql<number>`/* datasetBacklogStats */ count(*)`.mapWith(Number), oldestHeldSince: min(heldChanges.heldSince) })
    .from(heldChanges)
    .where(eq(heldChanges.datasetName, dataset.name));
  return {
    entities: counts?.entities ?? 0,
    hardConflicts: counts?.hardConflicts ?? 0,
    softConflicts: counts?.softConflicts ?? 0,
    heldChanges: held?.heldChanges ?? 0,
    oldestHeldSince: held?.oldestHeldSince ? fromPgTimestamp(held.oldestHeldSince) : null,
  };
}
