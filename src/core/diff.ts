import { sameJson } from './json.js';
import type { JsonValue, PropertyValues } from './types.js';

export interface PropertyDiff {
  property: string;
  old: JsonValue | null;
  new: JsonValue | null;
}

interface Snapshot {
  label: string;
  data: PropertyValues;
}

/** Properties (and `label`) that differ between two states, with old and new values, sorted. */
export function diffStates(before: Snapshot | null, after: Snapshot): PropertyDiff[] {
  const out: PropertyDiff[] = [];
  if (!before || before.label !== after.label) out.push({ property: 'label', old: before?.label ?? null, new: after.label });
  const keys = new Set([...Object.keys(before?.data ?? {}), ...Object.keys(after.data)]);
  for (const k of [...keys].sort()) {
    // Own properties only: a property named like an Object.prototype member is still data.
    const o = before && Object.hasOwn(before.data, k) ? (before.data[k] ?? null) : null;
    const n = Object.hasOwn(after.data, k) ? (after.data[k] ?? null) : null;
    // An absent property and one set to null read the same to a client, so they are not a diff.
    if (!sameJson(o, n)) out.push({ property: k, old: o, new: n });
  }
  return out;
}
