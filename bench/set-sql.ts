/**
 * The set-based raw-SQL baselines: the best hand-written way to write what entity-sync writes,
 * with the `postgres` driver (prepared statements), one transaction per batch:
 * 1. the advisory locks of every change id, entity id (and run) of the batch, in one sorted order, in one statement;
 * 2. one read: the dataset, the entities, whether any change id was seen before (and, for runs,
 *    whether any of their runs has applied or held changes already);
 * 3. the rows decided in JS (the same rows src/sync writes: the same columns and values, diffs included);
 * 4. one multi-row statement per table (`… from unnest(…)`), pipelined: entities, entity_versions, changes.
 * They handle what the bench sends (in-order updates; fresh runs whose every change is in the
 * batch; held changes without successors) and throw on anything else, rather than decide it.
 * `setFlush` forces held changes the same way: batches of 500, SKIP LOCKED, multi-row writes.
 */
import type postgres from 'postgres';
import { diffStates } from '../src/core/diff.js';
import type { BenchChange } from './workloads.js';

type Tx = postgres.TransactionSql;
type Data = Record<string, unknown>;

/** Milliseconds by step, summed over batches (`batches` counts them). */
export interface Steps {
  ms: Map<string, number>;
  batches: number;
}

export const newSteps = (): Steps => ({ ms: new Map(), batches: 0 });

function stepper(steps: Steps | undefined) {
  let t = performance.now();
  return (step: string) => {
    const now = performance.now();
    if (steps) steps.ms.set(step, (steps.ms.get(step) ?? 0) + now - t);
    t = now;
  };
}

/** A version row, as src/sync writes it (columns left out take their defaults: operations [], conflicting_properties {}, …). */
interface VersionRow {
  entityId: string;
  version: number;
  appliedOn: number | null;
  baseVersion: number | null;
  action: 'CREATE' | 'UPDATE';
  label: string;
  data: Data;
  changed: Data;
  conflict: 'SOFT' | null;
  source: 'ONLINE' | 'IN_ORDER' | 'RELEASED' | 'FORCED';
  branchId: string | null;
  trunkVersion: number | null;
  serverDiff: unknown;
  baseDiff: unknown;
  authorViewUnavailable: string | null;
  changeId: string;
  deviceId: string | null;
}

const FORCED_VIEW = 'applied after the hold timeout without its predecessor: the author view is unknown';

/** The change log row's payload, as src/sync records it (core normalizePayload). */
const payloadOf = (c: BenchChange) => ({
  id: c.id,
  deviceId: c.deviceId,
  dataset: c.dataset,
  entityId: c.entityId,
  action: c.action,
  label: c.label ?? null,
  data: c.data,
  baseVersion: c.baseVersion ?? null,
  trunkVersion: c.trunkVersion ?? null,
  branchId: c.branchId ?? null,
});

const J = (v: unknown) => (v === null ? null : JSON.stringify(v));

async function lockAll(tx: Tx, keys: [number, readonly string[]][]): Promise<void> {
  const spaces = keys.flatMap(([space, ks]) => ks.map(() => space));
  const ids = keys.flatMap(([, ks]) => ks);
  await tx`select count(pg_advisory_xact_lock(space, h)) from (
    select distinct space, hashtext(key) as h from unnest(${spaces}::int[], ${ids}::text[]) as k(space, key) order by space, h offset 0) sorted`;
}

interface Loaded {
  datasetId: string;
  properties: string[];
  entities: Map<string, { label: string; data: Data; version: number }>;
}

/** The one read: dataset, entities, prior change ids (and runs already begun: must be none). */
async function load(tx: Tx, dataset: string, changes: readonly BenchChange[], runs: boolean): Promise<Loaded> {
  const entityIds = [...new Set(changes.map((c) => c.entityId))];
  const changeIds = changes.map((c) => c.id);
  const branchIds = [...new Set(changes.flatMap((c) => (c.branchId ? [c.branchId] : [])))];
  const rows = runs
    ? await tx`select d.id as dataset_id, d.properties, e.id, e.label, e.data, e.version, e.deleted,
          (select count(*)::int from changes c where c.change_id = any(${changeIds}::text[]) and c.original) as seen,
          (select count(*)::int from entity_versions v where v.branch_id = any(${branchIds}::uuid[]))
            + (select count(*)::int from held_changes h where h.branch_id = any(${branchIds}::uuid[]) or h.entity_id = any(${entityIds}::uuid[])) as begun
        from datasets d left join entities e on e.id = any(${entityIds}::uuid[]) and e.dataset_id = d.id
       where d.name = ${dataset}`
    : await tx`select d.id as dataset_id, d.properties, e.id, e.label, e.data, e.version, e.deleted,
          (select count(*)::int from changes c where c.change_id = any(${changeIds}::text[]) and c.original) as seen, 0 as begun
        from datasets d left join entities e on e.id = any(${entityIds}::uuid[]) and e.dataset_id = d.id
       where d.name = ${dataset}`;
  const first = rows[0];
  if (!first) throw new Error(`set-based baseline: no dataset ${dataset}`);
  if (first.seen !== 0) throw new Error('set-based baseline: a change id was seen before');
  if (first.begun !== 0) throw new Error('set-based baseline: the bench sends fresh runs only');
  const properties = first.properties as string[];
  for (const c of changes) if (Object.keys(c.data).some((k) => !properties.includes(k))) throw new Error('set-based baseline: undeclared property');
  const entities = new Map<string, { label: string; data: Data; version: number }>();
  for (const r of rows) {
    if (r.id === null) continue;
    if (r.deleted) throw new Error('set-based baseline: deleted entity');
    entities.set(r.id as string, { label: r.label as string, data: r.data as Data, version: r.version as number });
  }
  return { datasetId: first.dataset_id as string, properties, entities };
}

const writeVersions = (tx: Tx, v: readonly VersionRow[]) => tx`
  insert into entity_versions (entity_id, dataset_id, version, applied_on, base_version, action, label, data, changed, conflict, source, branch_id, trunk_version,
      server_diff, base_diff, author_view_unavailable, change_id, device_id)
  select r.entity_id, e.dataset_id, r.version, r.applied_on, r.base_version, r.action, r.label, r.data::jsonb, r.changed::jsonb, r.conflict, r.source, r.branch_id, r.trunk_version,
      r.server_diff::jsonb, r.base_diff::jsonb, r.author_view_unavailable, r.change_id, r.device_id
    from unnest(${v.map((r) => r.entityId)}::uuid[], ${v.map((r) => r.version)}::int[], ${v.map((r) => r.appliedOn)}::int[], ${v.map((r) => r.baseVersion)}::int[],
      ${v.map((r) => r.action)}::text[], ${v.map((r) => r.label)}::text[], ${v.map((r) => J(r.data))}::text[], ${v.map((r) => J(r.changed))}::text[],
      ${v.map((r) => r.conflict)}::text[], ${v.map((r) => r.source)}::text[], ${v.map((r) => r.branchId)}::uuid[], ${v.map((r) => r.trunkVersion)}::int[],
      ${v.map((r) => J(r.serverDiff))}::text[], ${v.map((r) => J(r.baseDiff))}::text[], ${v.map((r) => r.authorViewUnavailable)}::text[],
      ${v.map((r) => r.changeId)}::text[], ${v.map((r) => r.deviceId)}::text[])
      as r(entity_id, version, applied_on, base_version, action, label, data, changed, conflict, source, branch_id, trunk_version,
           server_diff, base_diff, author_view_unavailable, change_id, device_id)
    -- Each version carries its entity's dataset (what a pull reads by).
    join entities e on e.id = r.entity_id`;

const writeChanges = (tx: Tx, c: readonly BenchChange[], versions: readonly number[]) => tx`
  insert into changes (change_id, device_id, dataset_name, entity_id, action, payload, outcome, version, processed_at)
  select change_id, device_id, dataset_name, entity_id, action, payload::jsonb, 'APPLIED', version, now()
    from unnest(${c.map((x) => x.id)}::text[], ${c.map((x) => x.deviceId)}::text[], ${c.map((x) => x.dataset)}::text[], ${c.map((x) => x.entityId)}::uuid[],
      ${c.map((x) => x.action)}::text[], ${c.map((x) => J(payloadOf(x)))}::text[], ${versions as number[]}::int[])
      as r(change_id, device_id, dataset_name, entity_id, action, payload, version)`;

const updateEntities = (tx: Tx, e: readonly { id: string; data: Data; version: number }[]) => tx`
  update entities t set data = u.data::jsonb, version = u.version, updated_at = now()
    from unnest(${e.map((x) => x.id)}::uuid[], ${e.map((x) => J(x.data))}::text[], ${e.map((x) => x.version)}::int[]) as u(id, data, version)
   where t.id = u.id`;

/** A batch of in-order UPDATEs (one per entity, baseVersion = current), one transaction. */
export async function setUpdates(sql: postgres.Sql, changes: readonly BenchChange[], steps?: Steps): Promise<void> {
  const mark = stepper(steps);
  await sql.begin(async (tx) => {
    mark('begin');
    await lockAll(tx, [
      [1, changes.map((c) => c.id)],
      [2, changes.map((c) => c.entityId)],
    ]);
    mark('advisory locks');
    const { entities } = await load(tx, changes[0]!.dataset, changes, false);
    mark('read');
    const versions: VersionRow[] = [];
    const updated: { id: string; data: Data; version: number }[] = [];
    for (const c of changes) {
      const e = entities.get(c.entityId);
      if (!e) throw new Error('set-based baseline: entity missing');
      if (c.baseVersion !== e.version) throw new Error('set-based baseline: the bench only makes in-order updates, one per entity');
      const data = { ...e.data, ...c.data };
      const diff = diffStates({ label: e.label, data: e.data as never }, { label: e.label, data: data as never });
      versions.push({ entityId: c.entityId, version: e.version + 1, appliedOn: e.version, baseVersion: c.baseVersion, action: 'UPDATE', label: e.label, data, changed: c.data, conflict: null, source: 'ONLINE', branchId: null, trunkVersion: null, serverDiff: diff, baseDiff: diff, authorViewUnavailable: null, changeId: c.id, deviceId: c.deviceId });
      updated.push({ id: c.entityId, data, version: e.version + 1 });
    }
    mark('decide (JS)');
    await Promise.all([updateEntities(tx, updated), writeVersions(tx, versions), writeChanges(tx, changes, versions.map((v) => v.version))]);
    mark('writes (3, pipelined)');
  });
  mark('commit');
  if (steps) steps.batches++;
}

/**
 * A batch of offline runs in any order (the bench sends them reversed), one transaction: each
 * run's changes put in run order and applied one after the other, as entity-sync ends up
 * writing them when it holds the later ones and the first releases them: the first IN_ORDER (a
 * create taking the run's branchId, baseVersion 0), the rest RELEASED.
 */
export async function setRuns(sql: postgres.Sql, changes: readonly BenchChange[], steps?: Steps): Promise<void> {
  const mark = stepper(steps);
  await sql.begin(async (tx) => {
    mark('begin');
    await lockAll(tx, [
      [1, changes.map((c) => c.id)],
      [2, changes.map((c) => c.entityId)],
      [3, changes.flatMap((c) => (c.branchId ? [c.branchId] : []))],
    ]);
    mark('advisory locks');
    const { datasetId, entities } = await load(tx, changes[0]!.dataset, changes, true);
    mark('read');
    const byEntity = new Map<string, BenchChange[]>();
    for (const c of changes) byEntity.set(c.entityId, [...(byEntity.get(c.entityId) ?? []), c]);
    const versions: VersionRow[] = [];
    const versionOf = new Map<string, number>();
    const created: { id: string; label: string; data: Data; version: number }[] = [];
    const updated: { id: string; data: Data; version: number }[] = [];
    for (const [entityId, run] of byEntity) {
      const create = run.find((c) => c.action === 'CREATE');
      const trunk = create ? 0 : run[0]!.trunkVersion!;
      const position = (c: BenchChange) => (c.action === 'CREATE' ? 0 : c.baseVersion! - trunk);
      run.sort((a, b) => position(a) - position(b));
      if (run.some((c, i) => position(c) !== i)) throw new Error('set-based baseline: a run with a gap');
      const branchId = run.find((c) => c.branchId)?.branchId ?? null;
      const existing = entities.get(entityId);
      if (create ? existing : existing?.version !== trunk) throw new Error('set-based baseline: the bench sends runs on the current version only');
      let state = existing ? { label: existing.label, data: existing.data } : null;
      let version = trunk;
      for (const [i, c] of run.entries()) {
        const next = { label: c.label ?? state!.label, data: { ...(state?.data ?? {}), ...c.data } };
        const diff = diffStates(state as never, next as never);
        versions.push({
          entityId, version: version + 1, appliedOn: c.action === 'CREATE' ? null : version, baseVersion: c.action === 'CREATE' ? 0 : c.baseVersion!, action: c.action,
          label: next.label, data: next.data, changed: c.action === 'CREATE' ? { ...c.data, label: c.label } : c.data, conflict: null, source: i === 0 ? 'IN_ORDER' : 'RELEASED',
          branchId, trunkVersion: create ? null : trunk, serverDiff: diff, baseDiff: diff, authorViewUnavailable: null, changeId: c.id, deviceId: c.deviceId,
        });
        versionOf.set(c.id, ++version);
        state = next;
      }
      if (create) created.push({ id: entityId, label: state!.label, data: state!.data, version });
      else updated.push({ id: entityId, data: state!.data, version });
    }
    mark('decide (JS)');
    await Promise.all([
      created.length === 0
        ? null
        : tx`insert into entities (id, dataset_id, label, data, version)
             select id, ${datasetId}::uuid, label, data::jsonb, version
               from unnest(${created.map((e) => e.id)}::uuid[], ${created.map((e) => e.label)}::text[], ${created.map((e) => J(e.data))}::text[], ${created.map((e) => e.version)}::int[]) as u(id, label, data, version)`,
      updated.length === 0 ? null : updateEntities(tx, updated),
      writeVersions(tx, versions),
      writeChanges(tx, changes, changes.map((c) => versionOf.get(c.id)!)),
    ]);
    mark('writes (4, pipelined)');
  });
  mark('commit');
  if (steps) steps.batches++;
}

/**
 * Forces every held change that is due, oldest first, FORCE_BATCH per transaction: one statement
 * takes them (FOR UPDATE SKIP LOCKED, so flushers on several instances share the work), reads
 * their entities, tries their entity locks and looks for held successors (the bench holds none);
 * then one multi-row statement each deletes the held rows, updates the entities, inserts the
 * FORCED versions (flagged SOFT, like entity-sync's) and marks the change log. Returns the changes forced.
 */
export async function setFlush(sql: postgres.Sql, steps?: Steps, batch = 500): Promise<number> {
  let forced = 0;
  for (;;) {
    const mark = stepper(steps);
    const n = await sql.begin(async (tx) => {
      mark('begin');
      const due = await tx`
        with due as (
          select change_id, entity_id, branch_id, trunk_version, base_version, device_id, change, held_since from held_changes
           where held_since <= now() order by held_since, change_id limit ${batch} for update skip locked)
        select d.change_id, d.entity_id, d.branch_id, d.trunk_version, d.base_version, d.device_id, d.change, e.label, e.data, e.version, e.conflict, e.deleted,
               pg_try_advisory_xact_lock(2, hashtext(d.entity_id::text)) as got,
               exists (select 1 from held_changes s where s.branch_id = d.branch_id and s.base_version = d.base_version + 1) as successor
          from due d join entities e on e.id = d.entity_id
         order by d.held_since, d.change_id`;
      mark('take due, read entities, try locks');
      if (due.length === 0) return 0;
      const mine = due.filter((d) => d.got);
      if (mine.length === 0) throw new Error('set-based flush: every due entity is locked by someone else');
      if (mine.some((d) => d.successor || d.deleted)) throw new Error('set-based flush: the bench holds no successors, on live entities only');
      if (new Set(mine.map((d) => d.entity_id)).size !== mine.length) throw new Error('set-based flush: the bench holds one change per entity');
      const versions: VersionRow[] = [];
      const updated: { id: string; data: Data; version: number; conflict: string }[] = [];
      for (const d of mine) {
        const change = d.change as { data: Data };
        const before = { label: d.label as string, data: d.data as Data };
        const data = { ...before.data, ...change.data };
        const version = (d.version as number) + 1;
        versions.push({
          entityId: d.entity_id, version, appliedOn: d.version, baseVersion: d.base_version, action: 'UPDATE', label: before.label, data, changed: change.data, conflict: 'SOFT', source: 'FORCED',
          branchId: d.branch_id, trunkVersion: d.trunk_version, serverDiff: diffStates(before as never, { label: before.label, data } as never), baseDiff: null, authorViewUnavailable: FORCED_VIEW,
          changeId: d.change_id, deviceId: d.device_id,
        });
        updated.push({ id: d.entity_id, data, version, conflict: d.conflict === 'HARD' ? 'HARD' : 'SOFT' });
      }
      mark('decide (JS)');
      await Promise.all([
        tx`delete from held_changes where change_id = any(${mine.map((d) => d.change_id as string)}::text[])`,
        // A forced version is a conflict: the inbox orders by when the newest one came (last_conflict_at).
        tx`update entities t set data = u.data::jsonb, version = u.version, conflict = u.conflict, updated_at = now(), last_conflict_at = now()
             from unnest(${updated.map((x) => x.id)}::uuid[], ${updated.map((x) => J(x.data))}::text[], ${updated.map((x) => x.version)}::int[], ${updated.map((x) => x.conflict)}::text[])
               as u(id, data, version, conflict)
            where t.id = u.id`,
        writeVersions(tx, versions),
        tx`update changes c set outcome = 'APPLIED', version = u.version, processed_at = now()
             from unnest(${versions.map((v) => v.changeId)}::text[], ${versions.map((v) => v.version)}::int[]) as u(change_id, version)
            where c.change_id = u.change_id and c.original`,
      ]);
      mark('writes (4, pipelined)');
      return mine.length;
    });
    mark('commit');
    if (n === 0) return forced;
    if (steps) steps.batches++;
    forced += n;
  }
}
