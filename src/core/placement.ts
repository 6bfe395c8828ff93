import { changeError } from './errors.js';
import { isOverwrite, operationProperty } from './operations.js';
import type { ChangeError, ConflictType, EntityState, PropertyValues, ValidChange, VersionSource } from './types.js';

/**
 * What the server knows of one offline run (branch) when a change of it arrives, as seen from the
 * change's dataset (a run of another dataset, even with the same id, is not this one).
 */
export interface BranchFacts {
  applied: readonly {
    entityId: string;
    version: number;
    /** The client baseVersion: the change's position in its run (0 for an offline create). */
    baseVersion: number;
    trunkVersion: number | null;
    conflict: ConflictType | null;
    source: VersionSource;
    changed: PropertyValues;
    /** The device that sent it: a run belongs to the device that began it. */
    deviceId: string | null;
  }[];
  held: readonly { entityId: string; baseVersion: number; trunkVersion: number | null; changeId: string; deviceId: string | null }[];
}

export type Placement =
  /** Apply now. `asUpdate`: a create whose entity a forced change of its own run already made. */
  | { kind: 'apply'; asUpdate: boolean }
  | { kind: 'hold'; waitsFor: number }
  | { kind: 'reject'; error: ChangeError };

/** A change's position in its run, in the client's numbering: an offline create is 0. */
export function runPosition(change: Pick<ValidChange, 'action' | 'baseVersion'>): number {
  return change.action === 'CREATE' ? 0 : (change.baseVersion ?? 0);
}

/** The first change of a run is made on the trunk; later ones on their predecessor. */
export function isRunStart(change: Pick<ValidChange, 'action' | 'baseVersion' | 'trunkVersion' | 'branchId'>): boolean {
  return !change.branchId || change.action === 'CREATE' || change.baseVersion === change.trunkVersion;
}

/**
 * A run belongs to the device that began it: a change of any other device (a change without a
 * deviceId counting as a device of its own) may not name it. Checked before anything else, so such a
 * change learns nothing more of the run than that it is not its own.
 */
export function isOwnRun(change: Pick<ValidChange, 'deviceId'>, branch: BranchFacts): boolean {
  return [...branch.applied, ...branch.held].every((c) => c.deviceId === change.deviceId);
}

/** Inconsistent run input, whatever the entity's state. */
export function checkBranch(change: ValidChange, branch: BranchFacts): ChangeError | null {
  if (!isOwnRun(change, branch)) return changeError('BRANCH_OF_OTHER_DEVICE', change.branchId ?? '');
  const all = [...branch.applied, ...branch.held];
  if (all.some((c) => c.entityId !== change.entityId)) return changeError('BRANCH_ON_OTHER_ENTITY', change.branchId ?? '');
  const trunks = new Set(all.map((c) => c.trunkVersion));
  if (trunks.size > 0 && !trunks.has(change.trunkVersion)) {
    return changeError('BRANCH_TRUNK_CHANGED', `the run began at trunkVersion ${[...trunks][0] ?? 'null'}, this change says ${change.trunkVersion ?? 'null'}`);
  }
  const position = runPosition(change);
  if (all.some((c) => c.baseVersion === position)) return changeError('BRANCH_POSITION_TAKEN', `baseVersion ${position}`);
  return null;
}

/**
 * DESIGN step 2: apply now when the change is made on a version the server knows (no branch,
 * or first of its run) or its predecessor in the run is applied; otherwise hold it.
 */
export function placeChange(change: ValidChange, entity: EntityState | null, branch: BranchFacts | null): Placement {
  const reject = (error: ChangeError): Placement => ({ kind: 'reject', error });
  if (change.action === 'CREATE') {
    if (change.trunkVersion !== null) return reject(changeError('MALFORMED_CHANGE', 'a create begins its run: it has no trunkVersion'));
    if (!entity) return { kind: 'apply', asUpdate: false };
    const forcedByOwnRun = branch?.applied.some((v) => v.entityId === change.entityId && v.source === 'FORCED');
    if (forcedByOwnRun) return entity.deleted ? reject(changeError('ENTITY_DELETED', change.entityId)) : { kind: 'apply', asUpdate: true };
    return reject(changeError('ENTITY_EXISTS', change.entityId));
  }

  const base = change.baseVersion ?? 0;
  if (!entity) {
    // A run that began with an offline create: its updates may arrive before the create.
    if (change.branchId && change.trunkVersion === null) return { kind: 'hold', waitsFor: base - 1 };
    return reject(changeError('ENTITY_NOT_FOUND', change.entityId));
  }
  if (entity.deleted) return reject(changeError('ENTITY_DELETED', change.entityId));
  if (change.trunkVersion !== null && change.trunkVersion > entity.version) {
    return reject(changeError('TRUNK_VERSION_AHEAD', `trunkVersion ${change.trunkVersion}, server version ${entity.version}`));
  }
  if (isRunStart(change)) {
    if (base > entity.version) return reject(changeError('BASE_VERSION_AHEAD', `baseVersion ${base}, server version ${entity.version}`));
    return { kind: 'apply', asUpdate: false };
  }
  const predecessor = branch?.applied.find((v) => v.baseVersion === base - 1);
  return predecessor ? { kind: 'apply', asUpdate: false } : { kind: 'hold', waitsFor: base - 1 };
}

/**
 * The version numbers after which server versions were unseen by the author: the trunk for a
 * run (its own versions excepted by the caller), the baseVersion without a run, nothing seen
 * for an offline create applied over its forced run.
 */
export function seenUpTo(change: ValidChange, asUpdate: boolean): number {
  if (asUpdate) return 0;
  if (!change.branchId) return change.baseVersion ?? 0;
  return change.trunkVersion ?? 0;
}

/**
 * A change applied after a later change of its own run (which was forced) goes beneath it:
 * what the later changes set keeps its value. Returns the change without those properties
 * and whether any were later in the run.
 */
export function beneathLaterChanges(change: ValidChange, branch: BranchFacts | null): { change: ValidChange; beneath: boolean } {
  const position = runPosition(change);
  const later = branch?.applied.filter((v) => v.entityId === change.entityId && v.baseVersion > position) ?? [];
  if (later.length === 0) return { change, beneath: false };
  const kept = new Set(later.flatMap((v) => Object.keys(v.changed)));
  const data = Object.fromEntries(Object.entries(change.data).filter(([k]) => !kept.has(k)));
  const label = kept.has('label') ? null : change.label;
  // Overwrites of what later changes set are dropped; list and counter operations still merge.
  const operations = change.operations?.filter((op) => !(isOverwrite(op) && kept.has(operationProperty(op))));
  return { change: { ...change, data, label, ...(operations ? { operations } : {}) }, beneath: true };
}

export type AuthorView = { kind: 'version'; version: number } | { kind: 'unavailable'; reason: string };

/**
 * Which server version equals what the author saw (0: nothing, an offline create), or why
 * none does: then baseDiff is withheld rather than shown wrong.
 */
export function authorView(change: ValidChange, source: VersionSource, asUpdate: boolean, branch: BranchFacts | null): AuthorView {
  if (source === 'FORCED') return { kind: 'unavailable', reason: 'applied after the hold timeout without its predecessor: the author view is unknown' };
  if (asUpdate || change.action === 'CREATE') return { kind: 'version', version: 0 };
  if (isRunStart(change)) return { kind: 'version', version: change.baseVersion ?? 0 };
  const position = runPosition(change);
  const earlier = (branch?.applied ?? []).filter((v) => v.baseVersion < position);
  if (earlier.some((v) => v.source === 'FORCED')) return { kind: 'unavailable', reason: 'an earlier change of the run was forced out of order' };
  if (earlier.some((v) => v.conflict !== null)) return { kind: 'unavailable', reason: 'an earlier change of the run was applied in conflict' };
  const predecessor = earlier.find((v) => v.baseVersion === position - 1);
  return predecessor ? { kind: 'version', version: predecessor.version } : { kind: 'unavailable', reason: 'the predecessor of this change is not applied' };
}

/** The version that made an entity (its create, or a forced change of a run whose create never came). */
export interface EntityOrigin {
  version: number;
  action: 'CREATE' | 'UPDATE' | 'DELETE';
  source: VersionSource;
  branchId: string | null;
  conflict: ConflictType | null;
  changed: PropertyValues;
  deviceId: string | null;
}

/**
 * A run that began offline (trunkVersion null) counts its entity's create as its own first change,
 * when that create is its own device's (a run belongs to the device that began it).
 */
export function buildsOnEntityCreate(run: { trunkVersion: number | null; deviceId: string | null }, origin: Pick<EntityOrigin, 'action' | 'deviceId'> | null): boolean {
  return run.trunkVersion === null && origin?.action === 'CREATE' && origin.deviceId === run.deviceId;
}

/**
 * DESIGN step 2: a run that began with an offline create (trunkVersion null) builds on its
 * entity's create, whether or not the create carried the run's branchId (ODK Collect sends
 * creates without one). Such a create joins the run's facts as its position 0, so the run's first
 * update finds its predecessor, sees its own create as seen, and reports it as what it was
 * applied against. Only a create of the run's own device: another device's create of that entity
 * is not the run's (a run belongs to the device that began it), so the run keeps waiting for its
 * own.
 */
export function withRunCreate(change: Pick<ValidChange, 'entityId' | 'branchId' | 'trunkVersion' | 'deviceId'>, branch: BranchFacts | null, origin: EntityOrigin | null): BranchFacts | null {
  if (!change.branchId || !origin || !buildsOnEntityCreate(change, origin) || origin.branchId === change.branchId) return branch;
  const facts = branch ?? { applied: [], held: [] };
  if (facts.applied.some((v) => v.entityId === change.entityId && v.baseVersion === 0)) return facts;
  const create = { entityId: change.entityId, version: origin.version, baseVersion: 0, trunkVersion: null, conflict: origin.conflict, source: origin.source, changed: origin.changed, deviceId: origin.deviceId };
  return { applied: [...facts.applied, create], held: facts.held };
}

/**
 * A create that names no run, for an entity whose run began offline (trunkVersion null) and is
 * already known to the server (held, or forced into existence): it is that run's create (DESIGN
 * steps 2 and 6), so it takes the run's id and releases it, or goes beneath its forced changes
 * instead of being "already exists". `origin`: the version that made the entity, if it exists;
 * `runs`: the entity's runs that began with an offline create, oldest first, with their devices.
 * Only a run of the create's own device: another device's run is never continued by this create.
 */
export function adoptRun(change: ValidChange, origin: EntityOrigin | null, runs: readonly { branchId: string; deviceId: string | null }[]): ValidChange {
  // An entity made by a create has its create: this one is simply "already exists".
  if (change.action !== 'CREATE' || change.branchId !== null || origin?.action === 'CREATE') return change;
  const own = runs.find((r) => r.deviceId === change.deviceId);
  return own ? { ...change, branchId: own.branchId, trunkVersion: null } : change;
}

/**
 * Server versions the author had not seen (DESIGN step 4): those after what it saw, except the
 * versions of its own run (its create included). A create applied beneath its forced run has
 * seen nothing, its own run's versions included: the overlap is checked like any conflict.
 */
export function unseenVersions<V extends { version: number }>(change: ValidChange, asUpdate: boolean, branch: BranchFacts | null, versions: readonly V[]): V[] {
  const after = seenUpTo(change, asUpdate);
  const own = new Set((asUpdate || !change.branchId ? [] : (branch?.applied ?? [])).filter((v) => v.entityId === change.entityId).map((v) => v.version));
  return versions.filter((v) => v.version > after && !own.has(v.version));
}

/**
 * `appliedOn` of the version a change makes (DESIGN step 2): the server version it was applied
 * against. Without a run, its baseVersion; a run's first change, the trunk; a later change, its
 * predecessor's version, or when that is missing (forced, or beneath a forced successor) the
 * closest earlier change of its run on the server, else the trunk. A create: none.
 */
export function appliedOnVersion(change: ValidChange, asUpdate: boolean, branch: BranchFacts | null): number | null {
  if (change.action === 'CREATE' || asUpdate) return null;
  if (!change.branchId) return change.baseVersion;
  if (isRunStart(change)) return change.trunkVersion;
  const position = runPosition(change);
  const earlier = (branch?.applied ?? []).filter((v) => v.entityId === change.entityId && v.baseVersion < position);
  const closest = earlier.reduce<(typeof earlier)[number] | null>((best, v) => (best === null || v.baseVersion > best.baseVersion ? v : best), null);
  return closest?.version ?? change.trunkVersion;
}
