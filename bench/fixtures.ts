/**
 * Set-up for the backlog and long-history phases (not timed): rows made by the real code once,
 * then cloned with fresh ids by plain SQL inserts, so thousands of held changes or versions exist
 * in seconds instead of the minutes it takes to submit them one transaction at a time.
 *
 * Cloning copies every column of what src/sync wrote (`select *`), swapping only ids, labels and
 * version numbers, so the clones stay whatever shape the schema and the sync code give them.
 */
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { diffStates } from '../src/core/diff.js';
import type { Db } from '../src/db/client.js';
import { flushBacklog } from '../src/sync/flush-backlog.js';
import { submitChanges } from '../src/sync/submit-changes.js';
import { updateData } from './lib.js';
import { DATASET, DEVICE } from './service.js';

type Row = Record<string, unknown>;

/** Serial keys the database numbers itself. */
const SERIAL = ['seq', 'receipt_id'];

/** Deep copy of a row value, with every string found in `ids` replaced. Dates stay dates. */
function swap<T>(v: T, ids: Map<string, string>): T {
  if (typeof v === 'string') return (ids.get(v) ?? v) as T;
  if (Array.isArray(v)) return v.map((x) => swap(x, ids)) as T;
  if (v && typeof v === 'object' && !(v instanceof Date)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swap(x, ids)])) as T;
  return v;
}

function cloneRow(row: Row, ids: Map<string, string>, fields: Row = {}): Row {
  const out = swap(row, ids);
  for (const k of SERIAL) delete out[k];
  return { ...out, ...fields };
}

async function insertRows(sql: postgres.Sql, table: string, rows: Row[], chunk = 1000): Promise<void> {
  for (let i = 0; i < rows.length; i += chunk) {
    const part = rows.slice(i, i + chunk);
    await sql`insert into ${sql(table)} ${sql(part as never)}`;
  }
}

async function submitOne(db: Db, change: Record<string, unknown>, expected: 'APPLIED' | 'HELD'): Promise<void> {
  const { results } = await submitChanges(db, [{ id: randomUUID(), deviceId: DEVICE, dataset: DATASET, ...change } as never]);
  if (results[0]?.outcome !== expected) throw new Error(`fixture: expected ${expected}, got ${JSON.stringify(results[0])}`);
}

/**
 * Held changes, each the second change of a two-change offline run on an existing entity
 * (version 1) whose first change never arrived: HELD, waiting for client baseVersion 1.
 * `make(count, prefix)` adds `count` such entities with one held change each, held 10 minutes.
 */
export async function heldChangeFactory(db: Db, sql: postgres.Sql) {
  const entityId = randomUUID();
  const branchId = randomUUID();
  await submitOne(db, { entityId, action: 'CREATE', label: 'held template', data: updateData(0) }, 'APPLIED');
  await submitOne(db, { entityId, action: 'UPDATE', branchId, trunkVersion: 1, baseVersion: 2, data: updateData(2) }, 'HELD');
  const [entity] = await sql<Row[]>`select * from entities where id = ${entityId}`;
  const versions = await sql<Row[]>`select * from entity_versions where entity_id = ${entityId}`;
  const log = await sql<Row[]>`select * from changes where entity_id = ${entityId}`;
  const held = await sql<Row[]>`select * from held_changes where entity_id = ${entityId}`;
  if (!entity || versions.length !== 1 || log.length !== 2 || held.length !== 1) throw new Error('fixture: unexpected held-change template');
  // The template itself is forced now, so the rounds see only clones (and it warms the code up).
  const { forced, listed } = await flushBacklog(db, { olderThanSeconds: 0, listed: 1 });
  if (forced !== 1 || listed[0]?.outcome !== 'APPLIED') throw new Error(`fixture: forcing the template gave ${JSON.stringify(listed)}`);
  const templateIds = [entityId, branchId, ...log.map((c) => c.change_id as string)];

  return async function make(count: number, prefix: string): Promise<string[]> {
    const rows: Record<'entities' | 'entity_versions' | 'changes' | 'held_changes', Row[]> = { entities: [], entity_versions: [], changes: [], held_changes: [] };
    const since = Date.now() - 600_000;
    const made: string[] = [];
    for (let i = 0; i < count; i++) {
      const ids = new Map<string, string>(templateIds.map((id) => [id, randomUUID()]));
      ids.set('held template', `${prefix} ${i}`);
      made.push(ids.get(entityId)!);
      rows.entities.push(cloneRow(entity, ids));
      rows.entity_versions.push(...versions.map((v) => cloneRow(v, ids)));
      rows.changes.push(...log.map((c) => cloneRow(c, ids)));
      rows.held_changes.push(...held.map((h) => cloneRow(h, ids, { held_since: new Date(since + i) })));
    }
    for (const table of ['entities', 'entity_versions', 'changes', 'held_changes'] as const) await insertRows(sql, table, rows[table]);
    return made;
  };
}

/**
 * An entity with `versions` versions: a create and versions-1 online in-order updates, as
 * submitChanges makes them (the first two are made by it, the rest cloned from the second).
 */
export async function entityWithHistory(db: Db, sql: postgres.Sql, versions: number, label: string): Promise<string> {
  const entityId = randomUUID();
  await submitOne(db, { entityId, action: 'CREATE', label, data: updateData(0) }, 'APPLIED');
  if (versions === 1) return entityId;
  await submitOne(db, { entityId, action: 'UPDATE', baseVersion: 1, data: updateData(1) }, 'APPLIED');
  const [v2] = await sql<Row[]>`select * from entity_versions where entity_id = ${entityId} and version = 2`;
  const [c2] = await sql<Row[]>`select * from changes where entity_id = ${entityId} and version = 2`;
  if (!v2 || !c2) throw new Error('fixture: unexpected history template');
  const vRows: Row[] = [];
  const cRows: Row[] = [];
  let state = { label, data: v2.data as Record<string, unknown> };
  for (let v = 3; v <= versions; v++) {
    const changeId = randomUUID();
    const ids = new Map([[c2.change_id as string, changeId]]);
    const set = updateData(v);
    const next = { label, data: { ...state.data, ...set } };
    const diff = diffStates(state as never, next as never);
    vRows.push(
      cloneRow(v2, ids, { version: v, applied_on: v - 1, base_version: v - 1, data: next.data, changed: set, server_diff: diff, base_diff: v2.base_diff === null ? null : diff }),
    );
    cRows.push(cloneRow(c2, ids, { version: v, payload: { ...(c2.payload as Row), id: changeId, baseVersion: v - 1, data: set } }));
    state = next;
  }
  await insertRows(sql, 'entity_versions', vRows);
  await insertRows(sql, 'changes', cRows);
  await sql`update entities set version = ${versions}, data = ${sql.json(state.data as never)}, updated_at = now() where id = ${entityId}`;
  return entityId;
}
