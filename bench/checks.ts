/**
 * Checks the bench makes after its phases: that a baseline wrote the same rows as entity-sync
 * (same columns, same versions, outcomes and sources, the same shape of JSON), and that offline
 * runs all ended applied, with nothing held and every entity's versions dense.
 */
import { isDeepStrictEqual } from 'node:util';
import type postgres from 'postgres';

/** Columns that differ by nature between two writers of the same rows: ids, names, clocks. */
const VOLATILE = new Set(['seq', 'txid', 'receipt_id', 'created_at', 'updated_at', 'received_at', 'processed_at', 'id', 'entity_id', 'change_id', 'branch_id', 'device_id', 'dataset_id', 'label']);
/** Inside JSON, values kept as they are (the rest are named by their type). */
const KEEP = new Set(['property', 'action']);

function json(v: unknown, key: string): unknown {
  if (v === null) return null;
  if (Array.isArray(v)) return v.map((x) => json(x, key));
  if (typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, json((v as Record<string, unknown>)[k], k)]));
  return KEEP.has(key) ? v : typeof v;
}

/** A row with volatile columns named only by whether they are set, and JSON by its keys and the types of its values. */
function shape(row: Record<string, unknown> | undefined): unknown {
  if (!row) return null;
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [k, v === null ? null : VOLATILE.has(k) ? 'set' : v instanceof Date ? 'date' : typeof v === 'object' ? json(v, k) : v]),
  );
}

async function rowsOf(sql: postgres.Sql, entityId: string) {
  const [entity] = await sql`select * from entities where id = ${entityId}`;
  const versions = await sql`select * from entity_versions where entity_id = ${entityId} order by version`;
  const changes = await sql`select * from changes where entity_id = ${entityId} order by version, receipt_id`;
  return { entity: shape(entity), versions: versions.map((r) => shape(r)), changes: changes.map((r) => shape(r)) };
}

/** Throws unless the two entities' rows (entity, versions, change log) are the same but for ids and clocks. */
export async function sameRows(sql: postgres.Sql, what: string, esEntity: string, baselineEntity: string): Promise<void> {
  const [a, b] = [await rowsOf(sql, esEntity), await rowsOf(sql, baselineEntity)];
  if (isDeepStrictEqual(a, b)) return;
  const first = (['entity', 'versions', 'changes'] as const).find((k) => !isDeepStrictEqual(a[k], b[k]))!;
  throw new Error(`${what}: the baseline's ${first} rows differ from entity-sync's:\n  entity-sync ${JSON.stringify(a[first])}\n  baseline    ${JSON.stringify(b[first])}`);
}

/**
 * Every change of these runs' entities applied (the change log agrees with the versions), none
 * held, each entity's versions 1..n without a gap, and `expected` versions in all.
 */
export async function runsLanded(sql: postgres.Sql, what: string, entityIds: readonly string[], expected: number): Promise<void> {
  const ids = [...entityIds];
  const [r] = await sql<{ held: number; unapplied: number; gaps: number; versions: number }[]>`select
    (select count(*)::int from held_changes where entity_id = any(${ids}::uuid[])) as held,
    (select count(*)::int from changes c left join entity_versions v on v.change_id = c.change_id and v.entity_id = c.entity_id and v.version = c.version
      where c.entity_id = any(${ids}::uuid[]) and c.original and (c.outcome <> 'APPLIED' or v.seq is null)) as unapplied,
    (select count(*)::int from (select entity_id from entity_versions where entity_id = any(${ids}::uuid[]) group by entity_id
      having count(*) <> max(version) or min(version) <> 1 or count(distinct version) <> count(*)) g) as gaps,
    (select count(*)::int from entity_versions where entity_id = any(${ids}::uuid[])) as versions`;
  if (r!.held !== 0 || r!.unapplied !== 0 || r!.gaps !== 0 || r!.versions !== expected) {
    throw new Error(`${what}: expected every run applied, nothing held, versions dense and ${expected} versions; found ${JSON.stringify(r)}`);
  }
}
