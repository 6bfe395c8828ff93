import { changeError } from './errors.js';
import { applyOperations, isOverwrite, operationProperty } from './operations.js';
import type { ChangeError, EntityState, PropertyValues, ValidChange } from './types.js';

export interface Applied {
  label: string;
  data: PropertyValues;
  deleted: boolean;
  /** What the change itself set, with resulting values; `label` is present when the change set the label. */
  changed: PropertyValues;
}

/**
 * Applies a change on top of the *current* state, not the state its author saw, so nothing
 * another client wrote meanwhile is lost: only the properties the change sets are replaced,
 * and operations (list, counter) are replayed on the current values. `data` is sugar for one
 * SET per property and goes first. A type mismatch of an operation is an error value.
 */
export function tryApplyChange(
  current: EntityState | null,
  change: ValidChange,
  /** Label of an entity this change makes without giving one (a forced update whose create never came). */
  labelIfNew = '',
): { ok: true; applied: Applied } | { ok: false; error: ChangeError } {
  if (change.action === 'DELETE') {
    if (!current) return { ok: false, error: changeError('ENTITY_NOT_FOUND', change.entityId) };
    return { ok: true, applied: { label: current.label, data: current.data, deleted: true, changed: {} } };
  }
  const base = current ?? { label: change.label ?? labelIfNew, data: {}, deleted: false };
  const afterData = { label: change.label ?? base.label, data: { ...base.data, ...change.data } };
  const ops = change.operations ?? [];
  const replayed = applyOperations(afterData, ops);
  if (!replayed.ok) return replayed;
  const changed: PropertyValues = { ...change.data };
  for (const op of ops) {
    const p = operationProperty(op);
    if (p !== 'label') changed[p] = Object.hasOwn(replayed.state.data, p) ? (replayed.state.data[p] ?? null) : null;
  }
  if (change.label !== null || ops.some((o) => o.op === 'SET_LABEL')) changed.label = replayed.state.label;
  return { ok: true, applied: { label: replayed.state.label, data: replayed.state.data, deleted: false, changed } };
}

/** tryApplyChange for callers that have ruled errors out. */
export function applyChange(current: EntityState | null, change: ValidChange): Applied {
  const r = tryApplyChange(current, change);
  if (!r.ok) throw new Error(`applyChange: ${r.error.message}`);
  return r.applied;
}

/**
 * The properties a change overwrites, for conflict purposes (`label` included when it sets
 * one). List and counter operations merge, so they are not listed: they never conflict.
 */
export function touchedProperties(change: Pick<ValidChange, 'action' | 'data' | 'label' | 'operations'>): string[] | 'ALL' {
  if (change.action === 'DELETE') return 'ALL';
  const props = new Set(Object.keys(change.data));
  if (change.label !== null) props.add('label');
  for (const op of change.operations ?? []) if (isOverwrite(op)) props.add(operationProperty(op));
  return [...props];
}
