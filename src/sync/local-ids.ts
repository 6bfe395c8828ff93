import { createHash, randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { localIds } from '../db/changes.js';
import type { Db } from '../db/client.js';

/**
 * The entity UUID behind a device's local id, minted at first sight: an update may arrive
 * before its create, and both must name the same entity. The mapping is scoped to the dataset
 * and the device, so two devices may use one local id for different entities, and a change in
 * one dataset can neither find nor take the mapping of another.
 */
export async function resolveLocalId(db: Db, deviceId: string, localId: string, datasetName: string): Promise<string> {
  await db.insert(localIds).values({ deviceId, localId, entityId: randomUUID(), datasetName }).onConflictDoNothing();
  const [row] = await db
    .select({ entityId: localIds.entityId })
    .from(localIds)
    .where(and(eq(localIds.datasetName, datasetName), eq(localIds.deviceId, deviceId), eq(localIds.localId, localId)))
    .limit(1);
  return row!.entityId;
}

/**
 * A stable run id for a local-id entity whose client sent no branchId: its create and the
 * updates that overtake it must share a run for the updates to be held and released. Derived
 * from the minted entity UUID (random, one per device and local id), never from the local id:
 * run ids are visible to every puller of the dataset, and a hash of device and local id could
 * be matched against guessed local ids to learn another device's mappings.
 */
export function localBranchId(entityId: string): string {
  const h = createHash('sha1').update(`entity-sync/local-branch\u0001${entityId}`).digest('hex');
  // Shaped as a version 5 (name-based, SHA-1) UUID.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}
