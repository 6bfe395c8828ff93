import { and, eq, sql } from 'drizzle-orm';
import { historyNeeds, originNeeds } from '../core/batch-facts.js';
import { planForce } from '../core/batch-plan.js';
import { changeError } from '../core/errors.js';
import type { SyncEvent } from '../core/events.js';
import { changeResult, type ChangeResult } from '../core/results.js';
import { changes, heldChanges, isOriginal } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { LOCK, loadFacts, lockAll, persist, rowsOf, tryLockEntities } from './batch-store.js';
import { failureMessage, isTransient, withTransientRetry } from './retry.js';

/**
 * What a flush run did, in counts, and its first forced changes: a run over a backlog of a
 * million held changes keeps a few numbers, not a million answers and their events (each batch's
 * events go to `onBatch` as it commits, and are not kept).
 */
export interface FlushResult {
  /** Held changes it forced: applied, or refused when they could not be. */
  forced: number;
  /** Of those, applied. */
  forcedApplied: number;
  /** Held successors released right after the changes it forced. */
  released: number;
  /** Of those, applied. */
  releasedApplied: number;
  /** Forced or released, and refused. */
  refused: number;
  /** The first `FlushOptions.listed` forced changes, oldest first, each with the successors it released. */
  listed: ChangeResult[];
  /**
   * Batches that failed as a whole and were forced change by change instead (the answers are the
   * same, the cost is not): 0 unless a held change cannot be forced.
   */
  oneByOne: number;
}

/** How long a change waits for its predecessor before a flush forces it, unless configured. */
export const DEFAULT_HOLD_TIMEOUT_SECONDS = 300;

/** Held changes forced in one transaction. */
const FORCE_BATCH = 500;

interface Due {
  changeId: string;
  entityId: string;
}

export interface FlushOptions {
  olderThanSeconds: number;
  /** Only this dataset's held changes. */
  dataset?: string | undefined;
  /** Only this held change (and the successors it releases). */
  changeId?: string | undefined;
  /**
   * Told each batch's events right after its transaction committed (never before): publish them
   * there, so listeners hear a long flush batch by batch, and a flush cut short has announced all it
   * committed. Awaited before the next batch begins.
   */
  onBatch?: (events: readonly SyncEvent[]) => void | Promise<void>;
  /** Aborted (a shutdown): the flush ends after the batch it is in; what is left stays held for the next run. */
  signal?: AbortSignal;
  /** How many forced changes the result lists (the first ones); default none, only counts. */
  listed?: number;
}

/**
 * DESIGN step 6: applies changes held longer than `olderThanSeconds`, oldest first, each on top
 * of its entity's current version, then releases their successors; optionally only one dataset's
 * or one change's (an administrator's "Force now"). Set-based: up to FORCE_BATCH held changes per
 * transaction (core planForce), each batch's events handed to `onBatch` once it committed. Safe on
 * many instances at once: a transaction takes the locks of the entities it forces, skipping those
 * another transaction holds (they are forced later in the run, waiting for them once), and re-reads
 * the backlog under them, so each held change is forced exactly once.
 */
export async function flushBacklog(db: Db, opts: FlushOptions): Promise<FlushResult> {
  const cutoff = new Date(Date.now() - opts.olderThanSeconds * 1000);
  const result: FlushResult = { forced: 0, forcedApplied: 0, released: 0, releasedApplied: 0, refused: 0, listed: [], oneByOne: 0 };
  const listed = opts.listed ?? 0;
  const skipped: Due[] = [];
  const take = async (r: Forced) => {
    for (const f of r.forced) {
      result.forced++;
      if (f.outcome === 'APPLIED') result.forcedApplied++;
      if (f.outcome === 'REJECTED') result.refused++;
      result.released += f.released.length;
      for (const s of f.released) {
        if (s.outcome === 'APPLIED') result.releasedApplied++;
        if (s.outcome === 'REJECTED') result.refused++;
      }
      if (result.listed.length < listed) result.listed.push(f);
    }
    if (r.oneByOne) result.oneByOne++;
    // Committed: its events go out now, not after the whole backlog.
    if (r.events.length > 0) await opts.onBatch?.(r.events);
    // Then a turn of the event loop before the next batch, so what was published is sent and other
    // requests are answered meanwhile: PGlite answers in this very process, and its queries resolve
    // without one, so a long flush would otherwise hold the whole process until its end.
    await new Promise((resolve) => setImmediate(resolve));
  };
  const stopped = () => opts.signal?.aborted === true;
  // Keyset pagination over (held_since, change_id): what stays held (skipped) is not listed again.
  // The order names the table's columns: a bare held_since is the text column of the select list,
  // and sorting by it sorted every held change for each page instead of reading a range of
  // held_changes_due_idx (14 ms a page at 20,000 held).
  let after: { heldSince: string; changeId: string } | null = null;
  while (!stopped()) {
    const rows: { change_id: string; entity_id: string; held_since: string }[] = rowsOf(
      await db.execute(sql`
        select /* heldChangesDue */ change_id, entity_id, held_since::text as held_since from held_changes
         where held_since <= ${cutoff.toISOString()}::timestamptz
           ${opts.dataset === undefined ? sql`` : sql`and dataset_name = ${opts.dataset}`}
           ${opts.changeId === undefined ? sql`` : sql`and change_id = ${opts.changeId}`}
           ${after === null ? sql`` : sql`and (held_since, change_id) > (${after.heldSince}::timestamptz, ${after.changeId})`}
         order by held_changes.held_since, held_changes.change_id limit ${FORCE_BATCH}`),
    );
    if (rows.length === 0) break;
    const last = rows[rows.length - 1]!;
    after = { heldSince: last.held_since, changeId: last.change_id };
    const r = await forceBatch(db, rows.map((d) => ({ changeId: d.change_id, entityId: d.entity_id })), false);
    await take(r);
    skipped.push(...r.skipped);
  }
  // Entities that were busy (a submission, another instance's flush): waited for, once.
  for (let i = 0; i < skipped.length && !stopped(); i += FORCE_BATCH) {
    await take(await forceBatch(db, skipped.slice(i, i + FORCE_BATCH), true));
  }
  return result;
}

interface Forced {
  forced: ChangeResult[];
  events: SyncEvent[];
  skipped: Due[];
  oneByOne?: boolean;
}

/**
 * Forces some held changes in one transaction. A transient failure is retried (and, if the
 * database stays away, ends the run: the changes stay held for the next one); any other failure
 * sends them one by one, so a change that fails alone leaves the backlog recorded as REJECTED
 * INTERNAL_ERROR and the flush goes on with the others.
 */
async function forceBatch(db: Db, due: readonly Due[], wait: boolean): Promise<Forced> {
  try {
    return await withTransientRetry(() => forceTx(db, due, wait));
  } catch (cause) {
    if (isTransient(cause)) throw cause;
    const out: Forced = { forced: [], events: [], skipped: [], oneByOne: true };
    for (const d of due) {
      const r = await withTransientRetry(() => forceTx(db, [d], true)).catch(async (error: unknown) => {
        if (isTransient(error)) throw error;
        return recordForceFailure(db, d, error);
      });
      out.forced.push(...r.forced);
      out.events.push(...r.events);
    }
    return out;
  }
}

async function forceTx(db: Db, due: readonly Due[], wait: boolean): Promise<Forced> {
  return db.transaction(async (tx) => {
    const ids = [...new Set(due.map((d) => d.entityId))];
    let locked: Set<string>;
    if (wait) {
      await lockAll(tx, ids.map((key) => ({ space: LOCK.entity, key })));
      locked = new Set(ids);
    } else locked = await tryLockEntities(tx, ids);
    const mine = due.filter((d) => locked.has(d.entityId));
    const skipped = due.filter((d) => !locked.has(d.entityId));
    if (mine.length === 0) return { forced: [], events: [], skipped };
    const entityIds = [...new Set(mine.map((d) => d.entityId))];
    // The whole backlog of those entities, re-read under their locks: a change another flush or a
    // release took meanwhile is no longer there, and the successors it may release are.
    const facts = await loadFacts(tx, { changeKeys: [], datasetNames: [], entityIds, branchIds: [], heldOfEntities: entityIds }, (held, entities) => ({
      history: historyNeeds([], held, entities),
      ...originNeeds([], held),
    }));
    const plan = planForce(
      mine.map((d) => d.changeId),
      facts,
    );
    await persist(tx, plan.writes, plan.events);
    return { forced: plan.results, events: plan.events, skipped };
  });
}

/** A held change that cannot be forced, even alone: recorded as such and taken out of the backlog. */
async function recordForceFailure(db: Db, d: Due, cause: unknown): Promise<Forced> {
  const error = changeError('INTERNAL_ERROR', `forcing it failed: ${failureMessage(cause)}`);
  const taken = await db.transaction(async (tx) => {
    await lockAll(tx, [{ space: LOCK.entity, key: d.entityId }]);
    const [held] = await tx.delete(heldChanges).where(eq(heldChanges.changeId, d.changeId)).returning({ changeId: heldChanges.changeId });
    if (!held) return false;
    await tx
      .update(changes)
      .set({ outcome: 'REJECTED', errorCode: error.code, errorMessage: error.message, processedAt: new Date() })
      .where(and(eq(changes.changeId, d.changeId), isOriginal));
    return true;
  });
  return { forced: taken ? [changeResult(d.changeId, 'REJECTED', { entityId: d.entityId, error })] : [], events: [], skipped: [] };
}

export interface Flusher {
  stop(): Promise<void>;
}

/**
 * The periodic task: every `intervalSeconds`, force what has been held longer than
 * `holdTimeoutSeconds`. Runs on every instance; flushBacklog makes that safe. One run at a time.
 * Each batch's events are published as soon as it committed; `onRun` is told the whole run's once it
 * ended. Stopping ends a run after the batch it is in (the rest stays held for the next run, here
 * or on another instance), so a shutdown neither waits for a long backlog nor leaves committed
 * batches unannounced.
 */
export function startBacklogFlusher(
  db: Db,
  opts: {
    intervalSeconds: number;
    holdTimeoutSeconds: number;
    publish: (events: readonly SyncEvent[]) => void;
    onError: (error: unknown) => void;
    /** Told of each finished run, with how long it took (for the metrics and the logs); its events were published batch by batch. */
    onRun?: (result: FlushResult, ms: number) => void;
    /** How many forced changes each run's result lists (FlushOptions.listed). */
    listed?: number;
  },
): Flusher {
  let running: Promise<void> | null = null;
  const stopping = new AbortController();
  const tick = () => {
    if (running || stopping.signal.aborted) return;
    const began = performance.now();
    // Each batch's events are published as soon as that batch commits, not when the run ends.
    running = flushBacklog(db, { olderThanSeconds: opts.holdTimeoutSeconds, onBatch: opts.publish, signal: stopping.signal, listed: opts.listed ?? 0 })
      .then((r) => opts.onRun?.(r, performance.now() - began))
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
      stopping.abort();
      await running;
    },
  };
}
