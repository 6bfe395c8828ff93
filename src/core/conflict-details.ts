import type { ConflictType, JsonValue, PropertyValues, VersionSource } from './types.js';

/**
 * The competing values of an entity's open conflict, per conflicting property (what a reviewer
 * chooses between): the value now, every write of it since what the first conflicting author saw
 * (the authors' values among them), and the value before the conflict (what that author saw), each
 * with the version, device and time it comes from. Pure: src/sync/conflict-details.ts loads the
 * versions.
 */

/** A version as far as the details need it. */
export interface DetailRow {
  version: number;
  label: string;
  data: PropertyValues;
  changed: PropertyValues;
  deviceId: string | null;
  source: VersionSource;
  createdAt: Date;
}

/** An unresolved conflicting version: what it is about, and what its author had seen. */
export interface OpenConflict {
  version: number;
  conflict: ConflictType;
  conflictingProperties: readonly string[];
  branchId: string | null;
  trunkVersion: number | null;
  baseVersion: number | null;
}

/** One value of a property, and where it comes from. */
export interface PropertyValueAt {
  value: JsonValue | null;
  /** The version that wrote it (for `before`: the version the author saw). */
  version: number;
  deviceId: string | null;
  source: VersionSource;
  at: Date;
  /** This write is one of the open conflict's versions on this property: an author's value the conflict is about. */
  conflicting: boolean;
}

export interface ConflictDetail {
  property: string;
  now: PropertyValueAt;
  /** Null when the author saw nothing of the entity (a run that began with an offline create) or that version is out of reach. */
  before: PropertyValueAt | null;
  /** Every write of the property after `before`, oldest first (the newest MAX_DETAIL_VERSIONS versions are looked at). */
  writes: PropertyValueAt[];
}

/** How many of the newest versions are looked at for writes: a long-open conflict on a busy entity stays bounded. */
export const MAX_DETAIL_VERSIONS = 200;

/** The server version after which the author had not seen (DESIGN step 4): the trunk of a run, else the baseVersion. */
export function seenVersion(c: Pick<OpenConflict, 'branchId' | 'trunkVersion' | 'baseVersion'>): number {
  return c.branchId ? (c.trunkVersion ?? 0) : (c.baseVersion ?? 0);
}

const valueIn = (state: { label: string; data: PropertyValues }, property: string): JsonValue | null =>
  property === 'label' ? state.label : Object.hasOwn(state.data, property) ? (state.data[property] ?? null) : null;

/**
 * The details of each property of the open conflict, sorted by name. `rows` are the entity's
 * versions from the earliest seen version on (or the newest of them), oldest first; `current` is the
 * entity now. SOFT conflicts name no property, so they have no details.
 */
export function conflictDetails(current: { label: string; data: PropertyValues; version: number }, open: readonly OpenConflict[], rows: readonly DetailRow[]): ConflictDetail[] {
  const properties = [...new Set(open.flatMap((c) => c.conflictingProperties))].sort();
  const byVersion = new Map(rows.map((r) => [r.version, r]));
  return properties.map((property) => {
    const about = open.filter((c) => c.conflictingProperties.includes(property));
    const seen = Math.min(...about.map(seenVersion));
    const authors = new Set(about.map((c) => c.version));
    const at = (r: DetailRow, value: JsonValue | null): PropertyValueAt => ({ value, version: r.version, deviceId: r.deviceId, source: r.source, at: r.createdAt, conflicting: authors.has(r.version) });
    const writes = rows.filter((r) => r.version > seen && Object.hasOwn(r.changed, property)).map((r) => at(r, r.changed[property] ?? null));
    const seenRow = byVersion.get(seen);
    const latest = writes.at(-1) ?? null;
    const currentRow = byVersion.get(current.version);
    const nowValue = valueIn(current, property);
    if (!latest && !currentRow) throw new Error(`conflictDetails: version ${current.version} was not loaded`);
    // Now: the current value, from the last write of it (or, when none is in reach, the current version).
    const now: PropertyValueAt = latest ? { ...latest, value: nowValue } : at(currentRow!, nowValue);
    return { property, now, before: seenRow && seen > 0 ? { ...at(seenRow, valueIn(seenRow, property)), conflicting: false } : null, writes };
  });
}
