import type { Tx } from '../db/client.js';
import { LOCK, lockAll } from './batch-store.js';

/** The advisory lock of one entity (its row may not exist yet, so a row lock cannot do). */
export async function lockEntity(tx: Tx, entityId: string): Promise<void> {
  await lockAll(tx, [{ space: LOCK.entity, key: entityId }]);
}
