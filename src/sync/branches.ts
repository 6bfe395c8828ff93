import { and, eq, inArray, sql } from 'drizzle-orm';
import { buildsOnEntityCreate } from '../core/placement.js';
import { heldChanges } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { entityVersions } from '../db/entities.js';

/**
 * Offline runs as the dashboard and reviewers read them (DESIGN "Processing a change"). Every
 * read here is one statement for a whole page of parents (entities or runs), and every list is
 * paged or bounded: a run has at most Limits.maxRunLength positions, and its gaps are ranges.
 */

export interface Branch {
  id: string;
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
  entityId: string;
  trunkVersion: number | null;
}

/** The applied and held changes of some runs, in run order, from one statement. */
async function membersOf(db: Db, branchIds: readonly string[]): Promise<Member[]> {
  if (branchIds.length === 0) return [];
  const rows = (await db.execute(sql`
    select /* runMembers */ branch_id, entity_id, trunk_version, coalesce(base_version, 0) as position, change_id, 'APPLIED' as state, version, null::timestamptz as held_since
      from ${entityVersions} where branch_id = any(${sql.param([...branchIds])}::uuid[])
    union all
    select branch_id, entity_id, trunk_version, base_version, change_id, 'HELD', null, held_since
      from ${heldChanges} where branch_id = any(${sql.param([...branchIds])}::uuid[])
    order by 1, 4`)) as unknown;
  return rowsOf(rows).map((r) => ({
    branchId: r.branch_id as string,
    entityId: r.entity_id as string,
    trunkVersion: (r.trunk_version as number | null) ?? null,
    position: Number(r.position),
    changeId: r.change_id as string,
    state: r.state as 'APPLIED' | 'HELD',
    version: r.version == null ? null : Number(r.version),
    heldSince: r.held_since == null ? null : new Date(r.held_since as string),
  }));
}

/** postgres.js answers rows as an array, PGlite as `{ rows }`. */
function rowsOf(result: unknown): Record<string, unknown>[] {
  return Array.isArray(result) ? (result as Record<string, unknown>[]) : ((result as { rows: Record<string, unknown>[] }).rows ?? []);
}

/**
 * The entity creates that runs which began offline build on (core buildsOnEntityCreate): a create
 * sent without the run's branchId is still the run's position 0.
 */
async function runCreates(db: Db, members: readonly Member[]): Promise<Map<string, Member>> {
  const byBranch = new Map<string, Member[]>();
  for (const m of members) byBranch.set(m.branchId, [...(byBranch.get(m.branchId) ?? []), m]);
  const wanting = [...byBranch.entries()].filter(([, ms]) => ms[0]!.trunkVersion === null && !ms.some((m) => m.position === 0));
  if (wanting.length === 0) return new Map();
  const creates = await db
    .select({ entityId: entityVersions.entityId, changeId: entityVersions.changeId, version: entityVersions.version, action: entityVersions.action })
    .from(entityVersions)
    .where(and(inArray(entityVersions.entityId, [...new Set(wanting.map(([, ms]) => ms[0]!.entityId))]), eq(entityVersions.version, 1)));
  const byEntity = new Map(creates.map((c) => [c.entityId, c]));
  const out = new Map<string, Member>();
  for (const [branchId, ms] of wanting) {
    const create = byEntity.get(ms[0]!.entityId);
    if (create && buildsOnEntityCreate(null, create)) {
      out.set(branchId, { branchId, entityId: create.entityId, trunkVersion: null, position: 0, changeId: create.changeId, state: 'APPLIED', version: create.version, heldSince: null });
    }
  }
  return out;
}

/** Every member of the runs, with the creates they build on, grouped by run in run order. */
async function runsWithCreates(db: Db, branchIds: readonly string[]): Promise<Map<string, Member[]>> {
  const members = await membersOf(db, branchIds);
  const creates = await runCreates(db, members);
  const out = new Map<string, Member[]>(branchIds.map((id) => [id, []]));
  for (const [id, create] of creates) out.get(id)?.push(create);
  for (const m of members) out.get(m.branchId)?.push(m);
  return out;
}

/** Runs by id, in the order asked (null where the server has none). */
export async function branchesById(db: Db, ids: readonly string[]): Promise<(Branch | null)[]> {
  const runs = await runsWithCreates(db, ids);
  return ids.map((id) => {
    const first = runs.get(id)?.find((m) => m.branchId === id);
    return first ? { id, entityId: first.entityId, trunkVersion: first.trunkVersion } : null;
  });
}

/**
 * The runs that touched each entity, at most `limit` per entity, in the order they began (their
 * first change to reach the server), from one statement for all the entities.
 */
export async function branchesOfEntities(db: Db, entityIds: readonly string[], limit: number): Promise<Branch[][]> {
  if (entityIds.length === 0) return [];
  const rows = rowsOf(
    await db.execute(sql`
      select /* runsOfEntities */ entity_id, branch_id, trunk_version from (
        select entity_id, branch_id, min(trunk_version) as trunk_version,
               row_number() over (partition by entity_id order by min(at), branch_id) as n
          from (select entity_id, branch_id, trunk_version, created_at as at from ${entityVersions}
                  where entity_id = any(${sql.param([...entityIds])}::uuid[]) and branch_id is not null
                union all
                select entity_id, branch_id, trunk_version, held_since from ${heldChanges}
                  where entity_id = any(${sql.param([...entityIds])}::uuid[])) m
         group by entity_id, branch_id) r
       where n <= ${limit}
       order by entity_id, n`),
  );
  const byEntity = new Map<string, Branch[]>(entityIds.map((id) => [id, []]));
  for (const r of rows) byEntity.get(r.entity_id as string)?.push({ id: r.branch_id as string, entityId: r.entity_id as string, trunkVersion: (r.trunk_version as number | null) ?? null });
  return entityIds.map((id) => byEntity.get(id)!);
}

/** Each run's changes after position `after`, at most `limit`, in run order. */
export async function changesOfBranches(db: Db, branchIds: readonly string[], page: { after: number; limit: number }): Promise<BranchChange[][]> {
  const runs = await runsWithCreates(db, branchIds);
  return branchIds.map((id) =>
    (runs.get(id) ?? [])
      .filter((m) => m.position > page.after)
      .slice(0, page.limit)
      .map(({ position, changeId, state, version, heldSince }) => ({ position, changeId, state, version, heldSince })),
  );
}

/** Each run's gaps: the positions between its start (its trunk, or 0) and its last change that the server has not received. */
export async function gapsOfBranches(db: Db, branchIds: readonly string[]): Promise<PositionRange[][]> {
  const runs = await runsWithCreates(db, branchIds);
  return branchIds.map((id) => {
    const members = runs.get(id) ?? [];
    const gaps: PositionRange[] = [];
    let expected = members[0]?.trunkVersion ?? 0;
    for (const m of members) {
      if (m.position > expected) gaps.push({ from: expected, to: m.position - 1 });
      expected = Math.max(expected, m.position + 1);
    }
    return gaps;
  });
}
