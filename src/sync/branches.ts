import { and, eq, inArray, sql } from 'drizzle-orm';
import { buildsOnEntityCreate } from '../core/placement.js';
import { heldChanges } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { datasets } from '../db/datasets.js';
import { entities, entityVersions } from '../db/entities.js';

/**
 * Offline runs as the dashboard and reviewers read them (DESIGN "Processing a change"). Every
 * read here is one statement for a whole page of parents (entities or runs), and every list is
 * paged or bounded: a run has at most Limits.maxRunLength positions, and its gaps are ranges. A
 * run is seen from its dataset, as the write path sees it: nothing of another dataset shows in it.
 */

export interface Branch {
  id: string;
  /** The dataset it is seen from: a run of the same id in another dataset is another run. */
  dataset: string;
  entityId: string;
  trunkVersion: number | null;
}

export interface BranchChange {
  /** Position in the run: the client baseVersion (0 for an offline create). */
  position: number;
  changeId: string;
  state: 'APPLIED' | 'HELD';
  /** Server version made, once applied. */
  version: number | null;
  heldSince: Date | null;
}

/** Positions `from` to `to` (inclusive) that the run lacks: what it waits for. */
export interface PositionRange {
  from: number;
  to: number;
}

interface Member extends BranchChange {
  branchId: string;
  dataset: string;
  entityId: string;
  trunkVersion: number | null;
  deviceId: string | null;
}

/** A run as a key: its id in its dataset. */
const keyOf = (run: { id: string; dataset: string }): string => `${run.dataset}/${run.id}`;

/**
 * The applied and held changes of some runs ids, in every dataset, in run order, from one
 * statement: an applied change is in its entity's dataset, a held one in the dataset it named.
 */
async function membersOf(db: Db, branchIds: readonly string[]): Promise<Member[]> {
  if (branchIds.length === 0) return [];
  const rows = (await db.execute(sql`
    select /* runMembers */ v.branch_id, d.name as dataset, v.entity_id, v.trunk_version, coalesce(v.base_version, 0) as position, v.change_id, 'APPLIED' as state, v.version,
           null::timestamptz as held_since, v.device_id
      from ${entityVersions} v join ${entities} e on e.id = v.entity_id join ${datasets} d on d.id = e.dataset_id
     where v.branch_id = any(${sql.param([...new Set(branchIds)])}::uuid[])
    union all
    select branch_id, dataset_name, entity_id, trunk_version, base_version, change_id, 'HELD', null, held_since, device_id
      from ${heldChanges} where branch_id = any(${sql.param([...new Set(branchIds)])}::uuid[])
    order by 1, 2, 5`)) as unknown;
  return rowsOf(rows).map((r) => ({
    branchId: r.branch_id as string,
    dataset: r.dataset as string,
    entityId: r.entity_id as string,
    trunkVersion: (r.trunk_version as number | null) ?? null,
    position: Number(r.position),
    changeId: r.change_id as string,
    state: r.state as 'APPLIED' | 'HELD',
    version: r.version == null ? null : Number(r.version),
    heldSince: r.held_since == null ? null : new Date(r.held_since as string),
    deviceId: (r.device_id as string | null) ?? null,
  }));
}

/** postgres.js answers rows as an array, PGlite as `{ rows }`. */
function rowsOf(result: unknown): Record<string, unknown>[] {
  return Array.isArray(result) ? (result as Record<string, unknown>[]) : ((result as { rows: Record<string, unknown>[] }).rows ?? []);
}

/**
 * The entity creates that runs which began offline build on (core buildsOnEntityCreate): a create
 * sent without the run's branchId is still the run's position 0, when it is its own device's, and
 * only on an entity of the run's own dataset (another dataset's entity is not this run's to show).
 */
async function runCreates(db: Db, runs: ReadonlyMap<string, Member[]>): Promise<Map<string, Member>> {
  const wanting = [...runs.entries()].filter(([, ms]) => ms.length > 0 && ms[0]!.trunkVersion === null && !ms.some((m) => m.position === 0));
  if (wanting.length === 0) return new Map();
  const creates = await db
    .select({ entityId: entityVersions.entityId, changeId: entityVersions.changeId, version: entityVersions.version, action: entityVersions.action, deviceId: entityVersions.deviceId, dataset: datasets.name })
    .from(entityVersions)
    .innerJoin(entities, eq(entities.id, entityVersions.entityId))
    .innerJoin(datasets, eq(datasets.id, entities.datasetId))
    .where(and(inArray(entityVersions.entityId, [...new Set(wanting.map(([, ms]) => ms[0]!.entityId))]), eq(entityVersions.version, 1)));
  const byEntity = new Map(creates.map((c) => [c.entityId, c]));
  const out = new Map<string, Member>();
  for (const [key, ms] of wanting) {
    const run = ms[0]!;
    const create = byEntity.get(run.entityId);
    if (create && create.dataset === run.dataset && buildsOnEntityCreate(run, create)) {
      out.set(key, { ...run, position: 0, changeId: create.changeId, state: 'APPLIED', version: create.version, heldSince: null, deviceId: create.deviceId });
    }
  }
  return out;
}

/** Every member of the runs, with the creates they build on, grouped by run (id in dataset) in run order. */
async function runsWithCreates(db: Db, branchIds: readonly string[]): Promise<Map<string, Member[]>> {
  const runs = new Map<string, Member[]>();
  for (const m of await membersOf(db, branchIds)) {
    const key = keyOf({ id: m.branchId, dataset: m.dataset });
    runs.set(key, [...(runs.get(key) ?? []), m]);
  }
  for (const [key, create] of await runCreates(db, runs)) runs.set(key, [create, ...runs.get(key)!]);
  return runs;
}

/**
 * Runs by id, in the order asked (null where the server has none): each seen from the first dataset,
 * by name, that `visible` accepts (the datasets the caller may use), so the same id in a dataset it
 * may not use shows nothing of it.
 */
export async function branchesById(db: Db, ids: readonly string[], visible: (dataset: string) => boolean): Promise<(Branch | null)[]> {
  const members = (await membersOf(db, ids)).filter((m) => visible(m.dataset));
  return ids.map((id) => {
    const first = members.filter((m) => m.branchId === id).sort((a, b) => (a.dataset < b.dataset ? -1 : a.dataset > b.dataset ? 1 : 0))[0];
    return first ? { id, dataset: first.dataset, entityId: first.entityId, trunkVersion: first.trunkVersion } : null;
  });
}

/**
 * The runs that touched each entity, at most `limit` per entity, in the order they began (their
 * first change to reach the server), from one statement for all the entities. Only the runs of the
 * entity's own dataset: a held change that named it from another dataset is that dataset's.
 */
export async function branchesOfEntities(db: Db, entityIds: readonly string[], limit: number): Promise<Branch[][]> {
  if (entityIds.length === 0) return [];
  const rows = rowsOf(
    await db.execute(sql`
      select /* runsOfEntities */ entity_id, dataset, branch_id, trunk_version from (
        select m.entity_id, d.name as dataset, m.branch_id, min(m.trunk_version) as trunk_version,
               row_number() over (partition by m.entity_id order by min(m.at), m.branch_id) as n
          from (select entity_id, branch_id, trunk_version, created_at as at, null::text as held_in from ${entityVersions}
                  where entity_id = any(${sql.param([...entityIds])}::uuid[]) and branch_id is not null
                union all
                select entity_id, branch_id, trunk_version, held_since, dataset_name from ${heldChanges}
                  where entity_id = any(${sql.param([...entityIds])}::uuid[])) m
          join ${entities} e on e.id = m.entity_id join ${datasets} d on d.id = e.dataset_id
         where m.held_in is null or m.held_in = d.name
         group by m.entity_id, d.name, m.branch_id) r
       where n <= ${limit}
       order by entity_id, n`),
  );
  const byEntity = new Map<string, Branch[]>(entityIds.map((id) => [id, []]));
  for (const r of rows) {
    byEntity.get(r.entity_id as string)?.push({ id: r.branch_id as string, dataset: r.dataset as string, entityId: r.entity_id as string, trunkVersion: (r.trunk_version as number | null) ?? null });
  }
  return entityIds.map((id) => byEntity.get(id)!);
}

/** Each run's changes after position `after`, at most `limit`, in run order. */
export async function changesOfBranches(db: Db, branches: readonly Branch[], page: { after: number; limit: number }): Promise<BranchChange[][]> {
  const runs = await runsWithCreates(db, branches.map((b) => b.id));
  return branches.map((b) =>
    (runs.get(keyOf(b)) ?? [])
      .filter((m) => m.position > page.after)
      .slice(0, page.limit)
      .map(({ position, changeId, state, version, heldSince }) => ({ position, changeId, state, version, heldSince })),
  );
}

/** Each run's gaps: the positions between its start (its trunk, or 0) and its last change that the server has not received. */
export async function gapsOfBranches(db: Db, branches: readonly Branch[]): Promise<PositionRange[][]> {
  const runs = await runsWithCreates(db, branches.map((b) => b.id));
  return branches.map((b) => {
    const members = runs.get(keyOf(b)) ?? [];
    const gaps: PositionRange[] = [];
    let expected = members[0]?.trunkVersion ?? 0;
    for (const m of members) {
      if (m.position > expected) gaps.push({ from: expected, to: m.position - 1 });
      expected = Math.max(expected, m.position + 1);
    }
    return gaps;
  });
}
