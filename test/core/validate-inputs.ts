import { DEFAULT_LIMITS, type ChangeError, type ChangeInput, type Limits, type ValidChange } from '../../src/core/types.js';
import { validateChange } from '../../src/core/validate.js';

/** The changes the validate tests start from, and how they read validateChange's verdict. */

export const ID = '3f1c2a4e-9b7d-4c1e-8a2f-0d9e8b7c6a51';
export const ENTITY = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
export const BRANCH = '0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d';

export const create = (over: Partial<ChangeInput> = {}): ChangeInput => ({ id: ID, dataset: 'trees', entityId: ENTITY, action: 'CREATE', label: 'Oak', data: { species: 'oak' }, ...over });
export const update = (over: Partial<ChangeInput> = {}): ChangeInput => ({ id: ID, dataset: 'trees', entityId: ENTITY, action: 'UPDATE', baseVersion: 3, data: { height: 12 }, ...over });
export const remove = (over: Partial<ChangeInput> = {}): ChangeInput => ({ id: ID, dataset: 'trees', entityId: ENTITY, action: 'DELETE', baseVersion: 3, ...over });

/** Untyped fields, for inputs a typed client could not build but a raw request can. */
export const loose = (input: ChangeInput, over: Record<string, unknown>): ChangeInput => ({ ...input, ...over }) as ChangeInput;

export function accepted(input: ChangeInput, limits: Limits = DEFAULT_LIMITS): ValidChange {
  const v = validateChange(input, limits);
  if (!v.ok) throw new Error(`expected acceptance, got ${v.error.code}: ${v.error.message}`);
  return v.change;
}

export function rejected(input: ChangeInput, limits: Limits = DEFAULT_LIMITS): ChangeError {
  const v = validateChange(input, limits);
  if (v.ok) throw new Error(`expected rejection, got ${JSON.stringify(v.change)}`);
  return v.error;
}
