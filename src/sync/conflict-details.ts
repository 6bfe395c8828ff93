import { sql } from 'drizzle-orm';
import { conflictDetails, MAX_DETAIL_VERSIONS, seenVersion, type ConflictDetail, type DetailRow, type OpenConflict } from '../core/conflict-details.js';
import type { PropertyValues } from '../core/types.js';
import type { Db } from '../db/client.js';
import { rowsOf } from './batch-store.js';

const parsed = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;
const textArray = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : typeof v === 'string' && v.length > 2 ? v.slice(1, -1).split(',').map((s) => s.replace(/^"(.*)"$/, '$1')) : []);

/**
 * The competing values of the open conflicts of a page of entities (Entity.conflictDetails), in
 * two statements whatever the page: their unresolved HARD versions and current state, then the
 * versions the details are drawn from (each entity's seen version and its newest versions after it).
 */
export async function conflictDetailsOf(db: Db, ids: readonly string[]): Promise<ConflictDetail[][]> {
  if (ids.length === 0) return [];
  const openRows = rowsOf<Record<string, unknown>>(
    await db.execute(sql`
      select /* openConflicts */ e.id, e.label, e.data, e.version as current, v.version, v.conflict, v.conflicting_properties, v.branch_id, v.trunk_version, v.base_version
        from entities e
        join entity_versions v on v.entity_id = e.id and v.conflict is not null and not v.resolved and cardinality(v.conflicting_properties) > 0
       where e.id = any(${sql.param([...ids])}::uuid[])
       order by e.id, v.version`),
  );
  const entities = new Map<string, { label: string; data: PropertyValues; version: number; open: OpenConflict[] }>();
  for (const r of openRows) {
    const id = r.id as string;
    const entity = entities.get(id) ?? { label: r.label as string, data: parsed<PropertyValues>(r.data), version: Number(r.current), open: [] };
    entity.open.push({
      version: Number(r.version),
      conflict: r.conflict as OpenConflict['conflict'],
      conflictingProperties: textArray(r.conflicting_properties),
      branchId: (r.branch_id as string | null) ?? null,
      trunkVersion: r.trunk_version == null ? null : Number(r.trunk_version),
      baseVersion: r.base_version == null ? null : Number(r.base_version),
    });
    entities.set(id, entity);
  }
  const seen = [...entities].map(([id, e]) => [id, Math.min(...e.open.map(seenVersion))] as const);
  const rows =
    seen.length === 0
      ? []
      : rowsOf<Record<string, unknown>>(
          await db.execute(sql`
            select /* conflictDetailVersions */ n.entity_id, v.version, v.label, v.data, v.changed, v.device_id, v.source, v.created_at
              from unnest(${sql.param(seen.map(([id]) => id))}::uuid[], ${sql.param(seen.map(([, s]) => s))}::int[]) as n(entity_id, seen)
              cross join lateral (
                (select * from entity_versions w where w.entity_id = n.entity_id and w.version = n.seen)
                union all
                (select * from entity_versions w where w.entity_id = n.entity_id and w.version > n.seen order by w.version desc limit ${MAX_DETAIL_VERSIONS})
              ) v
             order by n.entity_id, v.version`),
        );
  const history = new Map<string, DetailRow[]>();
  for (const r of rows) {
    const row: DetailRow = {
      version: Number(r.version),
      label: r.label as string,
      data: parsed(r.data),
      changed: parsed(r.changed),
      deviceId: (r.device_id as string | null) ?? null,
      source: r.source as DetailRow['source'],
      createdAt: new Date(r.created_at as string | Date),
    };
    history.set(r.entity_id as string, [...(history.get(r.entity_id as string) ?? []), row]);
  }
  return ids.map((id) => {
    const e = entities.get(id);
    return e ? conflictDetails(e, e.open, history.get(id) ?? []) : [];
  });
}
