import { touchedProperties, tryApplyChange } from './apply.js';
import type { BatchChange, BatchFacts, ChangeLogRecord, DatasetRecord, EntityRecord, HeldRecord, HistoryRow, PriorRecord, RunMember, SubsetRow, VersionRecord } from './batch-facts.js';
import { judgeConflict, strongestConflict } from './conflict.js';
import { diffStates } from './diff.js';
import { changeError } from './errors.js';
import type { SyncEvent } from './events.js';
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
} from './placement.js';
import { changeResult, type ChangeResult } from './results.js';
import { inSubset, versionMoves, type Subset } from './subsets.js';
import type { ChangeError, ChangeOutcome, EntityState, ErrorCode, PropertyValues, ValidChange, VersionSource } from './types.js';
import { samePayload, undeclaredProperties } from './validate.js';

/** Label of an entity made by a forced update whose run's create never arrived. */
export const UNKNOWN_LABEL = '(label unknown)';

/** A change log row as the plan writes it: new, with its final outcome. */
export interface ChangeRow extends ChangeLogRecord {
  original: boolean;
  outcome: ChangeOutcome;
  version: number | null;
  errorCode: ErrorCode | null;
  errorMessage: string | null;
}

/** The outcome of a change log row already stored (a held change released, forced or refused). */
export interface OutcomeUpdate {
  changeId: string;
  outcome: ChangeOutcome;
  version: number | null;
  errorCode: ErrorCode | null;
  errorMessage: string | null;
}

/** Everything a batch writes, net of what it wrote and took back within itself. */
export interface BatchWrites {
  changes: ChangeRow[];
  outcomes: OutcomeUpdate[];
  heldInserted: HeldRecord[];
  heldDeleted: string[];
  /** Final state of each entity the batch made or changed. */
  entities: EntityRecord[];
  /** In the order made (commit order for pulls). */
  versions: VersionRecord[];
  /** Rows of subset tokens' logs the versions cause, in the order made. */
  subsetRows: SubsetRow[];
}

export interface BatchPlan {
  /** One per change, in input order (for a flush: one per forced change). */
  results: ChangeResult[];
  writes: BatchWrites;
  /** To publish after commit, in the order they happened. */
  events: SyncEvent[];
}

/**
 * DESIGN "Processing a change", for a whole batch at once: each change in input order, against
 * the state the changes before it left (two changes to one entity in one batch see each other),
 * with release chains. Pure: `facts` is what src/sync loaded under the batch's locks.
 */
export function planBatch(changes: readonly BatchChange[], facts: BatchFacts): BatchPlan {
  const p = new Planner(facts);
  const results = changes.map((c) => {
    const r = p.decide(c);
    r.dataset = c.record.datasetName;
    if (c.localId !== null) r.localId = c.localId;
    return r;
  });
  return { results, writes: p.writes(), events: p.events };
}

/**
 * DESIGN step 6 for held changes taken out of the backlog by the flush, oldest first: each applied
 * on top of its entity's current version, then its run's successors released. A change released by
 * an earlier one of the list is not forced again.
 */
export function planForce(changeIds: readonly string[], facts: BatchFacts): BatchPlan {
  const p = new Planner(facts);
  const results = changeIds.flatMap((id) => {
    const r = p.force(id);
    return r ? [r] : [];
  });
  return { results, writes: p.writes(), events: p.events };
}

type Applied = { result: ChangeResult; entity: EntityRecord; error?: undefined } | { error: ChangeError };

/** A last check of the state a change would make, before it is made (a refusal, or null to go on). */
type Guard = (next: { data: EntityState['data'] }) => ChangeError | null;

const stateOf = (e: EntityRecord | null): EntityState | null => (e ? { label: e.label, data: e.data, version: e.version, deleted: e.deleted } : null);

/** The working state of one plan: the loaded facts, as the changes decided so far left them. */
class Planner {
  readonly events: SyncEvent[] = [];
  private readonly entities: Map<string, EntityRecord>;
  private readonly history: Map<string, HistoryRow[]>;
  private readonly runs: Map<string, RunMember[]>;
  private readonly held: HeldRecord[];
  private readonly priors: Map<string, PriorRecord>;
  private readonly origins: Map<string, EntityOrigin>;
  private readonly offlineRuns: Map<string, string[]>;
  private readonly newChanges = new Map<string, ChangeRow>();
  private readonly newChangeRows: ChangeRow[] = [];
  private readonly outcomes = new Map<string, OutcomeUpdate>();
  private readonly loadedHeld: Set<string>;
  private readonly heldDeleted: string[] = [];
  private readonly touched = new Map<string, EntityRecord>();
  private readonly versions: VersionRecord[] = [];
  private readonly subsetRows: SubsetRow[] = [];
  /** Entities the submitting token could see at some point: its log handed them out, or this batch put them in its share. */
  private readonly seen: Set<string>;

  constructor(private readonly facts: BatchFacts) {
    this.entities = new Map(facts.entities);
    this.history = new Map([...facts.history].map(([id, rows]) => [id, [...rows]]));
    this.runs = new Map([...facts.runs].map(([id, rows]) => [id, [...rows]]));
    this.held = [...facts.held];
    this.loadedHeld = new Set(facts.held.map((h) => h.changeId));
    this.priors = new Map(facts.priors);
    this.origins = new Map(facts.origins);
    this.offlineRuns = new Map([...facts.offlineRuns].map(([id, runs]) => [id, [...runs]]));
    this.seen = new Set(facts.submitter?.seen ?? []);
  }

  writes(): BatchWrites {
    const heldIds = new Set(this.held.map((h) => h.changeId));
    return {
      changes: this.newChangeRows,
      outcomes: [...this.outcomes.values()],
      heldInserted: this.held.filter((h) => !this.loadedHeld.has(h.changeId)),
      heldDeleted: this.heldDeleted.filter((id) => !heldIds.has(id)),
      entities: [...this.touched.values()],
      versions: this.versions,
      subsetRows: this.subsetRows,
    };
  }

  /** DESIGN step 1, then placement: the answer to one submitted change. */
  decide(c: BatchChange): ChangeResult {
    const prior = c.addressable ? this.priors.get(c.key) : undefined;
    if (prior) {
      if (!samePayload(prior.payload, c.record.payload)) {
        const error = changeError('CHANGE_ID_REUSED', c.key);
        // Recorded beside the original (not as it), so the reused id's payload is not lost either.
        this.record({ ...c.record, original: false, outcome: 'REJECTED', version: null, errorCode: error.code, errorMessage: error.message });
        return changeResult(c.key, 'REJECTED', { entityId: c.record.entityId, error });
      }
      return changeResult(c.key, 'DUPLICATE', {
        originalOutcome: prior.outcome,
        entityId: prior.entityId,
        version: prior.version,
        conflict: prior.conflict,
        conflictingProperties: prior.conflictingProperties,
        waitsFor: prior.outcome === 'HELD' ? prior.waitsFor : null,
        error: prior.errorCode ? { code: prior.errorCode, message: prior.errorMessage ?? '' } : null,
      });
    }
    const reject = (error: ChangeError): ChangeResult => {
      this.record({ ...c.record, original: c.addressable, outcome: 'REJECTED', version: null, errorCode: error.code, errorMessage: error.message });
      return changeResult(c.key, 'REJECTED', { entityId: c.record.entityId, error });
    };
    if (!c.addressable) return reject(changeError('MALFORMED_ID', `id of ${c.key.length} characters`));
    if (!c.validation.ok) return reject(c.validation.error);
    return this.placeNew(c, c.validation.change);
  }

  /** A held change forced by the flush, with the successors it releases; null once it is no longer held. */
  force(changeId: string): ChangeResult | null {
    const held = this.takeHeld((h) => h.changeId === changeId);
    if (!held) return null;
    const forced = this.applyHeld(held, 'FORCED', this.entities.get(held.entityId) ?? null);
    if (forced.outcome !== 'APPLIED') return forced;
    this.events.push({ type: 'backlogFlushed', reason: 'FORCED', datasetName: held.datasetName, entityId: held.entityId, changes: [{ changeId, version: forced.version! }] });
    forced.released = this.releaseChain(held.change, this.entities.get(held.entityId)!, held.datasetName);
    return forced;
  }

  /** DESIGN steps 2 to 5 for a new change: rejects, holds, or applies it and releases its run's successors. */
  private placeNew(c: BatchChange, received: ValidChange): ChangeResult {
    let change = received;
    const rules = this.submitterSubset(change.dataset);
    const reject = (refusal: ChangeError): ChangeResult => {
      // Seen from a subset, a missing entity is one more entity it never could see: the same
      // answer as for one outside it, so ids cannot be probed by updates.
      const error = rules && refusal.code === 'ENTITY_NOT_FOUND' ? changeError('OUTSIDE_SUBSET', change.entityId) : refusal;
      this.record({ ...c.record, original: true, outcome: 'REJECTED', version: null, errorCode: error.code, errorMessage: error.message });
      return changeResult(change.id, 'REJECTED', { entityId: change.entityId, error });
    };
    const dataset = this.facts.datasets.get(change.dataset);
    if (!dataset) return reject(changeError('UNKNOWN_DATASET', `"${change.dataset}"`));
    const undeclared = undeclaredProperties(change.data, dataset.properties, change.operations);
    if (undeclared.length > 0) return reject(changeError('UNKNOWN_PROPERTY', undeclared.join(', ')));

    let entity = this.entities.get(change.entityId) ?? null;
    if (entity && entity.datasetId !== dataset.id) {
      // Seen from this dataset, an entity of another does not exist (its id cannot be probed), nor
      // do its runs (runFacts): a change is answered as for a missing entity, and what it leaves in
      // this dataset's backlog never reaches that entity (applyHeld). A create cannot take its id,
      // as with any id in use.
      if (change.action === 'CREATE') return reject(changeError('ENTITY_EXISTS', change.entityId));
      entity = null;
    }
    // DESIGN "Subsets": a device changes what it could see (in its share now, or handed to it
    // before a reassignment: no offline edit is lost to one), and never anything else.
    if (rules && entity && !this.couldSee(rules, entity)) return reject(changeError('OUTSIDE_SUBSET', change.entityId));
    // A local-id entity not on the server yet (or a change counted past it) without a run of
    // its own joins the device's implicit run for that local id, so it can be held and released.
    // Once its create went through that run, later local-id changes without a run stay in it.
    if (c.implicitBranch && change.localId && change.deviceId && !change.branchId) {
      const implicit = c.implicitBranch;
      const joins = !entity || change.action === 'CREATE' || (change.baseVersion ?? 0) > entity.version || (this.runs.get(implicit) ?? []).some((v) => v.entityId === entity!.id);
      if (joins) change = { ...change, branchId: implicit, trunkVersion: null };
    }
    // A create naming no run may be the create of a run the server already has (ODK Collect).
    if (change.action === 'CREATE' && !change.branchId) {
      change = adoptRun(change, entity ? (this.origins.get(entity.id) ?? null) : null, this.runsBeganOffline(change.entityId, dataset));
    }
    const branch = this.runFacts(change, dataset, entity !== null);
    const inconsistent = branch ? checkBranch(change, branch) : null;
    if (inconsistent) return reject(inconsistent);

    const placement = placeChange(change, stateOf(entity), branch);
    if (placement.kind === 'reject') return reject(placement.error);
    if (placement.kind === 'hold') {
      const waitsFor = placement.waitsFor;
      this.held.push({ changeId: change.id, entityId: change.entityId, datasetName: dataset.name, deviceId: change.deviceId, branchId: change.branchId!, trunkVersion: change.trunkVersion, baseVersion: runPosition(change), waitsFor, change });
      this.record({ ...c.record, original: true, outcome: 'HELD', version: null, errorCode: null, errorMessage: null }, waitsFor);
      this.events.push({ type: 'changeHeld', datasetName: dataset.name, entityId: change.entityId, changeId: change.id, branchId: change.branchId!, deviceId: change.deviceId, waitsFor });
      return changeResult(change.id, 'HELD', { entityId: change.entityId, waitsFor });
    }
    const source: VersionSource = change.branchId ? 'IN_ORDER' : 'ONLINE';
    // What it makes must be in its share, when it makes something new (an update may take an
    // entity out: it is accepted, and the entity leaves the share).
    const guard: Guard | undefined = rules && !entity ? (next) => (inSubset(rules, next.data) ? null : changeError('OUTSIDE_SUBSET', change.entityId)) : undefined;
    const applied = this.applyVersion(change, source, placement.asUpdate, entity, dataset, branch, c.record, guard);
    if (applied.error) return reject(applied.error);
    applied.result.released = this.releaseChain(change, applied.entity, dataset.name);
    return applied.result;
  }

  /** The subset of the token that sent the batch, for this dataset; null when it has none. */
  private submitterSubset(datasetName: string): Subset | null {
    const submitter = this.facts.submitter;
    if (!submitter) return null;
    return this.facts.subsetTokens.find((t) => t.tokenId === submitter.tokenId && t.datasets.includes(datasetName))?.subset ?? null;
  }

  private couldSee(rules: Subset, entity: EntityRecord): boolean {
    return inSubset(rules, entity.data) || this.seen.has(entity.id);
  }

  /** The subset log rows a version writes (core versionMoves: the same rule for every writer of a version). */
  private subsetMoves(dataset: DatasetRecord, before: EntityRecord | null, after: EntityRecord, version: number): void {
    const rows = versionMoves(this.facts.subsetTokens, dataset, after.id, before, after, version);
    this.subsetRows.push(...rows);
    const submitter = this.facts.submitter?.tokenId;
    if (rows.some((r) => r.kind !== 'LEFT' && r.tokenId === submitter)) this.seen.add(after.id);
  }

  /**
   * What the server knows of a change's run, its entity's create included for a run that began
   * offline. Seen from the change's dataset: the steps of a run of another dataset (the same id,
   * on an entity of its own) neither refuse nor release this one, so nothing of that dataset shows.
   */
  private runFacts(change: ValidChange, dataset: DatasetRecord, entityExists: boolean): BranchFacts | null {
    if (!change.branchId) return null;
    const branch: BranchFacts = {
      applied: (this.runs.get(change.branchId) ?? []).filter((m) => m.datasetId === dataset.id),
      held: this.held
        .filter((h) => h.branchId === change.branchId && h.datasetName === dataset.name)
        .map((h) => ({ entityId: h.entityId, baseVersion: h.baseVersion, trunkVersion: h.trunkVersion, changeId: h.changeId, deviceId: h.deviceId })),
    };
    return change.trunkVersion === null && entityExists ? withRunCreate(change, branch, this.origins.get(change.entityId) ?? null) : branch;
  }

  /** The entity's runs that began offline in this dataset (applied ones first, then held ones), oldest first, with their devices. */
  private runsBeganOffline(entityId: string, dataset: DatasetRecord): { branchId: string; deviceId: string | null }[] {
    const applied = (this.offlineRuns.get(entityId) ?? []).flatMap((branchId) => {
      const member = (this.runs.get(branchId) ?? []).find((m) => m.entityId === entityId && m.datasetId === dataset.id);
      return member ? [{ branchId, deviceId: member.deviceId }] : [];
    });
    const held = this.held.filter((h) => h.entityId === entityId && h.datasetName === dataset.name && h.trunkVersion === null).map((h) => ({ branchId: h.branchId, deviceId: h.deviceId }));
    const seen = new Set<string>();
    return [...applied, ...held].filter((r) => !seen.has(r.branchId) && seen.add(r.branchId));
  }

  /** Versions of an entity from `first` on; the facts must have been loaded that far (core historyNeeds). */
  private versionsFrom(entity: EntityRecord | null, first: number): HistoryRow[] {
    if (!entity || first > entity.version) return [];
    const loadedFrom = this.facts.historyFrom.get(entity.id) ?? (this.facts.entities.get(entity.id)?.version ?? 0) + 1;
    if (first < loadedFrom) throw new Error(`plan: versions of ${entity.id} from ${first} were not loaded (from ${loadedFrom})`);
    return (this.history.get(entity.id) ?? []).filter((v) => v.version >= first);
  }

  /**
   * DESIGN steps 3 and 4: the next version, on top of the current state; conflicts compare what
   * the change touches with what unseen versions set. Records the change as applied.
   */
  private applyVersion(
    change: ValidChange,
    source: VersionSource,
    asUpdate: boolean,
    entity: EntityRecord | null,
    dataset: DatasetRecord,
    branch: BranchFacts | null,
    record?: ChangeLogRecord,
    guard?: Guard,
  ): Applied {
    const { change: effective, beneath } = beneathLaterChanges(change, branch);
    const after = seenUpTo(change, asUpdate);
    const later = this.versionsFrom(entity, Math.max(1, after));
    const current = stateOf(entity);
    // A forced update may make its entity: it takes the change's label, else a fixed one.
    const tried = tryApplyChange(current, { ...effective, action: asUpdate ? 'UPDATE' : effective.action }, UNKNOWN_LABEL);
    if (!tried.ok) return { error: tried.error };
    const next = tried.applied;
    const refused = guard?.(next);
    if (refused) return { error: refused };
    const version = (entity?.version ?? 0) + 1;
    const unseen = unseenVersions(change, asUpdate, branch, later);
    // Judged on what the change itself sets: beneath a later change of its run some of its writes
    // give way, but a value both sides set alike is no one's lost write (DESIGN step 4).
    const written = beneath ? intendedWrites(current, change, asUpdate, next) : next.changed;
    const verdict = judgeConflict(touchedProperties(change), written, unseen.map((v) => v.changed));
    // Forced or applied beneath a later change: flagged at least SOFT so a reviewer sees it.
    const conflict = source === 'FORCED' || beneath ? strongestConflict(verdict.conflict, 'SOFT') : verdict.conflict;

    const view = authorView(change, source, asUpdate, branch);
    let baseDiff = null;
    if (view.kind === 'version') {
      const seen = view.version === 0 ? null : view.version === entity?.version ? current : (later.find((v) => v.version === view.version) ?? null);
      if (view.version !== 0 && !seen) throw new Error(`plan: the author's version ${view.version} of ${change.entityId} was not loaded`);
      const seenState = seen ? { label: seen.label, data: seen.data, version: view.version, deleted: false } : null;
      const made = tryApplyChange(seenState, { ...change, action: seenState && change.action === 'CREATE' ? 'UPDATE' : change.action }, UNKNOWN_LABEL);
      // Operations that do not fit what the author saw: no honest author diff to show.
      baseDiff = made.ok ? diffStates(seenState, made.applied) : null;
    }
    const made: EntityRecord = entity
      ? { ...entity, label: next.label, data: next.data, version, deleted: next.deleted, conflict: strongestConflict(entity.conflict, conflict) }
      : { id: change.entityId, datasetId: dataset.id, label: next.label, data: next.data, version, deleted: next.deleted, conflict };
    const row: VersionRecord = {
      entityId: change.entityId,
      datasetId: dataset.id,
      version,
      appliedOn: appliedOnVersion(change, asUpdate, branch),
      baseVersion: change.branchId ? runPosition(change) : change.baseVersion,
      action: asUpdate ? 'UPDATE' : change.action,
      label: next.label,
      data: next.data,
      changed: next.changed,
      operations: change.operations ?? [],
      deleted: next.deleted,
      conflict,
      conflictingProperties: verdict.conflictingProperties,
      source,
      branchId: change.branchId,
      trunkVersion: change.trunkVersion,
      serverDiff: diffStates(current, next),
      baseDiff,
      authorViewUnavailable: view.kind === 'unavailable' ? view.reason : null,
      changeId: change.id,
      deviceId: change.deviceId,
    };
    this.made(made, row);
    this.subsetMoves(dataset, entity, made, version);
    const facts = { outcome: 'APPLIED', version, conflict, conflictingProperties: verdict.conflictingProperties } as const;
    if (record) this.record({ ...record, original: true, outcome: 'APPLIED', version, errorCode: null, errorMessage: null }, null, facts);
    else this.settle(change.id, { outcome: 'APPLIED', version, errorCode: null, errorMessage: null }, facts);

    this.events.push({ type: 'entityChanged', datasetName: dataset.name, entityId: change.entityId, version });
    if (conflict) this.events.push({ type: 'conflictDetected', datasetName: dataset.name, entityId: change.entityId, version, conflict, conflictingProperties: verdict.conflictingProperties });
    return { entity: made, result: changeResult(change.id, 'APPLIED', { entityId: change.entityId, version, conflict, conflictingProperties: verdict.conflictingProperties }) };
  }

  /** The state after a version: the entity, its history, its run and its origin. */
  private made(entity: EntityRecord, row: VersionRecord): void {
    this.entities.set(entity.id, entity);
    this.touched.set(entity.id, entity);
    this.versions.push(row);
    this.history.set(entity.id, [...(this.history.get(entity.id) ?? []), row]);
    if (row.branchId) {
      const member: RunMember = {
        branchId: row.branchId,
        datasetId: entity.datasetId,
        entityId: row.entityId,
        version: row.version,
        baseVersion: row.baseVersion ?? 0,
        trunkVersion: row.trunkVersion,
        conflict: row.conflict,
        source: row.source,
        changed: row.changed,
        deviceId: row.deviceId,
      };
      this.runs.set(row.branchId, [...(this.runs.get(row.branchId) ?? []), member]);
      if (row.trunkVersion === null && !(this.offlineRuns.get(row.entityId) ?? []).includes(row.branchId)) {
        this.offlineRuns.set(row.entityId, [...(this.offlineRuns.get(row.entityId) ?? []), row.branchId]);
      }
    }
    if (row.version === 1) this.origins.set(row.entityId, { version: 1, action: row.action, source: row.source, branchId: row.branchId, conflict: row.conflict, changed: row.changed, deviceId: row.deviceId });
  }

  /**
   * Applies a held change taken out of the backlog (released or forced), unless the entity has
   * since become something it cannot apply to: then it ends REJECTED, and says so in the change
   * log. Never applied across datasets, never onto a deleted entity. Seen from its dataset, an
   * entity of another does not exist: a delete of it is ENTITY_NOT_FOUND, and an update, which
   * would make it, cannot take its id (ENTITY_EXISTS, as a create would be told).
   */
  private applyHeld(held: HeldRecord, source: 'RELEASED' | 'FORCED', entity: EntityRecord | null): ChangeResult {
    const dataset = this.facts.datasets.get(held.datasetName);
    const c = held.change;
    const visible = entity && dataset && entity.datasetId === dataset.id ? entity : null;
    let refusal: ChangeError | null = null;
    if (!dataset) refusal = changeError('UNKNOWN_DATASET', held.datasetName);
    else if (visible?.deleted) refusal = changeError('ENTITY_DELETED', c.entityId);
    else if (!visible && c.action === 'DELETE') refusal = changeError('ENTITY_NOT_FOUND', c.entityId);
    else if (entity && !visible) refusal = changeError('ENTITY_EXISTS', c.entityId);
    const applied = refusal ? { error: refusal } : this.applyVersion(c, source, false, visible, dataset!, this.runFacts(c, dataset!, visible !== null));
    if (applied.error) {
      this.settle(held.changeId, { outcome: 'REJECTED', version: null, errorCode: applied.error.code, errorMessage: applied.error.message }, { outcome: 'REJECTED', version: null, conflict: null, conflictingProperties: [] });
      this.refused(held.datasetName, c.entityId, held.changeId, held.deviceId, applied.error);
      return changeResult(held.changeId, 'REJECTED', { entityId: c.entityId, dataset: held.datasetName, error: applied.error });
    }
    applied.result.dataset = held.datasetName;
    return applied.result;
  }

  /** DESIGN step 5: after a change of run B at position k lands, land B's held k+1, k+2, … until one is missing or refused. */
  private releaseChain(after: ValidChange, entity: EntityRecord, datasetName: string): ChangeResult[] {
    const results: ChangeResult[] = [];
    const branchId = after.branchId;
    if (!branchId) return results;
    let position = runPosition(after);
    let current: EntityRecord = entity;
    for (;;) {
      const next = position + 1;
      // The run as its dataset has it: a held step of another dataset's run of that id is not this one's.
      const held = this.takeHeld((h) => h.branchId === branchId && h.baseVersion === next && h.datasetName === datasetName);
      if (!held) break;
      const r = this.applyHeld(held, 'RELEASED', current);
      results.push(r);
      if (r.outcome !== 'APPLIED') break;
      current = this.entities.get(current.id)!;
      position = next;
    }
    const applied = results.filter((r) => r.outcome === 'APPLIED');
    if (applied.length > 0) {
      this.events.push({ type: 'backlogFlushed', reason: 'RELEASED', datasetName, entityId: entity.id, changes: applied.map((r) => ({ changeId: r.changeId, version: r.version! })) });
    }
    return results;
  }

  /** Takes a held change out of the backlog. */
  private takeHeld(match: (h: HeldRecord) => boolean): HeldRecord | null {
    const i = this.held.findIndex(match);
    if (i < 0) return null;
    const [held] = this.held.splice(i, 1);
    if (this.loadedHeld.has(held!.changeId)) this.heldDeleted.push(held!.changeId);
    return held!;
  }

  /** A refusal is an event (for webhooks) when it concerns a dataset that exists. */
  private refused(datasetName: string | null, entityId: string | null, changeId: string, deviceId: string | null, error: ChangeError): void {
    if (datasetName === null || !this.facts.datasets.has(datasetName)) return;
    this.events.push({ type: 'changeRejected', datasetName, entityId, changeId, deviceId, code: error.code, message: error.message });
  }

  /** A new change log row, and what a resend of it in this batch is told. */
  private record(row: ChangeRow, waitsFor: number | null = null, facts?: Pick<PriorRecord, 'outcome' | 'version' | 'conflict' | 'conflictingProperties'>): void {
    this.newChangeRows.push(row);
    if (row.outcome === 'REJECTED' && row.errorCode) this.refused(row.datasetName, row.entityId, row.changeId, row.deviceId, { code: row.errorCode, message: row.errorMessage ?? '' });
    if (!row.original) return;
    this.newChanges.set(row.changeId, row);
    this.priors.set(row.changeId, {
      outcome: row.outcome,
      entityId: row.entityId,
      version: row.version,
      errorCode: row.errorCode,
      errorMessage: row.errorMessage,
      payload: row.payload,
      conflict: facts?.conflict ?? null,
      conflictingProperties: facts?.conflictingProperties ?? [],
      waitsFor,
    });
  }

  /** The outcome of a held change: its row, new in this batch or stored, and what a resend is told. */
  private settle(changeId: string, outcome: Omit<OutcomeUpdate, 'changeId'>, facts: Pick<PriorRecord, 'outcome' | 'version' | 'conflict' | 'conflictingProperties'>): void {
    const row = this.newChanges.get(changeId);
    if (row) Object.assign(row, outcome);
    else this.outcomes.set(changeId, { changeId, ...outcome });
    const prior = this.priors.get(changeId);
    if (prior) this.priors.set(changeId, { ...prior, ...facts, errorCode: outcome.errorCode, errorMessage: outcome.errorMessage, waitsFor: null });
  }
}

/** What a change would set with none of its writes giving way (its own `changed`), or what it set when that does not apply. */
function intendedWrites(current: EntityState | null, change: ValidChange, asUpdate: boolean, applied: { changed: PropertyValues }): PropertyValues {
  const whole = tryApplyChange(current, { ...change, action: asUpdate ? 'UPDATE' : change.action }, UNKNOWN_LABEL);
  return whole.ok ? whole.applied.changed : applied.changed;
}
