import type { PropertyDiff } from './diff.js';
import { seenUpTo, type BranchFacts, type EntityOrigin } from './placement.js';
import type { SubsetToken } from './subsets.js';
import type { ChangeAction, ChangeOutcome, ConflictType, ErrorCode, Operation, PropertyValues, ValidChange, VersionSource } from './types.js';
import { validateName, type Validation } from './validate.js';

/**
 * What the write path loads for a batch, and what it writes back: plain data, so the rules that
 * decide a batch (batch-plan.ts) are one pure function (STYLE "Decisions as data"). src/sync loads
 * these facts in a few set-based statements and writes the plan in a few multi-row ones.
 */

export interface DatasetRecord {
  id: string;
  name: string;
  properties: readonly string[];
}

/** An entity's current state (a row of `entities`). */
export interface EntityRecord {
  id: string;
  datasetId: string;
  label: string;
  data: PropertyValues;
  version: number;
  conflict: ConflictType | null;
  deleted: boolean;
}

/** A version already stored, as far as deciding later changes needs it. */
export interface HistoryRow {
  entityId: string;
  version: number;
  branchId: string | null;
  label: string;
  data: PropertyValues;
  changed: PropertyValues;
}

/** A version the plan makes (a row of `entity_versions`, without what the database fills in). */
export interface VersionRecord extends HistoryRow {
  datasetId: string;
  appliedOn: number | null;
  baseVersion: number | null;
  action: ChangeAction;
  operations: Operation[];
  deleted: boolean;
  conflict: ConflictType | null;
  conflictingProperties: string[];
  source: VersionSource;
  trunkVersion: number | null;
  serverDiff: PropertyDiff[];
  baseDiff: PropertyDiff[] | null;
  authorViewUnavailable: string | null;
  changeId: string;
  deviceId: string | null;
}

/** An applied change of a run (BranchFacts.applied), with its run and its entity's dataset (a run is seen only from there). */
export type RunMember = BranchFacts['applied'][number] & { branchId: string; datasetId: string };

/** A change waiting in the backlog (a row of `held_changes`). */
export interface HeldRecord {
  changeId: string;
  entityId: string;
  datasetName: string;
  deviceId: string | null;
  branchId: string;
  trunkVersion: number | null;
  baseVersion: number;
  waitsFor: number;
  change: ValidChange;
}

/** A change log row (`changes`) before its outcome. */
export interface ChangeLogRecord {
  changeId: string;
  deviceId: string | null;
  datasetName: string | null;
  entityId: string | null;
  action: string | null;
  payload: Record<string, unknown>;
}

/** The first submission of a change id, as it stands, with what a DUPLICATE answer reports of it. */
export interface PriorRecord {
  outcome: ChangeOutcome;
  entityId: string | null;
  version: number | null;
  errorCode: ErrorCode | null;
  errorMessage: string | null;
  payload: Record<string, unknown>;
  conflict: ConflictType | null;
  conflictingProperties: string[];
  waitsFor: number | null;
}

/** One change of a batch as it arrived, checked and keyed (src/sync builds it). */
export interface BatchChange {
  /** The change log key (core changeKey), possibly too long to be one. */
  key: string;
  /** False for a key that cannot be stored as one (empty or over 200 characters). */
  addressable: boolean;
  record: ChangeLogRecord;
  validation: Validation;
  /** The implicit run of a local-id change sent without a branch (derived from the minted UUID). */
  implicitBranch: string | null;
  /** Echoed in the result beside the minted entityId. */
  localId: string | null;
}

// Subset tokens and the log rows a version writes are the subset rules' own (core/subsets.ts).
export type { SubsetRow, SubsetToken } from './subsets.js';

/** What is known of the rows a batch touches, as loaded under its locks. */
export interface BatchFacts {
  /**
   * Tokens with a subset of the datasets the batch writes to, as they stand under the datasets'
   * subset locks: each version made writes their subset log rows (core subsets.ts movement).
   */
  subsetTokens: readonly SubsetToken[];
  /**
   * The token that sent the batch, when it has a subset, and the entities of the batch it could
   * ever see (its subset log handed them out, or, for a token that had no rules before its first,
   * they were in its datasets then): a change to one of those is processed as usual (no offline
   * edit is lost to a reassignment); to any other entity outside its subset it is refused
   * OUTSIDE_SUBSET.
   */
  submitter: { tokenId: string; seen: ReadonlySet<string> } | null;
  /** By name. */
  datasets: ReadonlyMap<string, DatasetRecord>;
  entities: ReadonlyMap<string, EntityRecord>;
  /** By change key. */
  priors: ReadonlyMap<string, PriorRecord>;
  /** Applied changes of runs, by run id. */
  runs: ReadonlyMap<string, readonly RunMember[]>;
  /** Held changes of the batch's runs and entities, oldest first. */
  held: readonly HeldRecord[];
  /** Versions of an entity from `historyFrom` of it on (loaded only where a rule needs them). */
  history: ReadonlyMap<string, readonly HistoryRow[]>;
  historyFrom: ReadonlyMap<string, number>;
  /** Version 1 of entities, where a run that began offline needs it. */
  origins: ReadonlyMap<string, EntityOrigin>;
  /** Runs that began offline and have applied changes on the entity, oldest first. */
  offlineRuns: ReadonlyMap<string, readonly string[]>;
}

/** The valid changes of a batch, for what is keyed by them. */
const valid = (changes: readonly BatchChange[]): ValidChange[] => changes.flatMap((c) => (c.validation.ok ? [c.validation.change] : []));

/** The keys of the first statements: change ids, datasets, entities and runs the batch names. */
export function batchKeys(changes: readonly BatchChange[]) {
  const vs = valid(changes);
  return {
    changeKeys: [...new Set(changes.filter((c) => c.addressable).map((c) => c.key))],
    // Refused changes name their dataset too: a refusal of a dataset that exists is an event of it.
    datasetNames: [...new Set([...vs.map((c) => c.dataset), ...changes.flatMap((c) => (!c.validation.ok && c.record.datasetName !== null && validateName(c.record.datasetName) === null ? [c.record.datasetName] : []))])],
    entityIds: [...new Set(vs.map((c) => c.entityId))],
    branchIds: [...new Set([...vs.flatMap((c) => (c.branchId ? [c.branchId] : [])), ...changes.flatMap((c) => (c.implicitBranch ? [c.implicitBranch] : []))])],
  };
}

/**
 * The version history each entity's decisions may read: a change compares with the versions
 * after what its author saw (seenUpTo) and shows its author's view from one of them; so do the
 * held changes it may release, and the forced ones. Conservative where a run may be joined or
 * adopted (then the whole history). Entities that need none are absent.
 */
export function historyNeeds(changes: readonly BatchChange[], held: readonly HeldRecord[], entities: ReadonlyMap<string, EntityRecord>): Map<string, number> {
  const from = new Map<string, number>();
  const need = (entityId: string, after: number) => {
    const entity = entities.get(entityId);
    const first = Math.max(1, after);
    if (entity && first <= entity.version) from.set(entityId, Math.min(from.get(entityId) ?? first, first));
  };
  for (const [entityId, after] of changesSeen(changes)) need(entityId, after);
  for (const h of held) need(h.entityId, seenUpTo(h.change, false));
  return from;
}

/** What each valid change of the batch has seen of its entity's history (0: nothing). */
function changesSeen(changes: readonly BatchChange[]): [string, number][] {
  return changes.flatMap((c): [string, number][] => {
    if (!c.validation.ok) return [];
    const change = c.validation.change;
    // A create may go beneath its run's forced changes (it has seen nothing); a change that may
    // join an implicit run has seen nothing of it either.
    const mayJoin = change.action === 'CREATE' || (c.implicitBranch !== null && !change.branchId);
    return [[change.entityId, mayJoin ? 0 : seenUpTo(change, false)]];
  });
}

/**
 * What the batch's own changes will ask for, known before anything is loaded: loaded with the
 * first facts, so that most batches need no second round of loads. History: from the earliest
 * version any change may read (historyNeeds asks for no earlier one unless a held change does;
 * the versions the entity has bound it); origins and offline runs: originNeeds without held changes.
 */
export function earlyNeeds(changes: readonly BatchChange[]): { history: Map<string, number>; origins: string[]; offlineRuns: string[] } {
  const history = new Map<string, number>();
  for (const [entityId, after] of changesSeen(changes)) {
    const first = Math.max(1, after);
    history.set(entityId, Math.min(history.get(entityId) ?? first, first));
  }
  return { history, ...originNeeds(changes, []) };
}

/** Entities whose version 1 (origin) and applied offline runs the rules of runs that began offline may ask for. */
export function originNeeds(changes: readonly BatchChange[], held: readonly HeldRecord[]): { origins: string[]; offlineRuns: string[] } {
  const origins = new Set<string>();
  const offlineRuns = new Set<string>();
  for (const c of changes) {
    if (!c.validation.ok) continue;
    const change = c.validation.change;
    if (change.action === 'CREATE' && !change.branchId) {
      origins.add(change.entityId);
      offlineRuns.add(change.entityId);
    }
    if (change.trunkVersion === null && (change.branchId || c.implicitBranch)) origins.add(change.entityId);
  }
  for (const h of held) if (h.trunkVersion === null) origins.add(h.entityId);
  return { origins: [...origins], offlineRuns: [...offlineRuns] };
}
