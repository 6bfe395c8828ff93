/**
 * The per-change raw-SQL baseline: what one UPDATE change costs the database when written by hand
 * with the `postgres` driver, one transaction per change, statement for statement what
 * src/sync/submit-changes.ts did for an in-order update before issue 13: the change-id and
 * entity-id advisory locks, the change-log lookup, the dataset and entity reads, the entity
 * update and the two inserts. The batch phase's second baseline (the first is set-based:
 * bench/set-sql.ts), and the single-update baseline of the history and load phases.
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
    await tx`insert into entity_versions (entity_id, dataset_id, version, applied_on, base_version, action, label, data, changed, deleted,
      conflict, conflicting_properties, source, branch_id, trunk_version, change_id, device_id)
      values (${u.entityId}, ${entity.dataset_id}, ${next}, ${current}, ${u.baseVersion}, 'UPDATE', ${entity.label}, ${tx.json(data)}, ${tx.json(u.data as Json)}, false,
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
