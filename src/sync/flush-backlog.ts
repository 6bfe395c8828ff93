import { and, asc, eq, lte } from 'drizzle-orm';
import { changeError } from '../core/errors.js';
import { changes, isOriginal, heldChanges } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { datasets } from '../db/datasets.js';
import { entities } from '../db/entities.js';
import type { SyncEvent } from '../core/events.js';
import { lockEntity } from './locks.js';
import { yieldToEventLoop } from './yield.js';
import { applyHeldChange, changeResult, releaseChain, type ChangeResult } from './process.js';
import { isTransient, withTransientRetry } from './retry.js';

export interface FlushResult {
  /** Each forced change, with the successors it released. */
  forced: ChangeResult[];
  events: SyncEvent[];
}

/** How long a change waits for its predecessor before a flush forces it, unless configured. */
export const DEFAULT_HOLD_TIMEOUT_SECONDS = 300;

/**
 * DESIGN step 6: applies changes held longer than `olderThanSeconds`, oldest first, each on top
 * of its entity's current version, then releases their successors. Safe on many instances at
 * once: every write to an entity's backlog happens under that entity's advisory lock, and the
 * held row is re-read under it, so each held change is applied exactly once.
 */
export async function flushBacklog(db: Db, opts: { olderThanSeconds: number; dataset?: string; changeId?: string }): Promise<FlushResult> {
  const cutoff = new Date(Date.now() - opts.olderThanSeconds * 1000);
  /** Held changes listed at a time. */
  const batch = 200;
  const forced: ChangeResult[] = [];
  const events: SyncEvent[] = [];
  const seen = new Set<string>();
  for (;;) {
    const due = await db
      .select({ changeId: heldChanges.changeId, entityId: heldChanges.entityId })
      .from(heldChanges)
      // Optionally one dataset's or one change's (an administrator's "Force now"); and() skips an undefined filter.
      .where(and(lte(heldChanges.heldSince, cutoff), opts.dataset === undefined ? undefined : eq(heldChanges.datasetName, opts.dataset), opts.changeId === undefined ? undefined : eq(heldChanges.changeId, opts.changeId)))
      .orderBy(asc(heldChanges.heldSince), asc(heldChanges.changeId))
      .limit(batch);
    const fresh = due.filter((d) => !seen.has(d.changeId));
    if (fresh.length === 0) break;
    for (const d of fresh) {
      seen.add(d.changeId);
      const r = await forceOrRecord(db, d.changeId, d.entityId);
      await yieldToEventLoop();
      if (r) {
        forced.push(r.result);
        events.push(...r.events);
      }
    }
  }
  return { forced, events };
}

/**
 * Forces one held change. A transient failure is retried (and, if the database stays away, ends
 * the run: the change stays held for the next one); any other failure is this change's alone: it
 * leaves the backlog recorded as REJECTED INTERNAL_ERROR, and the flush goes on with the others.
 */
async function forceOrRecord(db: Db, changeId: string, entityId: string): Promise<{ result: ChangeResult; events: SyncEvent[] } | null> {
  try {
    return await withTransientRetry(() => forceOne(db, changeId, entityId));
  } catch (cause) {
    if (isTransient(cause)) throw cause;
    const error = changeError('INTERNAL_ERROR', `forcing it failed: ${String((cause as Error)?.message ?? cause).slice(0, 200)}`);
    const taken = await db.transaction(async (tx) => {
      await lockEntity(tx, entityId);
      const [held] = await tx.delete(heldChanges).where(eq(heldChanges.changeId, changeId)).returning({ changeId: heldChanges.changeId });
      if (!held) return false;
      await tx
        .update(changes)
        .set({ outcome: 'REJECTED', errorCode: error.code, errorMessage: error.message, processedAt: new Date() })
        .where(and(eq(changes.changeId, changeId), isOriginal));
      return true;
    });
    return taken ? { result: changeResult(changeId, 'REJECTED', { entityId, error }), events: [] } : null;
  }
}

async function forceOne(db: Db, changeId: string, entityId: string): Promise<{ result: ChangeResult; events: SyncEvent[] } | null> {
  return db.transaction(async (tx) => {
    await lockEntity(tx, entityId);
    // Another instance (or a release) may have taken it since it was listed.
    const [held] = await tx.delete(heldChanges).where(and(eq(heldChanges.changeId, changeId))).returning();
    if (!held) return null;
    const [entity] = await tx.select().from(entities).where(eq(entities.id, entityId)).limit(1);
    const forced = await applyHeldChange(tx, held, 'FORCED', entity ?? null);
    if (forced.result.outcome !== 'APPLIED' || !forced.entity) return { result: forced.result, events: forced.events };
    const released = await releaseChain(tx, held.change, forced.entity, held.datasetName);
    forced.result.released = released.results;
    const flushed: SyncEvent = { type: 'backlogFlushed', reason: 'FORCED', datasetName: held.datasetName, entityId, changes: [{ changeId, version: forced.result.version! }] };
    return { result: forced.result, events: [...forced.events, flushed, ...released.events] };
  });
}

export interface Flusher {
  stop(): Promise<void>;
}

/**
 * The periodic task: every `intervalSeconds`, force what has been held longer than
 * `holdTimeoutSeconds`. Runs on every instance; flushBacklog makes that safe. One run at a time.
 */
export function startBacklogFlusher(
  db: Db,
  opts: { intervalSeconds: number; holdTimeoutSeconds: number; publish: (events: readonly SyncEvent[]) => void; onError: (error: unknown) => void },
): Flusher {
  let running: Promise<void> | null = null;
  const tick = () => {
    if (running) return;
    running = flushBacklog(db, { olderThanSeconds: opts.holdTimeoutSeconds })
      .then((r) => opts.publish(r.events))
      .catch(opts.onError)
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(tick, opts.intervalSeconds * 1000);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
