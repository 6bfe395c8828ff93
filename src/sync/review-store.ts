import { sql } from 'drizzle-orm';
import type { Principal } from '../core/auth.js';
import type { ResolutionKind, ReviewEntity, ReviewPlan } from '../core/review.js';
import type { SubsetRow } from '../core/subsets.js';
import type { Tx } from '../db/client.js';
import { rowsOf, withSubsetRows } from './batch-store.js';

/**
 * The statements of a review (sync/resolve-conflict.ts): what it decides on, loaded under the
 * entity locks in one statement, and what it writes, one statement per table, each named.
 */

/** jsonb and text[] come back parsed from both drivers; strings (some configurations) are parsed here. */
const parsed = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;
const textArray = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : typeof v === 'string' && v.length > 2 ? v.slice(1, -1).split(',').map((s) => s.replace(/^"(.*)"$/, '$1')) : []);

/** The entities a review names, with their dataset and open conflict, by id. */
export async function loadReviewEntities(tx: Tx, ids: readonly string[]): Promise<Map<string, ReviewEntity>> {
  if (ids.length === 0) return new Map();
  const rows = rowsOf<Record<string, unknown>>(
    await tx.execute(sql`
      select /* reviewEntities */ e.id, e.dataset_id, d.name as dataset_name, d.properties, e.label, e.data, e.version, e.conflict, e.deleted, o.versions, o.properties as open_properties
        from entities e
        join datasets d on d.id = e.dataset_id
        cross join lateral (
          select count(distinct v.version)::int as versions,
                 coalesce(jsonb_agg(distinct p.name collate "C" order by p.name collate "C") filter (where p.name is not null), '[]'::jsonb) as properties
            from entity_versions v left join lateral unnest(v.conflicting_properties) as p(name) on true
           where v.entity_id = e.id and v.conflict is not null and not v.resolved) o
       where e.id = any(${sql.param([...ids])}::uuid[])`),
  );
  return new Map(
    rows.map((r) => [
      r.id as string,
      {
        id: r.id as string,
        datasetId: r.dataset_id as string,
        datasetName: r.dataset_name as string,
        properties: textArray(r.properties),
        label: r.label as string,
        data: parsed(r.data),
        version: Number(r.version),
        conflict: (r.conflict as ReviewEntity['conflict']) ?? null,
        deleted: Boolean(r.deleted),
        openProperties: parsed<string[]>(r.open_properties),
        openVersions: Number(r.versions),
      },
    ]),
  );
}

/** The datasets of ids that have no entity but wait in the backlog (their create has not arrived): seen as their dataset's. */
export async function heldDatasets(tx: Tx, ids: readonly string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = rowsOf<{ entity_id: string; dataset_name: string }>(
    await tx.execute(sql`select /* heldDatasetsOf */ distinct on (entity_id) entity_id, dataset_name from held_changes where entity_id = any(${sql.param([...ids])}::uuid[]) order by entity_id`),
  );
  return new Map(rows.map((r) => [r.entity_id, r.dataset_name]));
}

/** Who the history names: the token's name, or "anonymous" for configured anonymous access. */
export async function reviewerOf(tx: Tx, principal: Principal): Promise<{ tokenId: string | null; name: string }> {
  if (principal.tokenId === null) return { tokenId: null, name: 'anonymous' };
  const [row] = rowsOf<{ name: string }>(await tx.execute(sql`select /* reviewerName */ name from api_tokens where id = ${principal.tokenId}::uuid`));
  return { tokenId: principal.tokenId, name: row?.name ?? 'unknown token' };
}

/** Ids for `n` resolutions, drawn at once, so the versions a review writes can name theirs. */
export async function newResolutionIds(tx: Tx, n: number): Promise<number[]> {
  if (n === 0) return [];
  const rows = rowsOf<{ id: unknown }>(await tx.execute(sql`select /* resolutionIds */ nextval(pg_get_serial_sequence('resolutions', 'id')) as id from generate_series(1, ${n}::int)`));
  return rows.map((r) => Number(r.id));
}

/** A decided review, with its resolution's id and what the resolution row records. */
export interface ReviewWrite {
  id: number;
  kind: ResolutionKind;
  entity: ReviewEntity;
  atVersion: number;
  plan: ReviewPlan;
  reviewer: { tokenId: string | null; name: string };
  note: string | null;
}

const json = (v: unknown) => JSON.stringify(v);

/**
 * Writes the reviews of one transaction: the resolution rows, the versions they write with the
 * subset log rows those cause (written as a batch's are, withSubsetRows), the conflicting versions
 * they resolve, and the entities' new state (the last one per entity). Sent together; the
 * connection runs them in this order.
 */
export async function writeReviews(tx: Tx, writes: readonly ReviewWrite[], subsetRows: readonly SubsetRow[]): Promise<void> {
  if (writes.length === 0) return;
  const statements: Promise<unknown>[] = [];
  statements.push(
    tx.execute(sql`
      insert into resolutions /* recordResolutions */ (id, entity_id, dataset_id, kind, at_version, version_written, conflict, conflicting_properties, conflicts_resolved, token_id, by_name, note)
      select id, entity_id, dataset_id, kind, at_version, version_written, conflict, array(select jsonb_array_elements_text(conflicting_properties)), conflicts_resolved, token_id, by_name, note
        from jsonb_to_recordset(${json(
          writes.map((w) => ({
            id: w.id, entity_id: w.entity.id, dataset_id: w.entity.datasetId, kind: w.kind, at_version: w.atVersion, version_written: w.plan.version?.version ?? null,
            conflict: w.plan.cleared.conflict, conflicting_properties: w.plan.cleared.conflictingProperties, conflicts_resolved: w.plan.cleared.versions,
            token_id: w.reviewer.tokenId, by_name: w.reviewer.name, note: w.note,
          })),
        )}::jsonb)
          as r(id bigint, entity_id uuid, dataset_id uuid, kind text, at_version int, version_written int, conflict text, conflicting_properties jsonb, conflicts_resolved int, token_id uuid, by_name text, note text)`),
  );
  const versions = writes.flatMap((w) => (w.plan.version ? [{ ...w.plan.version, resolutionId: w.id }] : []));
  if (versions.length > 0) {
    statements.push(
      tx.execute(
        withSubsetRows(
          sql`
        insert into entity_versions /* writeReviewVersions */ (entity_id, dataset_id, version, applied_on, base_version, action, label, data, changed, operations, deleted, conflict,
            conflicting_properties, source, branch_id, trunk_version, server_diff, base_diff, author_view_unavailable, change_id, device_id, resolution_id)
        select entity_id, dataset_id, version, applied_on, base_version, action, label, data, changed, '[]'::jsonb, deleted, null, '{}', source, null, null, server_diff, base_diff, null, change_id, null, resolution_id
          from jsonb_to_recordset(${json(
            versions.map((v, n) => ({ n, entity_id: v.entityId, dataset_id: v.datasetId, version: v.version, applied_on: v.appliedOn, base_version: v.baseVersion, action: v.action, label: v.label, data: v.data, changed: v.changed, deleted: v.deleted, source: v.source, server_diff: v.serverDiff, base_diff: v.baseDiff, change_id: v.changeId, resolution_id: v.resolutionId })),
          )}::jsonb)
            as r(n int, entity_id uuid, dataset_id uuid, version int, applied_on int, base_version int, action text, label text, data jsonb, changed jsonb, deleted boolean, source text, server_diff jsonb, base_diff jsonb, change_id text, resolution_id bigint)
         order by n`,
          subsetRows,
        ),
      ),
    );
  }
  const resolving = writes.filter((w) => w.plan.resolvesUpTo !== null);
  if (resolving.length > 0) {
    statements.push(
      tx.execute(sql`
        update entity_versions /* markResolved */ v set resolved = true, resolution_id = r.id
          from unnest(${sql.param(resolving.map((w) => w.entity.id))}::uuid[], ${sql.param(resolving.map((w) => w.plan.resolvesUpTo!))}::int[], ${sql.param(resolving.map((w) => w.id))}::bigint[]) as r(entity_id, up_to, id)
         where v.entity_id = r.entity_id and v.version <= r.up_to and v.conflict is not null and not v.resolved`),
    );
  }
  const last = new Map(writes.map((w) => [w.entity.id, w.plan.entity]));
  statements.push(
    tx.execute(sql`
      update entities /* reviewEntities */ e set label = r.label, data = r.data, version = r.version, conflict = r.conflict, deleted = r.deleted, updated_at = now(),
             last_conflict_at = case when r.conflict is not null then e.last_conflict_at end
        from jsonb_to_recordset(${json([...last].map(([id, s]) => ({ id, label: s.label, data: s.data, version: s.version, conflict: s.conflict, deleted: s.deleted })))}::jsonb)
          as r(id uuid, label text, data jsonb, version int, conflict text, deleted boolean)
       where e.id = r.id`),
  );
  await Promise.all(statements);
}
