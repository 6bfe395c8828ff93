import { and, asc, eq, gt, isNotNull, isNull } from 'drizzle-orm';
import { touchedProperties, tryApplyChange } from '../core/apply.js';
import { judgeConflict, strongestConflict } from '../core/conflict.js';
import { diffStates } from '../core/diff.js';
import { changeError } from '../core/errors.js';
import {
  adoptRun,
  appliedOnVersion,
  authorView,
  beneathLaterChanges,
  checkBranch,
  placeChange,
  runPosition,
  seenUpTo,
  unseenVersions,
  withRunCreate,
  type BranchFacts,
  type EntityOrigin,
} from '../core/placement.js';
import type { ChangeError, ChangeOutcome, ConflictType, EntityState, ValidChange, VersionSource } from '../core/types.js';
import { undeclaredProperties } from '../core/validate.js';
import { changes, isOriginal, heldChanges } from '../db/changes.js';
import type { Tx } from '../db/client.js';
import { datasets } from '../db/datasets.js';
import { entities, entityVersions } from '../db/entities.js';
import type { SyncEvent } from '../core/events.js';
import { localBranchId } from './local-ids.js';

/** Label of an entity made by a forced update whose run's create never arrived. */
export const UNKNOWN_LABEL = '(label unknown)';

export interface ChangeResult {
  changeId: string;
  outcome: ChangeOutcome;
  /** For a DUPLICATE: what the first submission of this change came to (as it stands now). */
  originalOutcome: ChangeOutcome | null;
  entityId: string | null;
  version: number | null;
  conflict: ConflictType | null;
  conflictingProperties: string[];
  /** The client's local id, echoed beside the entityId the server minted for it. */
  localId?: string | null;
  /** For HELD: the client baseVersion of the predecessor it waits for. */
  waitsFor: number | null;
  error: ChangeError | null;
  /** Held changes of the same run applied right after this one, in order. */
  released: ChangeResult[];
}

export interface Processed {
  result: ChangeResult;
  events: SyncEvent[];
}

export function changeResult(changeId: string, outcome: ChangeOutcome, fields: Partial<ChangeResult> = {}): ChangeResult {
  return { changeId, outcome, originalOutcome: null, entityId: null, version: null, conflict: null, conflictingProperties: [], waitsFor: null, error: null, released: [], ...fields };
}

type ChangeRecord = Omit<typeof changes.$inferInsert, 'outcome'>;
export type DatasetCache = Map<string, typeof datasets.$inferSelect>;
type EntityRow = typeof entities.$inferSelect;

export async function loadBranch(tx: Tx, branchId: string): Promise<BranchFacts> {
  const [applied, held] = await Promise.all([
    tx
      .select({
        entityId: entityVersions.entityId,
        version: entityVersions.version,
        baseVersion: entityVersions.baseVersion,
        trunkVersion: entityVersions.trunkVersion,
        conflict: entityVersions.conflict,
        source: entityVersions.source,
        changed: entityVersions.changed,
      })
      .from(entityVersions)
      .where(eq(entityVersions.branchId, branchId)),
    tx
      .select({ entityId: heldChanges.entityId, baseVersion: heldChanges.baseVersion, trunkVersion: heldChanges.trunkVersion, changeId: heldChanges.changeId })
      .from(heldChanges)
      .where(eq(heldChanges.branchId, branchId)),
  ]);
  return { applied: applied.map((v) => ({ ...v, baseVersion: v.baseVersion ?? 0 })), held };
}

/** The version that made the entity (version 1): what a run that began offline builds on. */
async function loadOrigin(tx: Tx, entityId: string): Promise<EntityOrigin | null> {
  const [row] = await tx
    .select({ version: entityVersions.version, action: entityVersions.action, source: entityVersions.source, branchId: entityVersions.branchId, conflict: entityVersions.conflict, changed: entityVersions.changed })
    .from(entityVersions)
    .where(and(eq(entityVersions.entityId, entityId), eq(entityVersions.version, 1)))
    .limit(1);
  return row ?? null;
}

/** What the server knows of a change's run, its entity's create included for a run that began offline (core withRunCreate). */
async function loadRun(tx: Tx, change: ValidChange, entityExists: boolean): Promise<BranchFacts | null> {
  if (!change.branchId) return null;
  const branch = await loadBranch(tx, change.branchId);
  return change.trunkVersion === null && entityExists ? withRunCreate(change, branch, await loadOrigin(tx, change.entityId)) : branch;
}

/**
 * Ids of the entity's runs that began with an offline create (trunkVersion null), oldest first.
 * Held ones only of this dataset: a change elsewhere naming the id must not make a run of it.
 */
async function runsBeganOffline(tx: Tx, entityId: string, datasetName: string): Promise<string[]> {
  const [applied, held] = await Promise.all([
    tx
      .select({ branchId: entityVersions.branchId })
      .from(entityVersions)
      .where(and(eq(entityVersions.entityId, entityId), isNull(entityVersions.trunkVersion), isNotNull(entityVersions.branchId)))
      .orderBy(asc(entityVersions.version)),
    tx
      .select({ branchId: heldChanges.branchId })
      .from(heldChanges)
      .where(and(eq(heldChanges.entityId, entityId), eq(heldChanges.datasetName, datasetName), isNull(heldChanges.trunkVersion)))
      .orderBy(asc(heldChanges.heldSince), asc(heldChanges.changeId)),
  ]);
  return [...new Set([...applied, ...held].map((r) => r.branchId!))];
}

function stateOf(e: EntityRow | undefined): EntityState | null {
  return e ? { label: e.label, data: e.data, version: e.version, deleted: e.deleted } : null;
}

/**
 * Places a new change (entity lock held): rejects, holds, or applies it and releases the held
 * successors of its run (DESIGN steps 2 to 5). Records the change with its outcome.
 */
export async function placeNewChange(tx: Tx, record: ChangeRecord, received: ValidChange, datasetsSeen: DatasetCache = new Map()): Promise<Processed> {
  let change = received;
  const reject = async (error: ChangeError): Promise<Processed> => {
    await tx.insert(changes).values({ ...record, outcome: 'REJECTED', errorCode: error.code, errorMessage: error.message, processedAt: new Date() });
    return { result: changeResult(change.id, 'REJECTED', { entityId: change.entityId, error }), events: [] };
  };
  const dataset = datasetsSeen.get(change.dataset) ?? (await tx.select().from(datasets).where(eq(datasets.name, change.dataset)).limit(1))[0];
  if (dataset) datasetsSeen.set(dataset.name, dataset);
  if (!dataset) return reject(changeError('UNKNOWN_DATASET', `"${change.dataset}"`));
  const undeclared = undeclaredProperties(change.data, dataset.properties, change.operations);
  if (undeclared.length > 0) return reject(changeError('UNKNOWN_PROPERTY', undeclared.join(', ')));

  let [entity] = await tx.select().from(entities).where(eq(entities.id, change.entityId)).limit(1);
  if (entity && entity.datasetId !== dataset.id) {
    // Seen from this dataset, an entity of another does not exist (its id cannot be probed); a
    // create cannot take its id, as with any id in use.
    if (change.action === 'CREATE') return reject(changeError('ENTITY_EXISTS', change.entityId));
    entity = undefined;
  }
  // A local-id entity not on the server yet (or a change counted past it) without a run of
  // its own joins the device's implicit run for that local id, so it can be held and released.
  // Once its create went through that run, later local-id changes without a run stay in it.
  if (change.localId && change.deviceId && !change.branchId) {
    const implicit = localBranchId(change.entityId);
    const joins =
      !entity ||
      change.action === 'CREATE' ||
      (change.baseVersion ?? 0) > entity.version ||
      (await loadBranch(tx, implicit)).applied.some((v) => v.entityId === entity.id);
    if (joins) change = { ...change, branchId: implicit, trunkVersion: null };
  }
  // A create naming no run may be the create of a run the server already has (ODK Collect).
  if (change.action === 'CREATE' && !change.branchId) {
    change = adoptRun(change, entity ? await loadOrigin(tx, change.entityId) : null, await runsBeganOffline(tx, change.entityId, dataset.name));
  }
  const branch = await loadRun(tx, change, entity !== undefined);
  const inconsistent = branch ? checkBranch(change, branch) : null;
  if (inconsistent) return reject(inconsistent);

  const placement = placeChange(change, stateOf(entity), branch);
  if (placement.kind === 'reject') return reject(placement.error);
  if (placement.kind === 'hold') {
    await tx.insert(heldChanges).values({
      changeId: change.id,
      entityId: change.entityId,
      datasetName: dataset.name,
      deviceId: change.deviceId,
      branchId: change.branchId!,
      trunkVersion: change.trunkVersion,
      baseVersion: runPosition(change),
      waitsFor: placement.waitsFor,
      change,
    });
    await tx.insert(changes).values({ ...record, outcome: 'HELD', processedAt: new Date() });
    return {
      result: changeResult(change.id, 'HELD', { entityId: change.entityId, waitsFor: placement.waitsFor }),
      events: [{ type: 'changeHeld', datasetName: dataset.name, entityId: change.entityId, changeId: change.id, branchId: change.branchId!, waitsFor: placement.waitsFor }],
    };
  }
  const source: VersionSource = change.branchId ? 'IN_ORDER' : 'ONLINE';
  const applied = await applyVersion(tx, { change, source, asUpdate: placement.asUpdate, entity: entity ?? null, datasetId: dataset.id, datasetName: dataset.name, branch, record });
  if (applied.error) return reject(applied.error);
  const released = await releaseChain(tx, change, applied.entity, dataset.name);
  applied.result.released = released.results;
  return { result: applied.result, events: [...applied.events, ...released.events] };
}

interface ApplyArgs {
  change: ValidChange;
  source: VersionSource;
  asUpdate: boolean;
  entity: EntityRow | null;
  datasetId: string;
  datasetName: string;
  branch: BranchFacts | null;
  /** A change arriving now is recorded here; a held one already has its change log row. */
  record?: ChangeRecord;
}

/**
 * Writes the next version (DESIGN steps 3 and 4) and marks the change log row applied.
 * The change's values go on top of the current state; conflicts compare what it touches with
 * what unseen versions (after the author's trunk, not of its own run) set.
 */
export async function applyVersion(tx: Tx, a: ApplyArgs): Promise<(Processed & { entity: EntityRow; error?: undefined }) | { error: ChangeError }> {
  const { change, entity, branch } = a;
  const { change: effective, beneath } = beneathLaterChanges(change, branch);
  const after = seenUpTo(change, a.asUpdate);
  // Nothing after what the author saw (the common in-order case): no history to read.
  const laterVersions = entity && after < entity.version
    ? await tx
        .select({ version: entityVersions.version, branchId: entityVersions.branchId, changed: entityVersions.changed, label: entityVersions.label, data: entityVersions.data })
        .from(entityVersions)
        .where(and(eq(entityVersions.entityId, change.entityId), gt(entityVersions.version, Math.max(0, after - 1))))
        .orderBy(asc(entityVersions.version))
    : [];

  const current = stateOf(entity ?? undefined);
  // A forced update may make its entity: it takes the change's label, else a fixed one.
  const toApply: ValidChange = { ...effective, action: a.asUpdate ? 'UPDATE' : effective.action };
  const tried = tryApplyChange(current, toApply, UNKNOWN_LABEL);
  if (!tried.ok) return { error: tried.error };
  const next = tried.applied;
  const version = (entity?.version ?? 0) + 1;

  const unseen = unseenVersions(change, a.asUpdate, branch, laterVersions);
  const verdict = judgeConflict(touchedProperties(change), next.changed, unseen.map((v) => v.changed));
  // Forced or applied beneath a later change: flagged at least SOFT so a reviewer sees it.
  const conflict = a.source === 'FORCED' || beneath ? strongestConflict(verdict.conflict, 'SOFT') : verdict.conflict;

  const view = authorView(change, a.source, a.asUpdate, branch);
  let baseDiff = null;
  if (view.kind === 'version') {
    const seen =
      view.version === 0 ? null : view.version === entity?.version ? current : (laterVersions.find((v) => v.version === view.version) ?? (await loadState(tx, change.entityId, view.version)));
    const seenState = seen ? { label: seen.label, data: seen.data, version: view.version, deleted: false } : null;
    const made = tryApplyChange(seenState, { ...change, action: seenState && change.action === 'CREATE' ? 'UPDATE' : change.action }, UNKNOWN_LABEL);
    // Operations that do not fit what the author saw: no honest author diff to show.
    baseDiff = made.ok ? diffStates(seenState, made.applied) : null;
  }
  const now = new Date();
  const [row] = entity
    ? await tx
        .update(entities)
        .set({ label: next.label, data: next.data, version, deleted: next.deleted, conflict: strongestConflict(entity.conflict, conflict), updatedAt: now })
        .where(eq(entities.id, change.entityId))
        .returning()
    : await tx.insert(entities).values({ id: change.entityId, datasetId: a.datasetId, label: next.label, data: next.data, version, conflict }).returning();
  await tx.insert(entityVersions).values({
    entityId: change.entityId,
    version,
    appliedOn: appliedOnVersion(change, a.asUpdate, branch),
    baseVersion: change.branchId ? runPosition(change) : change.baseVersion,
    action: a.asUpdate ? 'UPDATE' : change.action,
    label: next.label,
    data: next.data,
    changed: next.changed,
    operations: change.operations ?? [],
    deleted: next.deleted,
    conflict,
    conflictingProperties: verdict.conflictingProperties,
    source: a.source,
    branchId: change.branchId,
    trunkVersion: change.trunkVersion,
    serverDiff: diffStates(current, next),
    baseDiff,
    authorViewUnavailable: view.kind === 'unavailable' ? view.reason : null,
    changeId: change.id,
    deviceId: change.deviceId,
  });
  if (a.record) await tx.insert(changes).values({ ...a.record, outcome: 'APPLIED', version, processedAt: now });
  else await tx.update(changes).set({ outcome: 'APPLIED', version, processedAt: now }).where(and(eq(changes.changeId, change.id), isOriginal));

  const events: SyncEvent[] = [{ type: 'entityChanged', datasetName: a.datasetName, entityId: change.entityId, version }];
  if (conflict) events.push({ type: 'conflictDetected', datasetName: a.datasetName, entityId: change.entityId, version, conflict, conflictingProperties: verdict.conflictingProperties });
  return {
    entity: row!,
    result: changeResult(change.id, 'APPLIED', { entityId: change.entityId, version, conflict, conflictingProperties: verdict.conflictingProperties }),
    events,
  };
}

async function loadState(tx: Tx, entityId: string, version: number): Promise<EntityState | null> {
  const [v] = await tx
    .select({ label: entityVersions.label, data: entityVersions.data, deleted: entityVersions.deleted })
    .from(entityVersions)
    .where(and(eq(entityVersions.entityId, entityId), eq(entityVersions.version, version)))
    .limit(1);
  return v ? { ...v, version } : null;
}

type HeldRow = typeof heldChanges.$inferSelect;

/**
 * Applies a held change taken out of the backlog (released or forced), unless the entity
 * has since become something it cannot apply to: then it ends REJECTED, and says so in the
 * change log. Never applied across datasets, never onto a deleted entity.
 */
export async function applyHeldChange(
  tx: Tx,
  held: HeldRow,
  source: 'RELEASED' | 'FORCED',
  entity: EntityRow | null,
): Promise<{ result: ChangeResult; events: SyncEvent[]; entity: EntityRow | null }> {
  const [dataset] = await tx.select({ id: datasets.id, name: datasets.name }).from(datasets).where(eq(datasets.name, held.datasetName)).limit(1);
  const c = held.change;
  let refusal: ChangeError | null = null;
  if (!dataset) refusal = changeError('UNKNOWN_DATASET', held.datasetName);
  // The entity it would make or change exists in another dataset: its id is taken.
  else if (entity && entity.datasetId !== dataset.id) refusal = changeError('ENTITY_EXISTS', c.entityId);
  else if (entity?.deleted) refusal = changeError('ENTITY_DELETED', c.entityId);
  else if (!entity && c.action === 'DELETE') refusal = changeError('ENTITY_NOT_FOUND', c.entityId);
  const applied = refusal
    ? { error: refusal }
    : await applyVersion(tx, { change: c, source, asUpdate: false, entity, datasetId: dataset!.id, datasetName: dataset!.name, branch: await loadRun(tx, c, entity !== null) });
  if (applied.error) {
    await tx
      .update(changes)
      .set({ outcome: 'REJECTED', errorCode: applied.error.code, errorMessage: applied.error.message, processedAt: new Date() })
      .where(and(eq(changes.changeId, held.changeId), isOriginal));
    return { result: changeResult(held.changeId, 'REJECTED', { entityId: c.entityId, error: applied.error }), events: [], entity };
  }
  return { result: applied.result, events: applied.events, entity: applied.entity };
}

/** DESIGN step 5: after a change of run B at position k lands, land B's held k+1, k+2, … until one is missing or refused. */
export async function releaseChain(tx: Tx, after: ValidChange, entity: EntityRow, datasetName: string): Promise<{ results: ChangeResult[]; events: SyncEvent[] }> {
  const results: ChangeResult[] = [];
  const events: SyncEvent[] = [];
  if (!after.branchId) return { results, events };
  let position = runPosition(after);
  let current: EntityRow | null = entity;
  for (;;) {
    const [held] = await tx
      .delete(heldChanges)
      .where(and(eq(heldChanges.branchId, after.branchId), eq(heldChanges.baseVersion, position + 1)))
      .returning();
    if (!held) break;
    const r = await applyHeldChange(tx, held, 'RELEASED', current);
    results.push(r.result);
    events.push(...r.events);
    if (r.result.outcome !== 'APPLIED') break;
    current = r.entity;
    position += 1;
  }
  const applied = results.filter((r) => r.outcome === 'APPLIED');
  if (applied.length > 0) {
    events.push({ type: 'backlogFlushed', reason: 'RELEASED', datasetName, entityId: entity.id, changes: applied.map((r) => ({ changeId: r.changeId, version: r.version! })) });
  }
  return { results, events };
}
