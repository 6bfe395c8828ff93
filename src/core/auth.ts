/**
 * Who may do what. Pure rules over a principal (the token a request authenticated with, or the
 * configured anonymous role); the GraphQL layer maps them to Pothos auth scopes.
 */

import type { Subset } from './subsets.js';

export const ROLES = ['collector', 'reviewer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  /** The API token's id; null for configured anonymous access. */
  tokenId: string | null;
  role: Role;
  /** The only device this principal may submit and pull as; null: any device. */
  deviceId: string | null;
  /** Dataset names this principal may use; null: every dataset. */
  datasets: readonly string[] | null;
  /** The token's subset of those datasets (core/subsets.ts); null: the whole datasets. */
  subset: Subset | null;
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Collectors (field devices) submit; admins may do anything. Reviewers only read and resolve. */
export function maySubmit(p: Principal): boolean {
  return p.role === 'collector' || p.role === 'admin';
}

/** Reviewers read everything in their datasets (entities, versions, branches, the backlog). */
export function mayReview(p: Principal): boolean {
  return p.role === 'reviewer' || p.role === 'admin';
}

export function isAdmin(p: Principal): boolean {
  return p.role === 'admin';
}

/** A dataset outside the principal's list is refused, also when it does not exist. */
export function mayUseDataset(p: Principal, name: string | null | undefined): boolean {
  if (p.datasets === null) return true;
  return name != null && p.datasets.includes(name);
}

/** Filters that span every dataset (a backlog without a dataset) need an unrestricted principal. */
export function mayUseAllDatasets(p: Principal): boolean {
  return p.datasets === null;
}

/** A device-bound token never acts as, or sees the local ids of, another device. */
export function mayActAsDevice(p: Principal, deviceId: string | null | undefined): boolean {
  return p.deviceId === null || deviceId == null || deviceId === p.deviceId;
}

/**
 * A recorded change (change(id)): reviewers see those of their datasets; a device-bound collector
 * only its own device's; a collector with a subset only its own device's too (another device's
 * change may be about an entity outside its share), so none without a device. Null (unknown)
 * belongs to no dataset.
 */
export function maySeeChange(p: Principal, owner: { dataset: string | null; deviceId: string | null } | null): boolean {
  const anyDevice = p.deviceId === null && (p.subset?.length ?? 0) === 0;
  return mayUseDataset(p, owner?.dataset) && (mayReview(p) || anyDevice || (p.deviceId !== null && owner?.deviceId === p.deviceId));
}

/**
 * The one rule on every path to an entity (DESIGN "Processing a change": seen from a dataset, an
 * entity of another does not exist): an entity is reached only from its own dataset, and only by a
 * principal that may use that dataset. `from` is the dataset of whatever leads to it (an event, a
 * held change, a change's result, a version, a run); null only where the path is the entity's own id
 * (entity(id), resolveConflict), whose dataset the principal's rights are checked against alone.
 * An entity that does not exist (null) is reached by no one.
 */
export function mayReachEntity(p: Principal, entityDataset: string | null | undefined, from: string | null): boolean {
  return entityDataset != null && (from === null || from === entityDataset) && mayUseDataset(p, entityDataset);
}

/**
 * The run (branchId) of a change, the capability of continuing it: reviewers, admins and collectors
 * that act for any device see every run; a device-bound collector only its own device's, so no device
 * learns another's run ids from events or pulls.
 */
export function maySeeRunOf(p: Principal, deviceId: string | null | undefined): boolean {
  return mayReview(p) || p.deviceId === null || deviceId === p.deviceId;
}

/** Every change of a batch must be in the principal's datasets and, for a device token, its device. */
export function maySubmitAll(p: Principal, changes: readonly { dataset?: string | null; deviceId?: string | null }[]): boolean {
  return maySubmit(p) && changes.every((c) => mayUseDataset(p, c.dataset) && (p.deviceId === null || c.deviceId === p.deviceId));
}

/**
 * Subsets are for field devices: only a collector token bound to a list of datasets takes one.
 * A reviewer or admin reads and resolves whole datasets, and a subset over every dataset could
 * name a property that a dataset made later does not declare.
 */
export function mayHaveSubset(p: Pick<Principal, 'role' | 'datasets'>): boolean {
  return p.role === 'collector' && p.datasets !== null && p.datasets.length > 0;
}
