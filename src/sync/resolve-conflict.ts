import { and, eq, isNotNull } from 'drizzle-orm';
import { DomainError } from '../core/errors.js';
import { isUuid } from '../core/validate.js';
import type { Db } from '../db/client.js';
import { datasets } from '../db/datasets.js';
import { entities, entityVersions } from '../db/entities.js';
import type { SyncEvent } from '../core/events.js';
import { lockEntity } from './locks.js';
import { writeOutbox } from './webhook-outbox.js';

/** A reviewer's verdict: the entity's conflict is cleared and its conflicting versions marked resolved. */
export async function resolveConflict(db: Db, entityId: string): Promise<{ entityId: string; events: SyncEvent[] }> {
  if (!isUuid(entityId)) throw new DomainError('MALFORMED_ID', `entityId "${entityId.slice(0, 60)}" is not a UUID`);
  const id = entityId.toLowerCase();
  return db.transaction(async (tx) => {
    await lockEntity(tx, id);
    const [entity] = await tx
      .select({ conflict: entities.conflict, version: entities.version, datasetName: datasets.name })
      .from(entities)
      .innerJoin(datasets, eq(datasets.id, entities.datasetId))
      .where(eq(entities.id, id))
      .limit(1);
    if (!entity) throw new DomainError('ENTITY_NOT_FOUND', `no entity ${id}`);
    if (!entity.conflict) throw new DomainError('NOT_IN_CONFLICT', `entity ${id} has no unresolved conflict`);
    await tx.update(entities).set({ conflict: null, updatedAt: new Date() }).where(eq(entities.id, id));
    await tx
      .update(entityVersions)
      .set({ resolved: true })
      .where(and(eq(entityVersions.entityId, id), isNotNull(entityVersions.conflict), eq(entityVersions.resolved, false)));
    const events: SyncEvent[] = [{ type: 'conflictResolved', datasetName: entity.datasetName, entityId: id, version: entity.version }];
    await writeOutbox(tx, events);
    return { entityId: id, events };
  });
}
