import type { ValidChange } from '../../src/core/types.js';

/** A validated UPDATE on baseVersion 1 of one entity, with no run: override what a test needs. */
export function validChange(over: Partial<ValidChange> = {}): ValidChange {
  return {
    id: '3f1c2a4e-9b7d-4c1e-8a2f-0d9e8b7c6a51',
    deviceId: null,
    dataset: 'trees',
    entityId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
    action: 'UPDATE',
    label: null,
    data: {},
    baseVersion: 1,
    trunkVersion: null,
    branchId: null,
    ...over,
  };
}

/** Freezes a value deeply, so a test fails if the code under test mutates its input. */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
