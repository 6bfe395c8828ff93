import { tryApplyChange } from './apply.js';
import type { VersionRecord } from './batch-facts.js';
import { diffStates } from './diff.js';
import { changeError } from './errors.js';
import { hasNul } from './json.js';
import type { ChangeError, ConflictType, Limits, PropertyValues } from './types.js';
import { undeclaredProperties, validateChange } from './validate.js';

/**
 * A reviewer's verdicts (DESIGN "Settling a conflict"), as pure decisions: resolving an entity's
 * open conflicts at the version the reviewer looked at, optionally writing chosen values as a new
 * version from the reviewer, and restoring a deleted entity. src/sync loads the entity under its
 * lock, asks these, and writes what they answer.
 */

export const RESOLUTION_KINDS = ['RESOLVE', 'RESTORE'] as const;
export type ResolutionKind = (typeof RESOLUTION_KINDS)[number];

/** A reviewer's note says why, in a sentence or a paragraph; not a document. */
export const MAX_NOTE_LENGTH = 2000;

/** What a review is decided on: the entity's current state, its dataset and its open conflict. */
export interface ReviewEntity {
  id: string;
  datasetId: string;
  datasetName: string;
  properties: readonly string[];
  label: string;
  data: PropertyValues;
  version: number;
  conflict: ConflictType | null;
  deleted: boolean;
  /** The conflictingProperties of its unresolved conflicting versions, sorted. */
  openProperties: readonly string[];
  /** How many of its versions are in conflict and not yet resolved. */
  openVersions: number;
}

/** Chosen values and label, checked for shape (checkEdit); null when the review writes nothing. */
export interface ReviewEdit {
  data: PropertyValues;
  label: string | null;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: ChangeError };

/** A note: trimmed, empty means none; bounded; text Postgres can store and a person wrote (line breaks and tabs allowed). */
export function checkNote(note: string | null | undefined): Checked<string | null> {
  const text = note?.trim() ?? '';
  if (text === '') return { ok: true, value: null };
  if (text.length > MAX_NOTE_LENGTH) return { ok: false, error: changeError('INVALID_NOTE', `${text.length} characters; at most ${MAX_NOTE_LENGTH}`) };
  if (hasNul(text) || /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
    return { ok: false, error: changeError('INVALID_NOTE', 'control characters or text that is not valid Unicode') };
  }
  return { ok: true, value: text };
}

/** A placeholder id for the shape check: the edit is checked as an update of this entity would be. */
const SHAPE_ID = '00000000-0000-4000-8000-000000000000';

/**
 * The shape of chosen values and label, by the very rules a change's data and label meet
 * (validateChange: nesting, size, property count, reserved or unstorable names and values, label
 * rules). No values and no label (or `{}`) is no edit. Which properties the dataset declares is
 * decided with the entity (planResolve).
 */
export function checkEdit(values: Record<string, unknown> | null | undefined, label: string | null | undefined, limits: Limits): Checked<ReviewEdit | null> {
  const none = values == null || (typeof values === 'object' && !Array.isArray(values) && Object.keys(values).length === 0);
  if (none && label == null) return { ok: true, value: null };
  const checked = validateChange({ id: SHAPE_ID, dataset: 'review', entityId: SHAPE_ID, action: 'UPDATE', baseVersion: 1, label: label ?? null, data: values ?? {} }, limits);
  if (!checked.ok) return checked;
  return { ok: true, value: { data: checked.change.data, label: checked.change.label } };
}

/** DESIGN "Settling a conflict": a verdict is made at the version the reviewer looked at, and only there. */
export function staleGuard(entity: Pick<ReviewEntity, 'id' | 'version'>, version: number): ChangeError | null {
  if (version < entity.version) return changeError('STALE_VERSION', `it is at version ${entity.version}, not ${version}`);
  if (version > entity.version) return changeError('VERSION_AHEAD', `it is at version ${entity.version}, not ${version}`);
  return null;
}

/** What a review does, once decided: the version it writes (if any), the entity after it, and what it records. */
export interface ReviewPlan {
  kind: ResolutionKind;
  /** The new version from the reviewer, or null (a plain "mark resolved", or chosen values equal to what is there). */
  version: VersionRecord | null;
  /** The entity after the review. */
  entity: { label: string; data: PropertyValues; version: number; conflict: ConflictType | null; deleted: boolean };
  /** Versions up to this one that are in conflict and unresolved are marked resolved (RESOLVE only). */
  resolvesUpTo: number | null;
  /** The conflict it clears, and its properties (RESOLVE only). */
  cleared: { conflict: ConflictType | null; conflictingProperties: string[]; versions: number };
}

/** The version a reviewer writes: on top of the current one, made on what the reviewer saw (that same version), from no device. */
function reviewVersion(e: ReviewEntity, changeId: string, next: { label: string; data: PropertyValues; deleted: boolean; changed: PropertyValues }): VersionRecord {
  const serverDiff = diffStates(e, next);
  return {
    entityId: e.id,
    datasetId: e.datasetId,
    version: e.version + 1,
    appliedOn: e.version,
    baseVersion: e.version,
    action: 'UPDATE',
    label: next.label,
    data: next.data,
    changed: next.changed,
    operations: [],
    deleted: next.deleted,
    conflict: null,
    conflictingProperties: [],
    source: 'REVIEW',
    branchId: null,
    trunkVersion: null,
    serverDiff,
    // The reviewer saw the version it was applied on: both views are the same.
    baseDiff: serverDiff,
    authorViewUnavailable: null,
    changeId,
    deviceId: null,
  };
}

/**
 * Resolve: the entity's open conflicts are marked resolved at `version`, after the chosen values
 * (if any) are written as a new version on top of it. Refused when the entity is missing, has moved
 * on, has no open conflict, or (with values) is deleted or the values name undeclared properties.
 * Values that change nothing write no version. `changeId` names the version it would write.
 */
export function planResolve(e: ReviewEntity | null, version: number, edit: ReviewEdit | null, changeId: string): Checked<ReviewPlan> {
  const fail = (error: ChangeError): Checked<ReviewPlan> => ({ ok: false, error });
  if (!e) return fail(changeError('ENTITY_NOT_FOUND'));
  const stale = staleGuard(e, version);
  if (stale) return fail(stale);
  if (!e.conflict) return fail(changeError('NOT_IN_CONFLICT', e.id));
  const cleared = { conflict: e.conflict, conflictingProperties: [...e.openProperties], versions: e.openVersions };
  const keep = { kind: 'RESOLVE' as const, resolvesUpTo: e.version, cleared };
  if (!edit) return { ok: true, value: { ...keep, version: null, entity: { label: e.label, data: e.data, version: e.version, conflict: null, deleted: e.deleted } } };
  if (e.deleted) return fail(changeError('ENTITY_DELETED', `${e.id}; restore it (restoreEntity) before writing values`));
  const undeclared = undeclaredProperties(edit.data, e.properties);
  if (undeclared.length > 0) return fail(changeError('UNKNOWN_PROPERTY', undeclared.join(', ')));
  const applied = tryApplyChange(e, { id: changeId, deviceId: null, dataset: e.datasetName, entityId: e.id, action: 'UPDATE', label: edit.label, data: edit.data, baseVersion: e.version, trunkVersion: null, branchId: null });
  // Plain values always apply; an error here would be a broken rule, not an input.
  if (!applied.ok) throw new Error(`planResolve: ${applied.error.message}`);
  const next = applied.applied;
  if (diffStates(e, next).length === 0) return { ok: true, value: { ...keep, version: null, entity: { label: e.label, data: e.data, version: e.version, conflict: null, deleted: false } } };
  const row = reviewVersion(e, changeId, next);
  return { ok: true, value: { ...keep, version: row, entity: { label: row.label, data: row.data, version: row.version, conflict: null, deleted: false } } };
}

/**
 * Restore: a deleted entity comes back as a new version from the reviewer, with the label and
 * values it had when it was deleted (a delete keeps them). Its conflict state is untouched: a
 * restore is not a verdict on a conflict.
 */
export function planRestore(e: ReviewEntity | null, version: number, changeId: string): Checked<ReviewPlan> {
  const fail = (error: ChangeError): Checked<ReviewPlan> => ({ ok: false, error });
  if (!e) return fail(changeError('ENTITY_NOT_FOUND'));
  const stale = staleGuard(e, version);
  if (stale) return fail(stale);
  if (!e.deleted) return fail(changeError('ENTITY_NOT_DELETED', e.id));
  const row = reviewVersion(e, changeId, { label: e.label, data: e.data, deleted: false, changed: {} });
  return {
    ok: true,
    value: {
      kind: 'RESTORE',
      version: row,
      entity: { label: e.label, data: e.data, version: row.version, conflict: e.conflict, deleted: false },
      resolvesUpTo: null,
      cleared: { conflict: null, conflictingProperties: [], versions: 0 },
    },
  };
}

/**
 * A held change's step in its run, counted from 1 as people count: the run's first change is step
 * 1 (an offline create, or the change made on the trunk version), the next step 2, and so on.
 * `position` is the client baseVersion (0 for an offline create, whose run has no trunk).
 */
export function runStep(position: number, trunkVersion: number | null): number {
  return trunkVersion === null ? position + 1 : position - trunkVersion + 1;
}
