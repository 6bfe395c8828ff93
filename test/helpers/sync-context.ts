import { randomBytes, randomUUID } from 'node:crypto';
import { and, asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect } from 'vitest';
import { DEFAULT_LIMITS, type ChangeInput, type Limits } from '../../src/core/types.js';
import { changes, heldChanges } from '../../src/db/changes.js';
import type { Database, Db } from '../../src/db/client.js';
import { entities, entityVersions } from '../../src/db/entities.js';
import { rowsOf } from '../../src/sync/batch-store.js';
import { changesSince, decodeCursor, DEFAULT_PULL, type ChangesPage } from '../../src/sync/changes-since.js';
import { createDataset } from '../../src/sync/datasets.js';
import type { SyncEvent } from '../../src/core/events.js';
import { flushListingAll } from './flush.js';
import type { ChangeResult } from '../../src/core/results.js';
import { submitChanges } from '../../src/sync/submit-changes.js';
import { backend, freshDatabase } from './database.js';
import { pullable, settledRead } from './horizon.js';

/**
 * The medium test layer (STYLE.md, Immich's `test/medium`): the sync rules through the use-cases
 * of src/sync, on the back end DATABASE_URL picks, without GraphQL strings. A scenario reads as
 * its steps: `ctx.newDataset()`, `ctx.newEntity(ds)`, `ctx.submit(...)`, `ctx.flush()`,
 * `ctx.pull(ds)`, `ctx.expectHistory(id, [...])`. It calls only what the API calls (submitChanges,
 * flushBacklog, changesSince) and reads the stored history, so it survives a rewrite of how a
 * batch is processed.
 */

/** A change as a test writes it: the id is made when absent. */
export type Change = Omit<ChangeInput, 'id'> & { id?: string };
export type Sent = ChangeInput & { id: string };
export type VersionRow = typeof entityVersions.$inferSelect;
export type EntityRow = typeof entities.$inferSelect;
export type HeldRow = typeof heldChanges.$inferSelect;
export type LogRow = typeof changes.$inferSelect;

/** What a test expects of one version; only the fields given are compared. */
export type ExpectedVersion = Partial<Pick<VersionRow, 'changeId' | 'action' | 'label' | 'data' | 'deleted' | 'conflict' | 'conflictingProperties' | 'source' | 'branchId' | 'baseVersion' | 'appliedOn' | 'deviceId' | 'trunkVersion'>>;

export const withId = (c: Change): Sent => ({ ...c, id: c.id ?? randomUUID() }) as Sent;

/**
 * One offline run of one client on one entity, numbered as a client library numbers it: on
 * server version `trunk`, trunkVersion trunk and baseVersion trunk, trunk+1, …; begun with an
 * offline create (`trunk` null), the create and then baseVersion 1, 2, ….
 */
export function offlineRun(dataset: string, entityId: string, trunk: number | null, extra: Partial<ChangeInput> = {}) {
  const branchId = randomUUID();
  const first = trunk ?? 1;
  return {
    branchId,
    entityId,
    create: (label: string, data: Record<string, unknown> = {}): Sent => ({ id: randomUUID(), dataset, entityId, action: 'CREATE', label, data, branchId, trunkVersion: null, ...extra }),
    /** The n-th update of the run (n = 1, 2, …). */
    update: (n: number, data: Record<string, unknown> = {}, more: Partial<ChangeInput> = {}): Sent => ({
      id: randomUUID(),
      dataset,
      entityId,
      action: 'UPDATE',
      data,
      branchId,
      trunkVersion: trunk,
      baseVersion: first + n - 1,
      ...extra,
      ...more,
    }),
  };
}

/** Every APPLIED result, the held changes each one released included, in order. */
export function appliedOf(results: readonly ChangeResult[]): ChangeResult[] {
  return results.flatMap((r) => [...(r.outcome === 'APPLIED' ? [r] : []), ...appliedOf(r.released)]);
}

export interface SyncContext {
  db: Db;
  database: Database & { url?: string };
  backend: 'pglite' | 'postgres';
  /** Batches that failed as a whole and were processed change by change (submitChanges' and flushBacklog's oneByOne). */
  oneByOne: number;
  /** Every event the use-cases returned for publishing, in order. */
  events: SyncEvent[];
  newDataset(properties?: readonly string[], name?: string): Promise<string>;
  /** An online create, asserted APPLIED as version 1; its id. */
  newEntity(dataset: string, label?: string, data?: Record<string, unknown>, extra?: Partial<ChangeInput>): Promise<string>;
  /** One batch through submitChanges; one result per change, in input order (asserted). */
  submit(...batch: Change[]): Promise<ChangeResult[]>;
  /** The same, for a batch whose ids the caller keeps (resends). */
  submitSent(batch: readonly Sent[]): Promise<ChangeResult[]>;
  /** flushBacklog: forces what has been held longer than `olderThanSeconds`. */
  flush(olderThanSeconds?: number): Promise<ChangeResult[]>;
  /**
   * Waits until everything committed so far is pullable: a transaction of another database the
   * pull horizon cannot tell apart from ours (pg_stat_activity lags) holds pulls back for a while.
   */
  pullable(): Promise<void>;
  /** changesSince, read until its horizon passed everything committed before it. */
  pull(dataset: string, cursor?: string | null, opts?: { limit?: number; deviceId?: string | null }): Promise<ChangesPage>;
  /** Every page from `cursor` to the end: the versions and the last cursor. */
  pullAll(dataset: string, cursor?: string | null, opts?: { limit?: number; deviceId?: string | null }): Promise<{ versions: VersionRow[]; cursor: string; pages: number }>;
  entity(id: string): Promise<EntityRow | null>;
  history(entityId: string): Promise<VersionRow[]>;
  /** Asserts the whole history: exactly these versions, 1..n, each matching what is given. */
  expectHistory(entityId: string, expected: readonly ExpectedVersion[]): Promise<VersionRow[]>;
  held(filter?: { entityId?: string; branchId?: string }): Promise<HeldRow[]>;
  /** The change log's original row of a change (null when the change was never received). */
  logOf(changeId: string): Promise<LogRow | null>;
  /** The change log's original rows of an entity, in the order received. */
  logsOf(entityId: string): Promise<LogRow[]>;
  run: typeof offlineRun;
  close(): Promise<void>;
}

export async function openSyncContext(opts: { max?: number; limits?: Limits } = {}): Promise<SyncContext> {
  const database = await freshDatabase(opts.max !== undefined ? { max: opts.max } : {});
  const db = database.db;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const events: SyncEvent[] = [];

  async function submitSent(batch: readonly Sent[]): Promise<ChangeResult[]> {
    const r = await submitChanges(db, batch, limits);
    events.push(...r.events);
    if (r.oneByOne) ctx.oneByOne++;
    expect(r.results.map((x) => x.changeId)).toEqual(batch.map((c) => c.id.toLowerCase()));
    return r.results;
  }

  /** Whether some version of `dataset` lies after `cursor` (all of them are committed when a test pulls them all). */
  async function behind(dataset: string, cursor: string): Promise<boolean> {
    const { txid, seq } = decodeCursor(cursor);
    const [row] = rowsOf<{ behind: boolean }>(
      await db.execute(sql`select exists (select 1 from entity_versions v join datasets d on d.id = v.dataset_id
        where d.name = ${dataset} and (v.txid, v.seq) > (${txid}::xid8, ${seq}::bigint)) as behind`),
    );
    return row?.behind === true;
  }

  async function pull(dataset: string, cursor: string | null = null, o: { limit?: number; deviceId?: string | null } = {}): Promise<ChangesPage> {
    return settledRead(db, () => changesSince(db, { dataset, cursor, limit: o.limit ?? null, deviceId: o.deviceId ?? null }));
  }

  async function history(entityId: string): Promise<VersionRow[]> {
    return db.select().from(entityVersions).where(eq(entityVersions.entityId, entityId)).orderBy(asc(entityVersions.version));
  }

  const ctx: SyncContext = {
    db,
    database,
    backend,
    oneByOne: 0,
    events,
    newDataset: async (properties = ['a', 'b', 'c'], name = `ds_${randomBytes(5).toString('hex')}`) => (await createDataset(db, name, properties)).name,
    newEntity: async (dataset, label = 'Thing', data = {}, extra = {}) => {
      const id = randomUUID();
      const [r] = await submitSent([withId({ dataset, entityId: id, action: 'CREATE', label, data, ...extra })]);
      expect(r, JSON.stringify(r)).toMatchObject({ outcome: 'APPLIED', version: 1, entityId: id, conflict: null, error: null });
      return id;
    },
    submit: (...batch) => submitSent(batch.map(withId)),
    submitSent,
    flush: async (olderThanSeconds = 0) => {
      const r = await flushListingAll(db, { olderThanSeconds });
      events.push(...r.events);
      ctx.oneByOne += r.oneByOne;
      return r.forced;
    },
    pullable: () => pullable(db),
    pull,
    pullAll: async (dataset, cursor = null, o = {}) => {
      const versions: VersionRow[] = [];
      let pages = 0;
      const until = Date.now() + 30_000;
      for (;;) {
        const page = await pull(dataset, cursor, o);
        pages += 1;
        // A page that says there is more must move the cursor on: else this would pull forever.
        if (page.hasMore && page.cursor === cursor) throw new Error(`page ${pages} has more after it, yet the cursor did not move`);
        versions.push(...page.versions);
        cursor = page.cursor;
        if (page.hasMore) continue;
        // The end, unless the pull was held back: on Postgres a transaction of another test file's
        // database that ends between the page's snapshot and its read of pg_stat_activity counts as
        // this database's for that statement (PULL_HORIZON: slower, never wrong). Versions still
        // after the cursor then come with a later pull, from the same cursor; a pull that never
        // hands them out fails here after 30 s. Only a short page is pulled again: a full one that
        // says it is the last is a wrong hasMore, which the tests must see.
        const short = page.versions.length < (o.limit ?? DEFAULT_PULL);
        if (!short || !(await behind(dataset, page.cursor))) return { versions, cursor: page.cursor, pages };
        if (Date.now() > until) throw new Error(`versions of ${dataset} after the cursor are never handed out`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    entity: async (id) => (await db.select().from(entities).where(eq(entities.id, id)).limit(1))[0] ?? null,
    history,
    expectHistory: async (entityId, expected) => {
      const got = await history(entityId);
      expect(got.map((v) => v.version), `versions of ${entityId}`).toEqual(expected.map((_, i) => i + 1));
      got.forEach((v, i) => expect(v, `version ${v.version} of ${entityId}`).toMatchObject(expected[i]!));
      return got;
    },
    held: async (filter = {}) =>
      db
        .select()
        .from(heldChanges)
        .where(
          and(
            filter.entityId ? eq(heldChanges.entityId, filter.entityId) : undefined,
            filter.branchId ? eq(heldChanges.branchId, filter.branchId) : undefined,
          ),
        )
        .orderBy(asc(heldChanges.baseVersion)),
    logOf: async (changeId) => (await db.select().from(changes).where(and(eq(changes.changeId, changeId), sql`${changes.original}`)).limit(1))[0] ?? null,
    logsOf: async (entityId) => db.select().from(changes).where(and(eq(changes.entityId, entityId), sql`${changes.original}`)).orderBy(asc(changes.receiptId)),
    run: offlineRun,
    close: () => database.close(),
  };
  return ctx;
}

/**
 * The test file's context, opened before its tests and closed after them; bound late, so a file
 * declares `const ctx = useSyncContext()` at its top and uses it in hooks and tests.
 */
export function useSyncContext(opts: { max?: number; limits?: Limits } = {}): SyncContext {
  let opened: SyncContext | undefined;
  beforeAll(async () => {
    opened = await openSyncContext(opts);
  });
  afterAll(async () => {
    await opened?.close();
  });
  return new Proxy({} as SyncContext, {
    get(_, key) {
      if (!opened) throw new Error('the sync context is not open yet: use it inside hooks and tests');
      return opened[key as keyof SyncContext];
    },
  });
}
