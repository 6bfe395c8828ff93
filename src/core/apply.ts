import type { EntityState, PropertyValues, ValidChange } from './types.js';

export interface Applied {
  label: string;
  data: PropertyValues;
  deleted: boolean;
  /** What the change itself set; `label` is present when the change set the label. */
  changed: PropertyValues;
}

/**
 * Applies a change on top of the *current* state, not the state its author saw, so nothing
 * another client wrote meanwhile is lost: only the properties the change sets are replaced.
 */
export function applyChange(current: EntityState | null, change: ValidChange): Applied {
  const changed: PropertyValues = { ...change.data };
  if (change.label !== null) changed.label = change.label;
  if (change.action === 'DELETE') {
    if (!current) throw new Error('applyChange: DELETE needs a current state');
    return { label: current.label, data: current.data, deleted: true, changed: {} };
  }
  const base = current ?? { label: change.label ?? '', data: {}, deleted: false };
  return {
    label: change.label ?? base.label,
    data: { ...base.data, ...change.data },
    deleted: false,
    changed,
  };
}

/** The properties a change touches for conflict purposes (`label` included when it sets one). */
export function touchedProperties(change: Pick<ValidChange, 'action' | 'data' | 'label'>): string[] | 'ALL' {
  if (change.action === 'DELETE') return 'ALL';
  const props = Object.keys(change.data);
  if (change.label !== null) props.push('label');
  return props;
}
