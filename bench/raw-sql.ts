/**
 * The raw-SQL baseline: what one UPDATE change costs the database when written by hand with
 * the `postgres` driver, statement for statement what src/sync/submit-changes.ts does for an
 * in-order update: one transaction holding the change-id and entity-id advisory locks, the
 * change-log lookup, the dataset and entity reads, the entity update and the two inserts.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type postgres from 'postgres';

export const RAW_STEPS = ['advisory locks', 'select change log', 'select dataset', 'select entity', 'update entity', 'insert entity_versions', 'insert changes'] as const;

export interface RawUpdate {
  entityId: string;
  baseVersion: number;
  data: Record<string, unknown>;
}

export interface RawContext {
  sql: postgres.Sql;
  dataset: string;
  deviceId: string;
  /** Milliseconds spent in each of RAW_STEPS, plus 'begin/commit' (the rest), summed over changes. */
  stepMs: Map<string, number>;
}

type Json = postgres.JSONValue;

/** Applies one UPDATE change; returns the version it made. */
export async function rawUpdate(ctx: RawContext, u: RawUpdate): Promise<number> {
  const { dataset, deviceId } = ctx;
  const changeId = randomUUID();
  const payload = { id: changeId, deviceId, dataset, entityId: u.entityId, action: 'UPDATE', label: null, data: u.data, baseVersion: u.baseVersion, trunkVersion: null, branchId: null };
  const marks: number[] = [];
  const t0 = performance.now();
  const version = await ctx.sql.begin(async (tx) => {
    marks.push(performance.now());
    await tx`select pg_advisory_xact_lock(1, hashtext(${changeId})), pg_advisory_xact_lock(2, hashtext(${u.entityId}))`;
    marks.push(performance.now());
    const prior = await tx`select * from changes where change_id = ${changeId} and original limit 1`;
    if (prior.length > 0) throw new Error('raw baseline: change id seen before');
    marks.push(performance.now());
    const [ds] = await tx`select * from datasets where name = ${dataset} limit 1`;
    if (!ds) throw new Error('raw baseline: unknown dataset');
    const declared = ds.properties as string[];
    if (Object.keys(u.data).some((k) => !declared.includes(k))) throw new Error('raw baseline: undeclared property');
    marks.push(performance.now());
    const [entity] = await tx`select * from entities where id = ${u.entityId} limit 1`;
    if (!entity || entity.dataset_id !== ds.id || entity.deleted) throw new Error('raw baseline: entity missing');
    const current = entity.version as number;
    if (u.baseVersion > current) throw new Error('raw baseline: baseVersion ahead');
    if (u.baseVersion < current) throw new Error('raw baseline: the bench only makes in-order updates');
    marks.push(performance.now());
    const next = current + 1;
    const data = { ...(entity.data as Record<string, unknown>), ...u.data } as Json;
    const now = new Date();
    await tx`update entities set label = ${entity.label}, data = ${tx.json(data)}, version = ${next}, deleted = false,
      conflict = ${entity.conflict}, updated_at = ${now} where id = ${u.entityId}`;
    marks.push(performance.now());
    await tx`insert into entity_versions (entity_id, version, applied_on, base_version, action, label, data, changed, deleted,
      conflict, conflicting_properties, source, branch_id, trunk_version, change_id, device_id)
      values (${u.entityId}, ${next}, ${current}, ${u.baseVersion}, 'UPDATE', ${entity.label}, ${tx.json(data)}, ${tx.json(u.data as Json)}, false,
      null, ${tx.array([] as string[])}::text[], 'ONLINE', null, null, ${changeId}, ${deviceId})`;
    marks.push(performance.now());
    await tx`insert into changes (change_id, original, device_id, dataset_name, entity_id, action, payload, outcome, version, processed_at)
      values (${changeId}, true, ${deviceId}, ${dataset}, ${u.entityId}, 'UPDATE', ${tx.json(payload as Json)}, 'APPLIED', ${next}, ${now})`;
    marks.push(performance.now());
    return next;
  });
  const total = performance.now() - t0;
  let inSteps = 0;
  RAW_STEPS.forEach((step, i) => {
    const ms = marks[i + 1]! - marks[i]!;
    inSteps += ms;
    ctx.stepMs.set(step, (ctx.stepMs.get(step) ?? 0) + ms);
  });
  ctx.stepMs.set('begin/commit', (ctx.stepMs.get('begin/commit') ?? 0) + total - inSteps);
  return version;
}

export const RAW_FORCE_STEPS = ['advisory lock', 'delete held', 'select entity', 'update entity', 'insert entity_versions', 'update changes', 'release check'] as const;

/**
 * The raw-SQL forced flush: what DESIGN step 6 needs per held change when written by hand, for
 * the bench's held changes (second change of a run on an existing entity). Lists what is due,
 * oldest first, 200 at a time (like src/sync/flush-backlog.ts), then one transaction per change:
 * the entity's advisory lock, delete the held row (skip it if another flusher took it), read the
 * entity, write the entity and the FORCED version (flagged SOFT), mark the change log row
 * applied, and look for the held successor it releases. Returns the changes forced.
 */
export async function rawFlush(ctx: RawContext, stepMs: Map<string, number>): Promise<number> {
  const { sql } = ctx;
  const add = (step: string, ms: number) => stepMs.set(step, (stepMs.get(step) ?? 0) + ms);
  let forced = 0;
  const seen = new Set<string>();
  for (;;) {
    const t = performance.now();
    const due = await sql<{ change_id: string; entity_id: string }[]>`select change_id, entity_id from held_changes
      where held_since <= ${new Date()} order by held_since, change_id limit 200`;
    add('list due (amortised)', performance.now() - t);
    const fresh = due.filter((d) => !seen.has(d.change_id));
    if (fresh.length === 0) return forced;
    for (const d of fresh) {
      seen.add(d.change_id);
      const marks: number[] = [];
      const t0 = performance.now();
      const done = await sql.begin(async (tx) => {
        marks.push(performance.now());
        await tx`select pg_advisory_xact_lock(2, hashtext(${d.entity_id}))`;
        marks.push(performance.now());
        const [held] = await tx`delete from held_changes where change_id = ${d.change_id} returning *`;
        if (!held) return false;
        marks.push(performance.now());
        const [entity] = await tx`select * from entities where id = ${d.entity_id} limit 1`;
        if (!entity || entity.deleted) throw new Error('raw baseline: the bench only forces updates onto live entities');
        const change = held.change as { id: string; data: Record<string, unknown>; branchId: string; trunkVersion: number | null; deviceId: string | null };
        marks.push(performance.now());
        const current = entity.version as number;
        const next = current + 1;
        const data = { ...(entity.data as Record<string, unknown>), ...change.data } as Json;
        const now = new Date();
        const conflict = entity.conflict === 'HARD' ? 'HARD' : 'SOFT';
        await tx`update entities set data = ${tx.json(data)}, version = ${next}, conflict = ${conflict}, updated_at = ${now} where id = ${d.entity_id}`;
        marks.push(performance.now());
        await tx`insert into entity_versions (entity_id, version, applied_on, base_version, action, label, data, changed, deleted,
          conflict, conflicting_properties, source, branch_id, trunk_version, change_id, device_id)
          values (${d.entity_id}, ${next}, ${current}, ${held.base_version}, 'UPDATE', ${entity.label}, ${tx.json(data)}, ${tx.json(change.data as Json)}, false,
          'SOFT', ${tx.array([] as string[])}::text[], 'FORCED', ${held.branch_id}, ${held.trunk_version}, ${d.change_id}, ${held.device_id})`;
        marks.push(performance.now());
        await tx`update changes set outcome = 'APPLIED', version = ${next}, processed_at = ${now} where change_id = ${d.change_id} and original`;
        marks.push(performance.now());
        const successor = await tx`delete from held_changes where branch_id = ${held.branch_id} and base_version = ${(held.base_version as number) + 1} returning *`;
        if (successor.length > 0) throw new Error('raw baseline: the bench holds no successors');
        marks.push(performance.now());
        return true;
      });
      const total = performance.now() - t0;
      if (!done) continue;
      forced++;
      let inSteps = 0;
      RAW_FORCE_STEPS.forEach((step, i) => {
        const ms = marks[i + 1]! - marks[i]!;
        inSteps += ms;
        add(step, ms);
      });
      add('begin/commit', total - inSteps);
    }
  }
}
