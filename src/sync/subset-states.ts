import { and, eq, inArray } from 'drizzle-orm';
import type { SubsetState } from '../core/subsets.js';
import type { Db } from '../db/client.js';
import { entities, entityVersions } from '../db/entities.js';

/**
 * The states an event is judged by for a subscriber with a subset (DESIGN "Subsets"): an entity's
 * properties at some of its versions (version 0: before its create, no state), or as it is now.
 * Events carry ids only; one lookup serves every subscriber of an instance (graphql/subset-events.ts).
 */
export async function statesAt(db: Db, entityId: string, versions: readonly number[]): Promise<Map<number, SubsetState>> {
  const wanted = [...new Set(versions.filter((v) => v > 0))];
  if (wanted.length === 0) return new Map();
  const rows = await db
    .select({ version: entityVersions.version, data: entityVersions.data, deleted: entityVersions.deleted })
    .from(entityVersions)
    .where(and(eq(entityVersions.entityId, entityId), inArray(entityVersions.version, wanted)));
  return new Map(rows.map((r) => [r.version, { data: r.data, deleted: r.deleted }]));
}

export async function stateNow(db: Db, entityId: string): Promise<SubsetState | null> {
  const [row] = await db.select({ data: entities.data, deleted: entities.deleted }).from(entities).where(eq(entities.id, entityId)).limit(1);
  return row ?? null;
}
