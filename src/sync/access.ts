import { and, eq } from 'drizzle-orm';
import { changeKey, normalizeUuid } from '../core/validate.js';
import { changes, heldChanges, isOriginal } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { datasets } from '../db/datasets.js';
import { entities, entityVersions } from '../db/entities.js';

/**
 * Which dataset a record belongs to, for authorization by id. Null when the id is unknown:
 * a restricted token is then refused exactly as for a record of another dataset, so ids of
 * other datasets cannot be probed.
 */
export async function datasetOfEntity(db: Db, id: string): Promise<string | null> {
  const uuid = normalizeUuid(id);
  if (!uuid) return null;
  const [row] = await db.select({ name: datasets.name }).from(entities).innerJoin(datasets, eq(datasets.id, entities.datasetId)).where(eq(entities.id, uuid)).limit(1);
  if (row) return row.name;
  // Not created yet: its updates may wait in the backlog.
  const [held] = await db.select({ name: heldChanges.datasetName }).from(heldChanges).where(eq(heldChanges.entityId, uuid)).limit(1);
  return held?.name ?? null;
}

export async function datasetOfBranch(db: Db, id: string): Promise<string | null> {
  const uuid = normalizeUuid(id);
  if (!uuid) return null;
  const [row] = await db
    .select({ name: datasets.name })
    .from(entityVersions)
    .innerJoin(entities, eq(entities.id, entityVersions.entityId))
    .innerJoin(datasets, eq(datasets.id, entities.datasetId))
    .where(eq(entityVersions.branchId, uuid))
    .limit(1);
  if (row) return row.name;
  const [held] = await db.select({ name: heldChanges.datasetName }).from(heldChanges).where(eq(heldChanges.branchId, uuid)).limit(1);
  return held?.name ?? null;
}

export async function datasetOfChange(db: Db, id: string): Promise<{ dataset: string | null; deviceId: string | null } | null> {
  const key = changeKey(id);
  if (key === null) return null;
  const [row] = await db
    .select({ dataset: changes.datasetName, deviceId: changes.deviceId })
    .from(changes)
    .where(and(eq(changes.changeId, key), isOriginal))
    .limit(1);
  return row ?? null;
}

