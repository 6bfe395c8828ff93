import { sameJson } from './json.js';
import type { ConflictType, JsonValue, PropertyValues } from './types.js';

export interface ConflictVerdict {
  conflict: ConflictType | null;
  conflictingProperties: string[];
}

/**
 * DESIGN step 4. `touched` are the properties the incoming change sets ('ALL' for a delete);
 * `unseen` lists, per server version the author had not seen, the properties it set.
 * No unseen versions: no conflict. Some, none sharing a property: SOFT. Sharing: HARD.
 */
export function classifyConflict(touched: readonly string[] | 'ALL', unseen: readonly (readonly string[])[]): ConflictVerdict {
  if (unseen.length === 0) return { conflict: null, conflictingProperties: [] };
  const changedByOthers = new Set(unseen.flat());
  const shared = touched === 'ALL' ? [...changedByOthers] : touched.filter((p) => changedByOthers.has(p));
  const conflictingProperties = [...new Set(shared)].sort();
  return { conflict: conflictingProperties.length > 0 ? 'HARD' : 'SOFT', conflictingProperties };
}

const RANK: Record<ConflictType, number> = { SOFT: 1, HARD: 2 };

/** An entity keeps the strongest unresolved conflict. */
export function strongestConflict(a: ConflictType | null, b: ConflictType | null): ConflictType | null {
  if (a === null) return b;
  if (b === null) return a;
  return RANK[b] > RANK[a] ? b : a;
}

/**
 * The conflict of one change: a change that overwrites nothing (only list and counter
 * operations, which merge with whatever happened meanwhile) is never a conflict, not even
 * SOFT, so two editors adding children to one list concurrently see no conflict.
 */
export function conflictOfChange(touched: readonly string[] | 'ALL', unseen: readonly (readonly string[])[]): ConflictVerdict {
  if (touched !== 'ALL' && touched.length === 0) return { conflict: null, conflictingProperties: [] };
  return classifyConflict(touched, unseen);
}

/**
 * DESIGN step 4 as the write path asks it. `written` is what the change set, with the values it
 * leaves (Applied.changed); `unseen` is what each server version the author had not seen set
 * (EntityVersion.changed), oldest first. A property both sides set to the same value is not
 * shared: the change leaves what the latest unseen write of it left, so no one's write is lost.
 */
export function judgeConflict(touched: readonly string[] | 'ALL', written: PropertyValues, unseen: readonly PropertyValues[]): ConflictVerdict {
  const latest = new Map<string, JsonValue>();
  for (const v of unseen) for (const [p, value] of Object.entries(v)) latest.set(p, value);
  const lost = (p: string) => !(touched !== 'ALL' && Object.hasOwn(written, p) && sameJson(written[p], latest.get(p)));
  return conflictOfChange(
    touched,
    unseen.map((v) => Object.keys(v).filter(lost)),
  );
}
