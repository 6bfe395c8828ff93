import { hasNul } from './json.js';
import type { ChangeError, JsonValue, PropertyValues } from './types.js';
import { changeError } from './errors.js';

/**
 * Subsets (DESIGN "Subsets: each device its share"): a token may carry rules on declared
 * properties; it then sees only the entities whose properties match all of them. These are the
 * pure rules: what a rule matches, and how an entity moves in or out of a token's share when a
 * version changes it or an admin changes the rules. src/sync writes those moves as rows of the
 * token's subset log in the transaction that makes them (PowerSync's PUT/REMOVE per bucket, with
 * one bucket per token), and evaluates the same match in SQL (src/sync/subset-sql.ts) where a
 * whole dataset is read at once.
 */

/** One rule: the entity's `property` holds one of `values`. */
export interface SubsetRule {
  property: string;
  values: readonly string[];
}

/** Every rule must hold. An empty list matches every entity. */
export type Subset = readonly SubsetRule[];

/** Bounds of a subset, so a token's rules stay small enough to check on every event and write. */
export const SUBSET_LIMITS = { maxRules: 8, maxValues: 100, maxValueLength: 200 } as const;

/** Integers up to 15 digits have one text form in JavaScript and in Postgres (no exponent, no rounding). */
const MAX_KEY_INTEGER = 1e15;

/**
 * The text a property value is matched by: a string as it is, a boolean as `true`/`false`, an
 * integer of up to 15 digits in decimal (`42` matches "42"). Anything else (missing, null,
 * fractions, lists, objects) has none and matches no rule. src/sync/subset-sql.ts is the same
 * rule in SQL; a test holds the two together.
 */
export function subsetKey(value: JsonValue | undefined): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) < MAX_KEY_INTEGER) return String(value);
  return null;
}

/** True when `data` matches every rule of `subset`; a token without a subset (null) sees everything. */
export function inSubset(subset: Subset | null, data: PropertyValues): boolean {
  if (subset === null) return true;
  return subset.every((rule) => {
    const key = subsetKey(Object.hasOwn(data, rule.property) ? data[rule.property] : undefined);
    return key !== null && rule.values.includes(key);
  });
}

/** An entity as the subset rules see it: its properties, and whether it is deleted. */
export interface SubsetState {
  data: PropertyValues;
  deleted: boolean;
}

/**
 * How an entity moves for one token between two moments: `before` under the rules then, `after`
 * under the rules now (null: no entity, or nothing held, as for a token just made).
 * - a version changing an entity: (rules, rules, state before it, state after it);
 * - an admin changing a token's rules: (old rules, new rules, state, state);
 * - a token made with a subset: (rules, rules, null, state).
 * ENTERED and STAYED hand the entity's state to the device; LEFT tells it to drop the entity;
 * OUTSIDE is none of its business. A deleted entity never enters (a device that never had it needs
 * no tombstone), but one the device holds stays until it leaves.
 */
export type Movement = 'ENTERED' | 'STAYED' | 'LEFT' | 'OUTSIDE';

export function movement(oldRules: Subset | null, newRules: Subset | null, before: SubsetState | null, after: SubsetState | null): Movement {
  const was = before !== null && inSubset(oldRules, before.data);
  const is = after !== null && inSubset(newRules, after.data);
  if (was && is) return 'STAYED';
  if (was) return 'LEFT';
  if (is && !after.deleted) return 'ENTERED';
  return 'OUTSIDE';
}

/** A token with a subset of some datasets (a row of `api_tokens`), as a version's moves are judged by it. */
export interface SubsetToken {
  tokenId: string;
  /** Dataset names it may use. */
  datasets: readonly string[];
  subset: Subset;
}

/** A row of a token's subset log that a version writes: the device gets the version, or drops the entity. */
export interface SubsetRow {
  tokenId: string;
  datasetId: string;
  entityId: string;
  /** The version that causes it (its position is the version's). */
  version: number;
  kind: 'VERSION' | 'LEFT';
}

/**
 * The subset log rows one version writes, whoever wrote it (a batch, a flush, a reviewer): for each
 * subset token of its dataset, core `movement(rules, rules, state before, state after)`; ENTERED
 * and STAYED hand the version to the device (a VERSION row holds the full state, so an entity
 * entering by an edit needs nothing more), LEFT drops it, OUTSIDE writes nothing.
 */
export function versionMoves(
  tokens: readonly SubsetToken[],
  dataset: { id: string; name: string },
  entityId: string,
  before: SubsetState | null,
  after: SubsetState,
  version: number,
): SubsetRow[] {
  const rows: SubsetRow[] = [];
  for (const token of tokens) {
    if (!token.datasets.includes(dataset.name)) continue;
    const move = movement(token.subset, token.subset, before, after);
    if (move === 'OUTSIDE') continue;
    rows.push({ tokenId: token.tokenId, datasetId: dataset.id, entityId, version, kind: move === 'LEFT' ? 'LEFT' : 'VERSION' });
  }
  return rows;
}

/**
 * What a page tells a device, from its rows in log order. An entity's last row says where it
 * stands: LEFT drops it (after the page's versions are applied). An admin who moves a device away
 * from an entity and back before it pulls hands it nothing: a LEFT by a reassignment carries the
 * version the device held, and an ENTERED of that same version later in the page undoes it, so no
 * version is handed twice to a device that never dropped it. (Across pages the device did drop it,
 * and gets it again.)
 */
/** A row of a token's subset log as a pull reads it (db/subsets.ts). */
export type LogRow = { kind: 'VERSION' | 'ENTERED' | 'LEFT'; entityId: string; versionSeq: number | null };

export function netOfPage(rows: readonly LogRow[]): { versionSeqs: number[]; enteredSeqs: number[]; left: string[] } {
  // A page of versions only (every page without a subset): nothing to net.
  if (rows.every((r) => r.kind === 'VERSION')) return { versionSeqs: rows.map((r) => r.versionSeq!), enteredSeqs: [], left: [] };
  // No LEFT (a first sync of a share: all ENTERED): nothing to net either, each row stands.
  if (rows.every((r) => r.kind !== 'LEFT')) {
    const versionSeqs: number[] = [];
    const enteredSeqs: number[] = [];
    for (const r of rows) (r.kind === 'VERSION' ? versionSeqs : enteredSeqs).push(r.versionSeq!);
    return { versionSeqs, enteredSeqs, left: [] };
  }
  const stand: (LogRow | null)[] = [];
  /** An entity whose latest row so far is a LEFT by a reassignment: where it stands. */
  const leftAt = new Map<string, number>();
  for (const row of rows) {
    const at = leftAt.get(row.entityId);
    leftAt.delete(row.entityId);
    if (row.kind === 'ENTERED' && at !== undefined && stand[at]!.versionSeq === row.versionSeq) {
      stand[at] = null;
      continue;
    }
    if (row.kind === 'LEFT' && row.versionSeq !== null) leftAt.set(row.entityId, stand.length);
    stand.push(row);
  }
  const kept = stand.filter((r): r is LogRow => r !== null);
  const lastKind = new Map(kept.map((r) => [r.entityId, r.kind]));
  return {
    versionSeqs: kept.filter((r) => r.kind === 'VERSION').map((r) => r.versionSeq!),
    enteredSeqs: kept.filter((r) => r.kind === 'ENTERED').map((r) => r.versionSeq!),
    left: [...lastKind].filter(([, kind]) => kind === 'LEFT').map(([id]) => id),
  };
}

/** A subset as an admin sends it, before it is checked. */
export interface SubsetRuleInput {
  property: string;
  values: readonly string[];
}

/**
 * Checks and normalizes a subset for a token of the datasets whose declared properties are
 * given: at most SUBSET_LIMITS.maxRules rules, each on a different property declared by every
 * one of those datasets (UNKNOWN_PROPERTY otherwise: a rule on a property a dataset lacks would
 * quietly hide that whole dataset), with 1 to maxValues values of 1 to maxValueLength characters
 * (duplicates dropped, order kept).
 */
export function validateSubset(input: readonly SubsetRuleInput[], declared: readonly (readonly string[])[]): { ok: true; subset: SubsetRule[] } | { ok: false; error: ChangeError } {
  const fail = (code: 'INVALID_SUBSET' | 'UNKNOWN_PROPERTY', detail: string) => ({ ok: false as const, error: changeError(code, detail) });
  if (input.length > SUBSET_LIMITS.maxRules) return fail('INVALID_SUBSET', `${input.length} rules; at most ${SUBSET_LIMITS.maxRules}`);
  const seen = new Set<string>();
  const subset: SubsetRule[] = [];
  for (const rule of input) {
    const property = String(rule.property);
    if (hasNul(property) || property.length > 64) return fail('INVALID_SUBSET', 'a rule names a property that is not a property name');
    if (seen.has(property)) return fail('INVALID_SUBSET', `two rules on "${property}": put their values in one rule`);
    seen.add(property);
    if (declared.some((properties) => !properties.includes(property))) return fail('UNKNOWN_PROPERTY', property);
    const values = [...new Set(rule.values.map(String))];
    if (values.length === 0) return fail('INVALID_SUBSET', `the rule on "${property}" has no values (it would match nothing)`);
    if (values.length > SUBSET_LIMITS.maxValues) return fail('INVALID_SUBSET', `the rule on "${property}" has ${values.length} values; at most ${SUBSET_LIMITS.maxValues}`);
    const bad = values.find((v) => v.length === 0 || v.length > SUBSET_LIMITS.maxValueLength || hasNul(v));
    if (bad !== undefined) return fail('INVALID_SUBSET', `a value of the rule on "${property}" is not 1 to ${SUBSET_LIMITS.maxValueLength} characters of text`);
    subset.push({ property, values });
  }
  return { ok: true, subset };
}
