import type { PropertyValues } from '../core/types.js';
import { and, eq, sql, type SQL } from 'drizzle-orm';
import { changeKey, normalizeUuid } from '../core/validate.js';
import { changes, heldChanges, isOriginal } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { datasets } from '../db/datasets.js';
import { entities, entityVersions } from '../db/entities.js';
import { rowsOf } from './batch-store.js';

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

/**
 * The datasets that hold a run of this id, sorted: a run is seen from its dataset, so the same id
 * named in two datasets (a change naming an entity of another dataset keeps a run of its own)
 * is two runs. Empty when the id is unknown.
 */
export async function datasetsOfBranch(db: Db, id: string): Promise<string[]> {
  const uuid = normalizeUuid(id);
  if (!uuid) return [];
  const rows = rowsOf<{ name: string }>(
    await db.execute(sql`
      select /* datasetsOfRun */ d.name from ${entityVersions} v join ${entities} e on e.id = v.entity_id join ${datasets} d on d.id = e.dataset_id where v.branch_id = ${uuid}
      union select dataset_name from ${heldChanges} where branch_id = ${uuid}
      order by 1`),
  );
  return rows.map((r) => r.name);
}

/**
 * The dataset name of an entity row, as SQL over it (the table alias a relational query passes
 * in), for plugin-drizzle `extras`: what the dataset rule (core mayReachEntity) checks on every
 * path that reaches an entity, read in the same statement as the entity.
 */
export const datasetNameOf = (e: typeof entities): SQL<string> => sql<string>`(select /* entityDataset */ ${datasets.name} from ${datasets} where ${datasets.id} = ${e.datasetId})`;

/**
 * An entity's state (`data`), selected beside whatever the client asked for: a token's subset is
 * judged on it (src/graphql/reach.ts). For a version, its state after it.
 */
export const entityDataOf = (e: typeof entities): SQL<PropertyValues> => sql<PropertyValues>`${e.data}`;
export const versionDataOf = (v: typeof entityVersions): SQL<PropertyValues> => sql<PropertyValues>`${v.data}`;

/** The same for a version row: its entity's dataset. */
export const versionDatasetNameOf = (v: typeof entityVersions): SQL<string> =>
  sql<string>`(select /* versionDataset */ ${datasets.name} from ${entities} join ${datasets} on ${datasets.id} = ${entities.datasetId} where ${entities.id} = ${v.entityId})`;

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

