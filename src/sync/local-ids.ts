import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { localIds } from '../db/changes.js';
import type { Db } from '../db/client.js';

/**
 * The entity UUIDs behind devices' local ids, minted at first sight: an update may arrive before
 * its create, and both must name the same entity. A mapping is scoped to the dataset and the
 * device, so two devices may use one local id for different entities, and a change in one dataset
 * can neither find nor take the mapping of another. One insert (in key order, so concurrent
 * batches take the index entries in one order) and one read, for a whole batch.
 */
export async function resolveLocalIds(db: Db, wanted: readonly { datasetName: string; deviceId: string; localId: string }[]): Promise<Map<string, string>> {
  const keys = [...new Map(wanted.map((w) => [JSON.stringify([w.datasetName, w.deviceId, w.localId]), w])).values()].sort((a, b) =>
    a.datasetName < b.datasetName ? -1 : a.datasetName > b.datasetName ? 1 : a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.localId < b.localId ? -1 : a.localId > b.localId ? 1 : 0,
  );
  const d = sql.param(keys.map((k) => k.datasetName));
  const v = sql.param(keys.map((k) => k.deviceId));
  const l = sql.param(keys.map((k) => k.localId));
  const u = sql.param(keys.map(() => randomUUID()));
  await db.execute(sql`
    insert into local_ids /* mintLocalIds */ (dataset_name, device_id, local_id, entity_id)
    select * from unnest(${d}::text[], ${v}::text[], ${l}::text[], ${u}::uuid[]) on conflict do nothing`);
  const rows = await db
    .select({ datasetName: localIds.datasetName, deviceId: localIds.deviceId, localId: localIds.localId, entityId: localIds.entityId })
    .from(localIds)
    .innerJoin(sql`unnest(${d}::text[], ${v}::text[], ${l}::text[]) as w(dataset_name, device_id, local_id)`, sql`${localIds.datasetName} = w.dataset_name and ${localIds.deviceId} = w.device_id and ${localIds.localId} = w.local_id`);
  return new Map(rows.map((r) => [JSON.stringify([r.datasetName, r.deviceId, r.localId]), r.entityId]));
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
