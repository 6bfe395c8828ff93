import { sql, type SQL } from 'drizzle-orm';
import type { BatchFacts, DatasetRecord, EntityRecord, HeldRecord, HistoryRow, PriorRecord, RunMember, SubsetRow, SubsetToken } from '../core/batch-facts.js';
import type { BatchWrites } from '../core/batch-plan.js';
import type { EntityOrigin } from '../core/placement.js';
import type { SyncEvent } from '../core/events.js';
import type { Tx } from '../db/client.js';
import { writeOutbox } from './webhook-outbox.js';

/**
 * The set-based half of the write path (DESIGN "Processing a change"): the locks of a batch in one
 * sorted statement, the facts it needs in one statement keyed by arrays (a JSON array column per
 * kind of fact; more only for what its held changes add), and its plan written
 * in one multi-row statement per table. Every statement has one text whatever the batch size
 * (arrays and one JSON document as parameters), so the driver prepares it once; each is named for
 * logs and pg_stat_statements.
 */

/** postgres.js answers rows as an array, PGlite as `{ rows }`. */
export function rowsOf<T = Record<string, unknown>>(result: unknown): T[] {
  return (Array.isArray(result) ? result : ((result as { rows?: unknown[] }).rows ?? [])) as T[];
}

const json = (value: unknown) => JSON.stringify(value);

/** Advisory lock spaces (the row of an entity or run may not exist yet, so a row lock cannot do). */
export const LOCK = { change: 1, entity: 2, run: 3, webhooks: 4, subset: 5 } as const;

/**
 * Takes transaction-scoped advisory locks, all in one sorted order (space, then hash), so two
 * batches over overlapping entities in any input order never deadlock.
 */
export async function lockAll(tx: Tx, keys: readonly { space: number; key: string }[]): Promise<void> {
  if (keys.length === 0) return;
  await tx.execute(sql`
    select /* lockBatch */ count(pg_advisory_xact_lock(space, h)) from (
      select distinct space, hashtext(key) as h from unnest(${sql.param(keys.map((k) => k.space))}::int[], ${sql.param(keys.map((k) => k.key))}::text[]) as k(space, key)
      order by space, h offset 0) sorted`);
}

/**
 * The subset tokens of the datasets a transaction writes versions to, under those datasets' subset
 * locks (space LOCK.subset, shared): writes to a dataset run side by side, while an admin's change
 * of a token's subset (sync/subset-moves.ts) takes them exclusively, so every writer of a version
 * (a batch, a flush, a reviewer) judges its subset log rows by the rules that stand when it
 * commits. The lock and the read are sent together on one connection, which runs them in order,
 * so the read sees the rules once the lock is held.
 */
export async function subsetTokensOf(tx: Tx, datasetNames: readonly string[]): Promise<SubsetToken[]> {
  return lockedSubsetTokens(tx, datasetNames, null);
}

/**
 * A statement inserting versions (an `insert into entity_versions ... select`, without
 * `returning`) that also writes the subset log rows they cause: one statement, a data-modifying
 * CTE, so each row takes the seq the database gives its version, and the transaction's id as the
 * version does. Every writer of versions goes through it (persist, sync/review-store.ts).
 */
export function withSubsetRows(insertVersions: SQL, rows: readonly SubsetRow[]): SQL {
  if (rows.length === 0) return insertVersions;
  return sql`
    with v as (${insertVersions} returning seq, entity_id, version)
    insert into subset_log /* writeSubsetRows */ (token_id, dataset_id, seq, entity_id, kind, version_seq)
    select r.token_id, r.dataset_id, v.seq, v.entity_id, r.kind, case when r.kind = 'VERSION' then v.seq end
      from jsonb_to_recordset(${json(rows.map((r) => ({ token_id: r.tokenId, dataset_id: r.datasetId, entity_id: r.entityId, version: r.version, kind: r.kind })))}::jsonb)
        as r(token_id uuid, dataset_id uuid, entity_id uuid, version int, kind text)
      join v on v.entity_id = r.entity_id and v.version = r.version`;
}

/**
 * Tries the entity locks of a flush in sorted order and answers the entities it holds now: those
 * another transaction holds (a submission, another instance's flush) are skipped, not waited for.
 */
export async function tryLockEntities(tx: Tx, entityIds: readonly string[]): Promise<Set<string>> {
  const rows = rowsOf<{ id: string; got: boolean }>(
    await tx.execute(sql`
      select /* tryLockFlush */ id, pg_try_advisory_xact_lock(${LOCK.entity}, h) as got from (
        select distinct id, hashtext(id) as h from unnest(${sql.param([...entityIds])}::text[]) as e(id) order by h, id offset 0) sorted`),
  );
  return new Set(rows.filter((r) => r.got).map((r) => r.id));
}

/** What to load: the batch's own keys, and whose held changes count (the batch's runs', some entities' whole backlog). */
export interface FactKeys {
  changeKeys: readonly string[];
  datasetNames: readonly string[];
  entityIds: readonly string[];
  branchIds: readonly string[];
  /** Entities whose every held change may be released or adopted (branchless creates, forced changes). */
  heldOfEntities: readonly string[];
  /** The API token that sent the batch (null: a flush, or configured anonymous access). */
  submitter?: string | null;
  /** What the batch's own changes will ask for (core earlyNeeds), loaded with the first facts. */
  early?: { history: ReadonlyMap<string, number>; origins: readonly string[]; offlineRuns: readonly string[] };
}

/** Which versions and origins the rules will read, once the held changes and entities are known (core batch-facts). */
export type HistoryPlanner = (held: readonly HeldRecord[], entities: ReadonlyMap<string, EntityRecord>) => { history: Map<string, number>; origins: readonly string[]; offlineRuns: readonly string[] };

/**
 * Loads a batch's facts under its locks, most batches in one round trip of independent
 * statements. `locked` is the lock statement, when the caller sent it just before: the loads are
 * sent right behind it on the same connection, which runs them after it (a pipeline, not a race),
 * so they share its round trip and still read only once the locks are held. What depends on the
 * held changes (their datasets, their runs, the subset locks and tokens of every dataset written)
 * is found by the statements themselves, from the held changes under the same locks; what the
 * batch's own changes need of history, origins and offline runs (`keys.early`) comes along. A
 * second round trip loads only what the held changes and entities add to that (a held change that
 * saw less of its entity's history, a run that began offline), a third the runs an offline create
 * may adopt and the submitter's subset share.
 */
export async function loadFacts(tx: Tx, keys: FactKeys, needs: HistoryPlanner, locked: Promise<void> = Promise.resolve()): Promise<BatchFacts> {
  const early = keys.early ?? { history: new Map<string, number>(), origins: [], offlineRuns: [] };
  const heldOf = heldSelection(keys.branchIds, keys.heldOfEntities);
  // The subset locks of every dataset written (its own and its held changes'), then one statement
  // reading everything: its snapshot is taken once both locks are held.
  const parts = [
    priorsPart(keys.changeKeys),
    entitiesPart(keys.entityIds),
    datasetsPart(keys.datasetNames, heldOf),
    heldPart(heldOf),
    subsetTokensPart(keys.datasetNames, heldOf),
    // The runs the batch and its held changes name.
    runsPart(keys.branchIds, heldOf),
    historyPart(early.history),
    originsPart(early.origins),
    offlineRunsPart(early.offlineRuns),
  ] as const;
  const [, , read] = await Promise.all([locked, shareSubsetLocks(tx, keys.datasetNames, heldOf), readFacts(tx, parts)]);
  const [priors, entities, datasets, held, subsetTokens, namedRuns, earlyHistory, earlyOrigins, earlyOfflineRuns] = [
    parts[0].from(read[0]!),
    parts[1].from(read[1]!),
    parts[2].from(read[2]!),
    parts[3].from(read[3]!),
    parts[4].from(read[4]!),
    parts[5].from(read[5]!),
    parts[6].from(read[6]!),
    parts[7].from(read[7]!),
    parts[8].from(read[8]!),
  ] as const;
  const need = needs(held, entities);
  const named = new Set([...keys.branchIds, ...held.map((h) => h.branchId)]);
  // What the held changes and entities add: a history from further back, origins, offline runs.
  const historyLater = new Map(
    [...need.history].filter(([id, from]) => {
      const loaded = early.history.get(id);
      return loaded === undefined || loaded > from;
    }),
  );
  const originsLater = need.origins.filter((id) => !early.origins.includes(id));
  const offlineRunsLater = need.offlineRuns.filter((id) => !early.offlineRuns.includes(id));
  const [moreHistory, moreOrigins, moreOfflineRuns] = await Promise.all([loadHistory(tx, historyLater), loadOrigins(tx, originsLater), loadOfflineRuns(tx, offlineRunsLater)]);
  // Each as loaded without the shortcut: only what `need` asks for, history from its first version.
  const history = new Map(
    [...need.history.keys()].sort().flatMap((id): [string, HistoryRow[]][] => {
      const rows = historyLater.has(id) ? moreHistory.get(id) : earlyHistory.get(id)?.filter((r) => r.version >= need.history.get(id)!);
      return rows && rows.length > 0 ? [[id, rows]] : [];
    }),
  );
  const origins = new Map(
    need.origins.flatMap((id): [string, EntityOrigin][] => {
      const o = earlyOrigins.get(id) ?? moreOrigins.get(id);
      return o ? [[id, o]] : [];
    }),
  );
  const offlineRuns = new Map(
    need.offlineRuns.flatMap((id): [string, string[]][] => {
      const r = earlyOfflineRuns.get(id) ?? moreOfflineRuns.get(id);
      return r ? [[id, r]] : [];
    }),
  );
  const submitter = keys.submitter ? subsetTokens.find((t) => t.tokenId === keys.submitter) : undefined;
  const seen = submitter ? await loadSeen(tx, submitter.tokenId, keys.entityIds) : null;
  const later = [...new Set([...offlineRuns.values()].flat())].filter((id) => !named.has(id));
  const runs = later.length > 0 ? new Map([...namedRuns, ...(await loadRuns(tx, later))]) : namedRuns;
  return {
    subsetTokens,
    submitter: submitter && seen ? { tokenId: submitter.tokenId, seen } : null,
    datasets,
    entities,
    priors,
    runs,
    held,
    history,
    historyFrom: need.history,
    origins,
    offlineRuns,
  };
}

/** Several parts in one statement, one JSON array column each: their rows, in their order. */
async function readFacts(tx: Tx, parts: readonly Part<unknown>[]): Promise<Record<string, unknown>[][]> {
  const columns = sql.join(parts.map((p, n) => sql`${asJsonColumn(p)} as ${sql.raw(`p${n}`)}`), sql`, `);
  const [row] = rowsOf<Record<string, unknown>>(await tx.execute(sql`select /* batchFacts */ ${columns}`));
  return parts.map((_, n) => parsed(row?.[`p${n}`] ?? []) as Record<string, unknown>[]);
}

/** The held changes of these runs and entities, as a condition on held_changes; null when there are none to ask for. */
function heldSelection(branchIds: readonly string[], entityIds: readonly string[]): SQL | null {
  if (branchIds.length === 0 && entityIds.length === 0) return null;
  return sql`(branch_id = any(${sql.param([...branchIds])}::uuid[]) or entity_id = any(${sql.param([...entityIds])}::uuid[]))`;
}

/** The names given and those of the held changes selected, as one set of names (SQL). */
function namesWithHeld(names: readonly string[], heldOf: SQL | null): SQL {
  const given = sql`select unnest(${sql.param([...names])}::text[]) as name`;
  return heldOf ? sql`${given} union select dataset_name from held_changes where ${heldOf}` : given;
}

/**
 * subsetTokensOf the datasets given and those of the held changes selected (found by the
 * statements themselves, under the batch's locks): their subset locks shared in one sorted
 * statement, then their tokens.
 */
async function lockedSubsetTokens(tx: Tx, datasetNames: readonly string[], heldOf: SQL | null): Promise<SubsetToken[]> {
  if (datasetNames.length === 0 && !heldOf) return [];
  // Each statement goes out from a function of its own awaiting it, as every load does, so they
  // leave in the order called (after the caller's locks, lock before read).
  const [, tokens] = await Promise.all([shareSubsetLocks(tx, datasetNames, heldOf), loadRows(tx, subsetTokensPart(datasetNames, heldOf))]);
  return tokens;
}

async function shareSubsetLocks(tx: Tx, datasetNames: readonly string[], heldOf: SQL | null): Promise<void> {
  if (datasetNames.length === 0 && !heldOf) return;
  await tx.execute(sql`
    select /* shareSubsetLocks */ count(pg_advisory_xact_lock_shared(${LOCK.subset}, h)) from (
      select distinct hashtext(name) as h from (${namesWithHeld(datasetNames, heldOf)}) d order by h offset 0) sorted`);
}

/**
 * One kind of fact: the rows to read (a select without its order), the columns they are ordered
 * by, and what they become. Read alone (loadRows), or as one JSON array column of a statement
 * reading several at once (asJsonColumn, loadFacts): a column of it holds the same values either
 * way (uuid and text as strings, int as numbers, jsonb as JSON, text[] as arrays).
 */
interface Part<T> {
  rows: SQL;
  order: readonly string[];
  from(rows: Record<string, unknown>[]): T;
  /**
   * Nothing to ask for (no ids given, no held changes to follow): in a statement of several parts
   * it is the constant empty array, so the statement plans only the parts that can find rows
   * (planning all nine took 0.6 ms of a single change's 2.3 ms in Postgres).
   */
  none?: boolean;
}

const orderOf = (part: Part<unknown>, prefix: string) => (part.order.length === 0 ? sql`` : sql.raw(` order by ${part.order.map((c) => `${prefix}${c}`).join(', ')}`));

async function loadRows<T>(tx: Tx, part: Part<T>): Promise<T> {
  return part.from(rowsOf(await tx.execute(sql`select * from (${part.rows}) x${orderOf(part, 'x.')}`)));
}

function asJsonColumn(part: Part<unknown>): SQL {
  if (part.none) return sql`'[]'::json`;
  return sql`(select coalesce(json_agg(x${orderOf(part, 'x.')}), '[]'::json) from (${part.rows}) x)`;
}

function subsetTokensPart(datasetNames: readonly string[], heldOf: SQL | null): Part<SubsetToken[]> {
  return {
    none: datasetNames.length === 0 && !heldOf,
    rows: sql`
      select /* subsetTokens */ id, datasets, subset from api_tokens
       where subset is not null and revoked_at is null and datasets && array(${namesWithHeld(datasetNames, heldOf)})`,
    order: [],
    from: (rows) => rows.map((r) => ({ tokenId: r.id as string, datasets: pgArray(r.datasets), subset: parsed(r.subset) as SubsetToken['subset'] })),
  };
}

/**
 * Which of these entities a token's subset log ever handed out, or marks as left when the token got
 * its first rules (from_whole: it could see its whole datasets until then, so its offline edits of
 * any entity it had are not lost to that reassignment).
 */
async function loadSeen(tx: Tx, tokenId: string, entityIds: readonly string[]): Promise<Set<string>> {
  if (entityIds.length === 0) return new Set();
  const rows = rowsOf<{ entity_id: string }>(
    await tx.execute(sql`
      select /* subsetSeen */ distinct entity_id from subset_log
       where token_id = ${tokenId}::uuid and entity_id = any(${sql.param([...entityIds])}::uuid[]) and (kind <> 'LEFT' or from_whole)`),
  );
  return new Set(rows.map((r) => r.entity_id));
}

function priorsPart(keys: readonly string[]): Part<Map<string, PriorRecord>> {
  return {
    none: keys.length === 0,
    rows: sql`
      select /* priorChanges */ c.change_id, c.outcome, c.entity_id, c.version, c.error_code, c.error_message, c.payload, v.conflict, v.conflicting_properties, h.waits_for
        from changes c
        left join entity_versions v on v.entity_id = c.entity_id and v.version = c.version
        left join held_changes h on h.change_id = c.change_id
       where c.change_id = any(${sql.param([...keys])}::text[]) and c.original`,
    order: [],
    from: (rows) =>
      new Map(
        rows.map((r) => [
          r.change_id as string,
          {
            outcome: r.outcome as PriorRecord['outcome'],
            entityId: (r.entity_id as string | null) ?? null,
            version: r.version == null ? null : Number(r.version),
            errorCode: (r.error_code as PriorRecord['errorCode']) ?? null,
            errorMessage: (r.error_message as string | null) ?? null,
            payload: parsed(r.payload) as Record<string, unknown>,
            conflict: (r.conflict as PriorRecord['conflict']) ?? null,
            conflictingProperties: pgArray(r.conflicting_properties),
            waitsFor: r.waits_for == null ? null : Number(r.waits_for),
          },
        ]),
      ),
  };
}

function entitiesPart(ids: readonly string[]): Part<Map<string, EntityRecord>> {
  return {
    none: ids.length === 0,
    rows: sql`select /* batchEntities */ id, dataset_id, label, data, version, conflict, deleted from entities where id = any(${sql.param([...ids])}::uuid[])`,
    order: [],
    from: (rows) =>
      new Map(
        rows.map((r) => [
          r.id as string,
          { id: r.id as string, datasetId: r.dataset_id as string, label: r.label as string, data: parsed(r.data) as EntityRecord['data'], version: Number(r.version), conflict: (r.conflict as EntityRecord['conflict']) ?? null, deleted: Boolean(r.deleted) },
        ]),
      ),
  };
}

/** The datasets named, and those of the held changes selected. */
function datasetsPart(names: readonly string[], heldOf: SQL | null): Part<Map<string, DatasetRecord>> {
  return {
    none: names.length === 0 && !heldOf,
    rows: sql`select /* batchDatasets */ id, name, properties from datasets where name = any(array(${namesWithHeld(names, heldOf)}))`,
    order: [],
    from: (rows) => new Map(rows.map((r) => [r.name as string, { id: r.id as string, name: r.name as string, properties: pgArray(r.properties) }])),
  };
}

function heldPart(heldOf: SQL | null): Part<HeldRecord[]> {
  return {
    none: !heldOf,
    rows: sql`
      select /* batchHeld */ change_id, entity_id, dataset_name, device_id, branch_id, trunk_version, base_version, waits_for, change, held_since from held_changes
       where ${heldOf ?? sql`false`}`,
    order: ['held_since', 'change_id'],
    from: (rows) =>
      rows.map((r) => ({
        changeId: r.change_id as string,
        entityId: r.entity_id as string,
        datasetName: r.dataset_name as string,
        deviceId: (r.device_id as string | null) ?? null,
        branchId: r.branch_id as string,
        trunkVersion: r.trunk_version == null ? null : Number(r.trunk_version),
        baseVersion: Number(r.base_version),
        waitsFor: Number(r.waits_for),
        change: parsed(r.change) as HeldRecord['change'],
      })),
  };
}

/** The versions of these runs, and of the runs of the held changes selected. */
function runsPart(branchIds: readonly string[], heldOf: SQL | null): Part<Map<string, RunMember[]>> {
  // One array, made before the scan: the branch index serves it as it serves the given ids. The
  // version carries its entity's dataset: a join to entities (to read it there) was planned as a
  // hash of every entity in the table.
  const given = sql`select unnest(${sql.param([...branchIds])}::uuid[]) as branch_id`;
  const ids = heldOf ? sql`${given} union select branch_id from held_changes where ${heldOf}` : given;
  return {
    none: branchIds.length === 0 && !heldOf,
    rows: sql`
      select /* runMembers */ v.branch_id, v.dataset_id, v.entity_id, v.version, v.base_version, v.trunk_version, v.conflict, v.source, v.changed, v.device_id
        from entity_versions v
       where v.branch_id = any(array(${ids}))`,
    order: ['version'],
    from: (rows) => {
      const runs = new Map<string, RunMember[]>();
      for (const r of rows) {
        const member: RunMember = {
          branchId: r.branch_id as string,
          datasetId: r.dataset_id as string,
          entityId: r.entity_id as string,
          version: Number(r.version),
          baseVersion: r.base_version == null ? 0 : Number(r.base_version),
          trunkVersion: r.trunk_version == null ? null : Number(r.trunk_version),
          conflict: (r.conflict as RunMember['conflict']) ?? null,
          source: r.source as RunMember['source'],
          changed: parsed(r.changed) as RunMember['changed'],
          deviceId: (r.device_id as string | null) ?? null,
        };
        runs.set(member.branchId, [...(runs.get(member.branchId) ?? []), member]);
      }
      return runs;
    },
  };
}

function offlineRunsPart(entityIds: readonly string[]): Part<Map<string, string[]>> {
  return {
    none: entityIds.length === 0,
    rows: sql`
      select /* offlineRuns */ entity_id, branch_id, min(version) as first from entity_versions
       where entity_id = any(${sql.param([...entityIds])}::uuid[]) and trunk_version is null and branch_id is not null
       group by entity_id, branch_id`,
    order: ['entity_id', 'first'],
    from: (rows) => {
      const out = new Map<string, string[]>();
      for (const r of rows) out.set(r.entity_id as string, [...(out.get(r.entity_id as string) ?? []), r.branch_id as string]);
      return out;
    },
  };
}

function originsPart(entityIds: readonly string[]): Part<Map<string, EntityOrigin>> {
  return {
    none: entityIds.length === 0,
    rows: sql`
      select /* entityOrigins */ entity_id, version, action, source, branch_id, conflict, changed, device_id from entity_versions
       where entity_id = any(${sql.param([...entityIds])}::uuid[]) and version = 1`,
    order: [],
    from: (rows) =>
      new Map(
        rows.map((r) => [
          r.entity_id as string,
          { version: 1, action: r.action as EntityOrigin['action'], source: r.source as EntityOrigin['source'], branchId: (r.branch_id as string | null) ?? null, conflict: (r.conflict as EntityOrigin['conflict']) ?? null, changed: parsed(r.changed) as EntityOrigin['changed'], deviceId: (r.device_id as string | null) ?? null },
        ]),
      ),
  };
}

function historyPart(from: ReadonlyMap<string, number>): Part<Map<string, HistoryRow[]>> {
  return {
    none: from.size === 0,
    rows: sql`
      select /* versionsSince */ v.entity_id, v.version, v.branch_id, v.label, v.data, v.changed
        from unnest(${sql.param([...from.keys()])}::uuid[], ${sql.param([...from.values()])}::int[]) as n(entity_id, first)
        -- Each entity's versions since its first needed are one range of the (entity_id, version)
        -- index. As a join, the planner could not tell how few rows the range holds and scanned
        -- every version of the table (3 ms at 30,000); offset 0 keeps the subquery a subquery, so
        -- it runs once per entity, on the index.
        cross join lateral (select * from entity_versions v where v.entity_id = n.entity_id and v.version >= n.first offset 0) v`,
    order: ['entity_id', 'version'],
    from: (rows) => {
      const out = new Map<string, HistoryRow[]>();
      for (const r of rows) {
        const row: HistoryRow = { entityId: r.entity_id as string, version: Number(r.version), branchId: (r.branch_id as string | null) ?? null, label: r.label as string, data: parsed(r.data) as HistoryRow['data'], changed: parsed(r.changed) as HistoryRow['changed'] };
        out.set(row.entityId, [...(out.get(row.entityId) ?? []), row]);
      }
      return out;
    },
  };
}

const loadRuns = (tx: Tx, branchIds: readonly string[]) => (branchIds.length === 0 ? Promise.resolve(new Map<string, RunMember[]>()) : loadRows(tx, runsPart(branchIds, null)));
const loadOfflineRuns = (tx: Tx, entityIds: readonly string[]) => (entityIds.length === 0 ? Promise.resolve(new Map<string, string[]>()) : loadRows(tx, offlineRunsPart(entityIds)));
const loadOrigins = (tx: Tx, entityIds: readonly string[]) => (entityIds.length === 0 ? Promise.resolve(new Map<string, EntityOrigin>()) : loadRows(tx, originsPart(entityIds)));
const loadHistory = (tx: Tx, from: ReadonlyMap<string, number>) => (from.size === 0 ? Promise.resolve(new Map<string, HistoryRow[]>()) : loadRows(tx, historyPart(from)));

/** jsonb comes back parsed from both drivers; a raw string (some configurations) is parsed here. */
function parsed(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

/** A text[] as an array (postgres.js parses it; a literal `{a,b}` is parsed here). */
function pgArray(v: unknown): string[] {
  if (Array.isArray(v)) return v as string[];
  if (typeof v === 'string' && v.startsWith('{')) return v === '{}' ? [] : v.slice(1, -1).split(',').map((s) => s.replace(/^"(.*)"$/, '$1'));
  return [];
}

/**
 * Writes a plan: one statement per table, entities before the versions that reference them,
 * versions in the order made (their sequence is the pull order within the transaction), and the
 * plan's events into the webhook outbox, in the same transaction. Answers how many outbox rows it
 * wrote (none: no webhook wants these events, and the delivery worker need not be woken).
 */
export async function persist(tx: Tx, w: BatchWrites, events: readonly SyncEvent[]): Promise<number> {
  const statements: Promise<unknown>[] = [];
  if (w.changes.length > 0) {
    statements.push(
      tx.execute(sql`
        insert into changes /* recordChanges */ (change_id, original, device_id, dataset_name, entity_id, action, payload, outcome, error_code, error_message, version, processed_at)
        select change_id, original, device_id, dataset_name, entity_id, action, payload, outcome, error_code, error_message, version, now()
          from jsonb_to_recordset(${json(w.changes.map((c) => ({ change_id: c.changeId, original: c.original, device_id: c.deviceId, dataset_name: c.datasetName, entity_id: c.entityId, action: c.action, payload: c.payload, outcome: c.outcome, error_code: c.errorCode, error_message: c.errorMessage, version: c.version })))}::jsonb)
            as r(change_id text, original boolean, device_id text, dataset_name text, entity_id uuid, action text, payload jsonb, outcome text, error_code text, error_message text, version int)`),
    );
  }
  if (w.entities.length > 0) {
    // An entity that got a conflicting version now has its newest conflict now (the version's
    // created_at is this transaction's now()); one whose conflict stays keeps its time.
    const conflicted = new Set(w.versions.filter((v) => v.conflict !== null).map((v) => v.entityId));
    statements.push(
      tx.execute(sql`
        insert into entities /* writeEntities */ (id, dataset_id, label, data, version, conflict, deleted, last_conflict_at)
        select id, dataset_id, label, data, version, conflict, deleted, case when conflict is not null and conflicted then now() end
          from jsonb_to_recordset(${json(w.entities.map((e) => ({ id: e.id, dataset_id: e.datasetId, label: e.label, data: e.data, version: e.version, conflict: e.conflict, deleted: e.deleted, conflicted: conflicted.has(e.id) })))}::jsonb)
            as r(id uuid, dataset_id uuid, label text, data jsonb, version int, conflict text, deleted boolean, conflicted boolean)
        on conflict (id) do update set label = excluded.label, data = excluded.data, version = excluded.version, conflict = excluded.conflict, deleted = excluded.deleted, updated_at = now(),
          last_conflict_at = case when excluded.conflict is not null then coalesce(excluded.last_conflict_at, entities.last_conflict_at) end`),
    );
  }
  if (w.versions.length > 0) {
    // With subset log rows, one statement writes both (withSubsetRows).
    statements.push(
      tx.execute(
        withSubsetRows(
          sql`
        insert into entity_versions /* writeVersions */ (entity_id, dataset_id, version, applied_on, base_version, action, label, data, changed, operations, deleted, conflict,
            conflicting_properties, source, branch_id, trunk_version, server_diff, base_diff, author_view_unavailable, change_id, device_id)
        select entity_id, dataset_id, version, applied_on, base_version, action, label, data, changed, operations, deleted, conflict,
               array(select jsonb_array_elements_text(conflicting_properties)), source, branch_id, trunk_version, server_diff, base_diff, author_view_unavailable, change_id, device_id
          from jsonb_to_recordset(${json(
            w.versions.map((v, n) => ({
              n,
              entity_id: v.entityId, dataset_id: v.datasetId, version: v.version, applied_on: v.appliedOn, base_version: v.baseVersion, action: v.action, label: v.label, data: v.data, changed: v.changed,
              operations: v.operations, deleted: v.deleted, conflict: v.conflict, conflicting_properties: v.conflictingProperties, source: v.source, branch_id: v.branchId,
              trunk_version: v.trunkVersion, server_diff: v.serverDiff, base_diff: v.baseDiff, author_view_unavailable: v.authorViewUnavailable, change_id: v.changeId, device_id: v.deviceId,
            })),
          )}::jsonb)
            as r(n int, entity_id uuid, dataset_id uuid, version int, applied_on int, base_version int, action text, label text, data jsonb, changed jsonb, operations jsonb, deleted boolean, conflict text,
                 conflicting_properties jsonb, source text, branch_id uuid, trunk_version int, server_diff jsonb, base_diff jsonb, author_view_unavailable text, change_id text, device_id text)
         order by n`,
          w.subsetRows,
        ),
      ),
    );
  }
  if (w.heldDeleted.length > 0) {
    statements.push(tx.execute(sql`delete from held_changes /* takeHeld */ where change_id = any(${sql.param(w.heldDeleted)}::text[])`));
  }
  if (w.heldInserted.length > 0) {
    statements.push(
      tx.execute(sql`
        insert into held_changes /* holdChanges */ (change_id, entity_id, dataset_name, device_id, branch_id, trunk_version, base_version, waits_for, change, held_since)
        select change_id, entity_id, dataset_name, device_id, branch_id, trunk_version, base_version, waits_for, change, now() + n * interval '1 microsecond'
          from jsonb_to_recordset(${json(w.heldInserted.map((h, n) => ({ n, change_id: h.changeId, entity_id: h.entityId, dataset_name: h.datasetName, device_id: h.deviceId, branch_id: h.branchId, trunk_version: h.trunkVersion, base_version: h.baseVersion, waits_for: h.waitsFor, change: h.change })))}::jsonb)
            -- Held in input order: the flush forces oldest first, and one transaction has one now().
            as r(n int, change_id text, entity_id uuid, dataset_name text, device_id text, branch_id uuid, trunk_version int, base_version int, waits_for int, change jsonb)`),
    );
  }
  if (w.outcomes.length > 0) {
    statements.push(
      tx.execute(sql`
        update changes /* settleHeld */ c set outcome = r.outcome, version = r.version, error_code = r.error_code, error_message = r.error_message, processed_at = now()
          from jsonb_to_recordset(${json(w.outcomes.map((o) => ({ change_id: o.changeId, outcome: o.outcome, version: o.version, error_code: o.errorCode, error_message: o.errorMessage })))}::jsonb)
            as r(change_id text, outcome text, version int, error_code text, error_message text)
         where c.change_id = r.change_id and c.original`),
    );
  }
  // Sent at once (pipelined on one connection, the outbox last), run in this order by the server.
  const [, outboxed] = await Promise.all([Promise.all(statements), writeOutbox(tx, events) ?? 0]);
  return outboxed;
}
