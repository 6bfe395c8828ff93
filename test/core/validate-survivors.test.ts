/**
 * Rules of validate.ts that the first Stryker run showed no test pinned down: each test asserts the
 * exact error (code and message) or the exact shape a mutant of the rule would change.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, ERROR_CODES, type ChangeError, type ChangeInput, type ErrorCode, type Limits, type OperationInput } from '../../src/core/types.js';
import {
  MAX_ID_LENGTH,
  deepestValue,
  isUuid,
  isValidDeviceId,
  isValidLocalId,
  normalizePayload,
  undeclaredProperties,
} from '../../src/core/validate.js';
import { BRANCH, ID, accepted, create, loose, rejected, remove, update } from './validate-inputs.js';

/** The exact error changeError builds for a code and a detail. */
const err = (code: ErrorCode, detail?: string): ChangeError => ({ code, message: detail ? `${ERROR_CODES[code]}: ${detail}` : ERROR_CODES[code] });

describe('ids that are not strings', () => {
  it('isUuid refuses an array whose text is a UUID', () => {
    expect(isUuid([ID])).toBe(false);
    expect(isUuid({ toString: () => ID })).toBe(false);
  });
  it('isValidDeviceId and isValidLocalId refuse arrays (they have a length, but are not ids)', () => {
    expect(isValidDeviceId(['d'])).toBe(false);
    expect(isValidLocalId(['x'])).toBe(false);
    expect(isValidLocalId({ length: 1 })).toBe(false);
  });
  it('a change whose deviceId is an array is INVALID_DEVICE_ID', () => {
    expect(rejected(loose(update(), { deviceId: ['d'] })).code).toBe('INVALID_DEVICE_ID');
  });
  it('a change whose localId is an array is MALFORMED_ID', () => {
    expect(rejected(loose(update({ deviceId: 'dev-1' }), { localId: ['x'] }))).toEqual(err('MALFORMED_ID', 'localId must be 1-200 characters'));
  });
});

describe('localId bounds', () => {
  const withLocal = (localId: string) => update({ deviceId: 'dev-1', localId });
  it(`accepts 1 and exactly ${MAX_ID_LENGTH} characters`, () => {
    expect(accepted(withLocal('x')).localId).toBe('x');
    expect(accepted(withLocal('x'.repeat(MAX_ID_LENGTH))).localId).toBe('x'.repeat(MAX_ID_LENGTH));
    expect(isValidLocalId('x'.repeat(MAX_ID_LENGTH))).toBe(true);
  });
  it(`refuses ${MAX_ID_LENGTH + 1} characters, an empty one and a NUL, with the exact message`, () => {
    for (const bad of ['x'.repeat(MAX_ID_LENGTH + 1), '', 'a\u0000b']) {
      expect(isValidLocalId(bad)).toBe(false);
      expect(rejected(withLocal(bad))).toEqual(err('MALFORMED_ID', 'localId must be 1-200 characters'));
    }
  });
  it('a localId without an entityId is MISSING_ENTITY_ID naming the unknown localId', () => {
    expect(rejected(update({ deviceId: 'dev-1', localId: 'tree-7', entityId: null }))).toEqual(err('MISSING_ENTITY_ID', 'localId "tree-7" is not known'));
    expect(rejected(update({ entityId: null }))).toEqual(err('MISSING_ENTITY_ID'));
  });
});

describe('deepestValue on raw operations', () => {
  it('skips null and non-object operations instead of reading .value of them', () => {
    expect(deepestValue({ data: null, operations: [null, 5, 'x'] as unknown as OperationInput[] })).toBeNull();
  });
  it('ignores a deep .value hung on a function (not a JSON operation)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    const f = Object.assign(() => undefined, { value: deep });
    expect(deepestValue({ data: null, operations: [f] as unknown as OperationInput[] })).toBeNull();
    expect(deepestValue({ data: null, operations: [{ op: 'SET', property: 'p', value: deep }] })).toBe('operation 1 nests deeper than 32 levels');
  });
});

describe('normalizePayload: localId and operations only when used', () => {
  it('carries localId and operations when present', () => {
    const ops: OperationInput[] = [{ op: 'SET', property: 'height', value: 3 }];
    const p = normalizePayload(update({ deviceId: 'dev-1', localId: 'tree-7', operations: ops }));
    expect(p.localId).toBe('tree-7');
    expect(p.operations).toEqual(ops);
  });
  it('leaves both keys out when absent', () => {
    const p = normalizePayload(update());
    expect(Object.hasOwn(p, 'localId')).toBe(false);
    expect(Object.hasOwn(p, 'operations')).toBe(false);
  });
  it('the accepted change has no localId key when none was sent', () => {
    expect(Object.hasOwn(accepted(update()), 'localId')).toBe(false);
  });
});

describe('data that is not an object', () => {
  it.each([['text', 'abc'], ['number', 5], ['boolean', true]])('a %s is MALFORMED_CHANGE', (_, data) => {
    expect(rejected(update({ data }))).toEqual(err('MALFORMED_CHANGE', 'data must be an object of property values'));
  });
});

describe('unstorable text', () => {
  it('a NUL in a property key is UNKNOWN_PROPERTY, quoted with the NUL replaced', () => {
    expect(rejected(update({ data: { 'a\u0000b': 1 } }))).toEqual(err('UNKNOWN_PROPERTY', '"a\uFFFDb" holds a NUL character'));
  });
  it('a lone surrogate in a label is INVALID_LABEL', () => {
    expect(rejected(create({ label: 'Oak \uD800' }))).toEqual(err('INVALID_LABEL', 'a lone surrogate (not valid Unicode)'));
    expect(rejected(update({ label: '\uDC00 Oak' }))).toEqual(err('INVALID_LABEL', 'a lone surrogate (not valid Unicode)'));
    expect(accepted(create({ label: 'Oak \uD83C\uDF33' })).label).toBe('Oak \uD83C\uDF33');
  });
});

describe('run length', () => {
  const short: Limits = { ...DEFAULT_LIMITS, maxRunLength: 2 };
  it('is not checked for an update outside a branch', () => {
    expect(accepted(update({ baseVersion: 5 }), short).baseVersion).toBe(5);
  });
  it('is not checked for a create, even in a branch', () => {
    expect(accepted(create({ branchId: BRANCH, baseVersion: 5 }), short).branchId).toBe(BRANCH);
  });
  it('is checked for an update in a branch', () => {
    expect(rejected(update({ branchId: BRANCH, baseVersion: 5 }), short)).toEqual(err('RUN_TOO_LONG', 'change 5 of the run, limit 2'));
  });
});

describe('operations', () => {
  it('a DELETE with operations is INVALID_OPERATION', () => {
    expect(rejected(remove({ operations: [{ op: 'UNSET', property: 'height' }] }))).toEqual(err('INVALID_OPERATION', 'a delete carries no operations'));
  });
  it('a DELETE with an empty operations list is accepted', () => {
    expect(accepted(remove({ operations: [] })).operations).toEqual([]);
  });
  it.each([...['label', '__proto__', 'constructor', 'prototype'].map((p) => [p, p]), ['a\u0000b', 'a\uFFFDb']])(
    'an operation on the property %j is UNKNOWN_PROPERTY',
    (property, shown) => {
      for (const op of [{ op: 'SET', property, value: 1 }, { op: 'UNSET', property }] as OperationInput[]) {
        expect(rejected(update({ operations: [{ op: 'SET_LABEL', value: 'Elm' }, op] }))).toEqual(err('UNKNOWN_PROPERTY', `"${shown}" cannot be a property name`));
      }
    },
  );
  it('SET_LABEL operations are accepted alongside property ones', () => {
    expect(accepted(update({ operations: [{ op: 'SET_LABEL', value: ' Elm ' }, { op: 'SET', property: 'height', value: 4 }] })).operations).toEqual([
      { op: 'SET_LABEL', value: 'Elm' },
      { op: 'SET', property: 'height', value: 4 },
    ]);
  });
});

describe('undeclaredProperties and SET_LABEL', () => {
  it('a SET_LABEL operation names no property', () => {
    expect(undeclaredProperties({}, [], [{ op: 'SET_LABEL', value: 'Elm' }])).toEqual([]);
    expect(undeclaredProperties({}, ['a'], [{ op: 'SET_LABEL', value: 'Elm' }, { op: 'UNSET', property: 'b' }])).toEqual(['b']);
  });
});

describe('quoted input is cut at 60 characters', () => {
  it('exactly 60 is quoted whole, 61 is cut to 60 and …', () => {
    const s60 = 'x'.repeat(60);
    expect(rejected(loose(update(), { id: s60 }))).toEqual(err('MALFORMED_ID', `id "${s60}"`));
    expect(rejected(loose(update(), { id: `${s60}y` }))).toEqual(err('MALFORMED_ID', `id "${s60}…"`));
    expect(rejected(update({ entityId: s60 }))).toEqual(err('MALFORMED_ID', `entityId "${s60}"`));
    expect(rejected(update({ entityId: `${s60}y` }))).toEqual(err('MALFORMED_ID', `entityId "${s60}…"`));
  });
});
