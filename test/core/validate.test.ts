import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError, changeError } from '../../src/core/errors.js';
import { jsonBytes } from '../../src/core/json.js';
import { DEFAULT_LIMITS, ERROR_CODES, type ChangeInput, type ErrorCode, type Limits } from '../../src/core/types.js';
import {
  MAX_VERSION,
  RESERVED_PROPERTIES,
  changeKey,
  deepestValue,
  isValidDeviceId,
  samePayload,
  isUuid,
  normalizePayload,
  undeclaredProperties,
  validateChange,
  validateName,
  validatePropertyNames,
} from '../../src/core/validate.js';
import { BRANCH, ENTITY, ID, accepted, create, loose, rejected, remove, update } from './validate-inputs.js';

const codeOf = (input: ChangeInput, limits: Limits = DEFAULT_LIMITS): ErrorCode | 'OK' => {
  const v = validateChange(input, limits);
  return v.ok ? 'OK' : v.error.code;
};
/** `data` with `name` as an own key, even for `__proto__` (a literal would set the prototype). */
const withKey = (data: Record<string, unknown>, name: string, value: unknown): Record<string, unknown> =>
  Object.fromEntries([...Object.entries(data), [name, value]]);

describe('changeError and DomainError', () => {
  it('uses the code sentence as the message', () => {
    expect(changeError('MISSING_LABEL')).toEqual({ code: 'MISSING_LABEL', message: 'a create needs a non-empty label' });
  });
  it('appends a detail after a colon', () => {
    expect(changeError('TOO_LARGE', '9 bytes, limit 8')).toEqual({ code: 'TOO_LARGE', message: 'the change is too large: 9 bytes, limit 8' });
  });
  it('treats an empty detail as none', () => {
    expect(changeError('MALFORMED_ID', '')).toEqual({ code: 'MALFORMED_ID', message: 'an id is not a UUID' });
  });
  it('has a sentence for every code', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      expect(changeError(code).message).toBe(ERROR_CODES[code]);
      expect(ERROR_CODES[code].length).toBeGreaterThan(0);
    }
  });
  it('DomainError carries its code and a default message', () => {
    const e = new DomainError('NOT_IN_CONFLICT');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('DomainError');
    expect(e.code).toBe('NOT_IN_CONFLICT');
    expect(e.message).toBe('the entity has no unresolved conflict');
    expect(new DomainError('INVALID_NAME', 'bad name').message).toBe('bad name');
  });
});

describe('isUuid', () => {
  it.each([ID, ID.toUpperCase(), '3F1c2A4e-9B7d-4C1e-8A2f-0D9e8B7c6A51', '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff'])(
    'accepts %s',
    (s) => {
      expect(isUuid(s)).toBe(true);
    },
  );

  it.each<[string, unknown]>([
    ['an empty string', ''],
    ['no dashes', ID.replaceAll('-', '')],
    ['braces', `{${ID}}`],
    ['a urn prefix', `urn:uuid:${ID}`],
    ['a leading space', ` ${ID}`],
    ['a trailing newline', `${ID}\n`],
    ['a non-hex digit', `g${ID.slice(1)}`],
    ['one digit short', ID.slice(0, -1)],
    ['one digit long', `${ID}0`],
    ['dashes in the wrong places', '3f1c2a4e9-b7d-4c1e-8a2f-0d9e8b7c6a51'],
    ['a NUL inside', `${ID.slice(0, 8)}\u0000${ID.slice(9)}`],
    ['a number', 123],
    ['null', null],
    ['undefined', undefined],
    ['an object', { id: ID }],
  ])('rejects %s', (_, s) => {
    expect(isUuid(s)).toBe(false);
  });

  it('accepts every generated UUID in any case', () => {
    fc.assert(
      fc.property(fc.mixedCase(fc.uuid()), (u) => {
        expect(isUuid(u)).toBe(true);
      }),
    );
  });

  it('rejects a UUID with any one character replaced by a non-hex one', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.nat(35), fc.constantFrom('g', 'z', ' ', '-', '_', 'é'), (u, i, c) => {
        fc.pre(u[i] !== c);
        expect(isUuid(u.slice(0, i) + c + u.slice(i + 1))).toBe(false);
      }),
    );
  });
});

describe('validateName', () => {
  it.each(['a', '_', 'A', 'trees', 'Tree_2', '_private', 'x'.repeat(64), `A${'9'.repeat(63)}`])('accepts %s', (name) => {
    expect(validateName(name)).toBeNull();
  });

  it.each(['', '1a', '9', 'a-b', 'a b', ' a', 'a ', 'a\n', 'é', 'a.b', 'a$', 'x'.repeat(65), 'tree\u0000'])('rejects %j', (name) => {
    const e = validateName(name);
    expect(e?.code).toBe('INVALID_NAME');
  });

  it('says what is wrong, quoting the name', () => {
    expect(validateName('1a')).toEqual({
      code: 'INVALID_NAME',
      message: 'the name is not acceptable: "1a" must be 1-64 letters, digits or _ and not start with a digit',
    });
  });

  it('quotes a long name truncated to 60 characters', () => {
    const e = validateName('-'.repeat(100));
    expect(e?.message).toBe(`the name is not acceptable: "${'-'.repeat(60)}…" must be 1-64 letters, digits or _ and not start with a digit`);
  });

  it('accepts exactly the identifiers of 1-64 characters', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/), (name) => {
        expect(validateName(name)).toBeNull();
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 70, unit: 'binary-ascii' }), (name) => {
        const ok = /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && name.length <= 64;
        expect(validateName(name) === null).toBe(ok);
      }),
    );
  });
});

describe('validatePropertyNames', () => {
  it('accepts no names and distinct identifiers', () => {
    expect(validatePropertyNames([])).toBeNull();
    expect(validatePropertyNames(['species', 'height', 'Label', 'LABEL', '_label', 'labels'])).toBeNull();
  });

  it.each(['label', '__proto__', 'constructor', 'prototype'])('rejects the reserved name %s', (name) => {
    expect(validatePropertyNames(['species', name])).toEqual({ code: 'INVALID_NAME', message: `the name is not acceptable: "${name}" is reserved` });
  });

  it('rejects repeated names', () => {
    expect(validatePropertyNames(['a', 'b', 'a'])).toEqual({ code: 'INVALID_NAME', message: 'the name is not acceptable: property names repeat' });
  });

  it('treats names differing only in case as distinct', () => {
    expect(validatePropertyNames(['a', 'A'])).toBeNull();
  });

  it('reports the first bad name, in order', () => {
    expect(validatePropertyNames(['ok', '2bad', 'label'])?.message).toContain('"2bad" must be');
    expect(validatePropertyNames(['ok', 'label', '2bad'])?.message).toBe('the name is not acceptable: "label" is reserved');
    // A malformed name is reported before a repeat further on.
    expect(validatePropertyNames(['a', 'a', 'b-c'])?.message).toContain('"b-c" must be');
  });

  it('accepts any set of distinct unreserved identifiers, and rejects it with one repeated', () => {
    const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/).filter((n) => !RESERVED_PROPERTIES.has(n));
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 8 }), fc.nat(), (names, i) => {
        expect(validatePropertyNames(names)).toBeNull();
        if (names.length > 0) {
          const repeated = [...names, names[i % names.length]!];
          expect(validatePropertyNames(repeated)?.code).toBe('INVALID_NAME');
        }
      }),
    );
  });
});

describe('normalizePayload', () => {
  it('makes every absent field an explicit null', () => {
    expect(normalizePayload({ id: 'x', dataset: 'd', action: 'CREATE' })).toEqual({
      id: 'x',
      deviceId: null,
      dataset: 'd',
      entityId: null,
      action: 'CREATE',
      label: null,
      data: null,
      baseVersion: null,
      trunkVersion: null,
      branchId: null,
    });
  });

  it('keeps every given field as given, unvalidated and untrimmed', () => {
    const input = loose(update({ deviceId: 'dev', label: '  Oak ', branchId: 'NOT-A-UUID', trunkVersion: 0, baseVersion: -1 }), { data: [1, 2], action: 'UPSERT' });
    expect(normalizePayload(input)).toEqual({
      id: ID,
      deviceId: 'dev',
      dataset: 'trees',
      entityId: ENTITY,
      action: 'UPSERT',
      label: '  Oak ',
      data: [1, 2],
      baseVersion: -1,
      trunkVersion: 0,
      branchId: 'NOT-A-UUID',
    });
  });

  it('has the same keys in the same order whatever is given', () => {
    const keys = ['id', 'deviceId', 'dataset', 'entityId', 'action', 'label', 'data', 'baseVersion', 'trunkVersion', 'branchId'];
    expect(Object.keys(normalizePayload({ id: 'x', dataset: 'd', action: 'CREATE' }))).toEqual(keys);
    expect(Object.keys(normalizePayload({ ...update(), branchId: BRANCH, trunkVersion: 1, deviceId: 'd', label: 'l' }))).toEqual(keys);
  });

  it('writes UUIDs in their canonical (lower-case) form, so a resend in other letter case is the same payload', () => {
    const upper = normalizePayload(update({ id: ID.toUpperCase(), entityId: ENTITY.toUpperCase(), branchId: BRANCH.toUpperCase(), trunkVersion: 1 }));
    expect(upper).toMatchObject({ id: ID, entityId: ENTITY, branchId: BRANCH });
    expect(upper).toEqual(normalizePayload(update({ branchId: BRANCH, trunkVersion: 1 })));
  });

  it('gives the same payload for an absent field and a null one', () => {
    expect(normalizePayload(update({ label: null, deviceId: null, branchId: null }))).toEqual(normalizePayload(update()));
    expect(JSON.stringify(normalizePayload(update({ label: undefined })))).toBe(JSON.stringify(normalizePayload(update({ label: null }))));
  });
});

describe('samePayload', () => {
  it('payloads recorded in other letter case (before UUIDs were canonical) equal their canonical resend', () => {
    const recorded = { ...normalizePayload(update()), id: ID.toUpperCase(), entityId: ENTITY.toUpperCase() };
    expect(samePayload(recorded, normalizePayload(update()))).toBe(true);
  });

  it('any other difference is another change; non-UUID ids compare exactly', () => {
    expect(samePayload(normalizePayload(update()), normalizePayload(update({ data: { height: 13 } })))).toBe(false);
    expect(samePayload({ ...normalizePayload(update()), id: 'Not-A-Uuid' }, { ...normalizePayload(update()), id: 'not-a-uuid' })).toBe(false);
  });
});

describe('deepestValue', () => {
  const nest = (n: number) => Array.from({ length: n }).reduce<unknown>((v) => [v], 1);

  it('names the property or the operation that nests deeper than MAX_DEPTH', () => {
    expect(deepestValue({ data: { a: 1, b: nest(33) } })).toBe('"b"');
    expect(deepestValue({ operations: [{ op: 'SET', property: 'a', value: 1 }, { op: 'SET', property: 'b', value: nest(33) }] })).toBe('operation 2 nests deeper than 32 levels');
    expect(deepestValue({ data: nest(40) })).toBe('data');
  });

  it('null when nothing does, 32 levels included', () => {
    expect(deepestValue({ data: { a: nest(32) }, operations: [{ op: 'SET', property: 'a', value: nest(32) }] })).toBeNull();
    expect(deepestValue({ data: null, operations: null })).toBeNull();
  });

  it('is safe on any depth, where JSON.stringify is not', () => {
    let v: unknown = 1;
    for (let i = 0; i < 200_000; i++) v = [v];
    expect(() => JSON.stringify(v)).toThrow(RangeError);
    expect(deepestValue({ operations: [{ op: 'SET', property: 'a', value: v }] })).toBe('operation 1 nests deeper than 32 levels');
    expect(rejected(create({ operations: [{ op: 'SET', property: 'a', value: v }] }))).toEqual({ code: 'INVALID_PROPERTY_VALUE', message: 'a property value is not acceptable: operation 1 nests deeper than 32 levels' });
  });
});

describe('validateChange: run length and device ids', () => {
  const limits = { ...DEFAULT_LIMITS, maxRunLength: 5 };

  it('RUN_TOO_LONG past maxRunLength changes after the trunk; exactly maxRunLength is accepted', () => {
    expect(codeOf(update({ branchId: BRANCH, trunkVersion: 3, baseVersion: 8 }), limits)).toBe('OK');
    expect(rejected(update({ branchId: BRANCH, trunkVersion: 3, baseVersion: 9 }), limits)).toEqual({ code: 'RUN_TOO_LONG', message: 'the offline run is longer than the server accepts: change 6 of the run, limit 5' });
  });

  it('a run that began offline counts from its create', () => {
    expect(codeOf(update({ branchId: BRANCH, trunkVersion: null, baseVersion: 5 }), limits)).toBe('OK');
    expect(codeOf(update({ branchId: BRANCH, trunkVersion: null, baseVersion: 6 }), limits)).toBe('RUN_TOO_LONG');
  });

  it('no run, no run length: a change without a branch may name any version up to MAX_VERSION', () => {
    expect(codeOf(update({ baseVersion: 1000 }), limits)).toBe('OK');
    expect(codeOf(create({ branchId: BRANCH }), limits)).toBe('OK');
  });

  it('INVALID_DEVICE_ID past 200 characters; 200 and an empty one are accepted', () => {
    expect(codeOf(update({ deviceId: 'd'.repeat(200) }))).toBe('OK');
    expect(codeOf(update({ deviceId: '' }))).toBe('OK');
    expect(rejected(update({ deviceId: 'd'.repeat(201) }))).toEqual({ code: 'INVALID_DEVICE_ID', message: 'the device id is not acceptable: deviceId of 201 characters; at most 200 are accepted' });
  });

  it('isValidDeviceId: a string of at most 200 characters Postgres can store', () => {
    expect(isValidDeviceId('tablet-7')).toBe(true);
    expect(isValidDeviceId('x'.repeat(201))).toBe(false);
    expect(isValidDeviceId('a\u0000b')).toBe(false);
    expect(isValidDeviceId(7)).toBe(false);
  });
});

describe('undeclaredProperties', () => {
  it('lists the keys not declared, in data order', () => {
    expect(undeclaredProperties({ z: 1, species: 'oak', a: null, height: 2 }, ['species', 'height'])).toEqual(['z', 'a']);
  });
  it('is empty when everything is declared or there is no data', () => {
    expect(undeclaredProperties({ species: 'oak' }, ['species', 'height'])).toEqual([]);
    expect(undeclaredProperties({}, [])).toEqual([]);
  });
  it('is case-sensitive and sees a key whose value is null', () => {
    expect(undeclaredProperties({ Species: 'oak', x: null }, ['species'])).toEqual(['Species', 'x']);
  });
  it('does not mistake inherited names for declared ones', () => {
    expect(undeclaredProperties({ toString: 'x', hasOwnProperty: 1 }, [])).toEqual(['toString', 'hasOwnProperty']);
  });
  it('is exactly the keys minus the declared names', () => {
    const key = fc.oneof(fc.constantFrom('a', 'b', 'c', 'd'), fc.string({ maxLength: 5 }));
    fc.assert(
      fc.property(fc.dictionary(key, fc.integer()), fc.array(key), (data, declared) => {
        const out = undeclaredProperties(data, declared);
        expect(out).toEqual(Object.keys(data).filter((k) => !declared.includes(k)));
        expect(undeclaredProperties(data, [...declared, ...Object.keys(data)])).toEqual([]);
      }),
    );
  });
});

describe('validateChange: accepted changes', () => {
  it('accepts a create and returns it normalised', () => {
    expect(accepted(create())).toEqual({
      id: ID,
      deviceId: null,
      dataset: 'trees',
      entityId: ENTITY,
      action: 'CREATE',
      label: 'Oak',
      data: { species: 'oak' },
      baseVersion: null,
      trunkVersion: null,
      branchId: null,
    });
  });

  it('lower-cases the ids and trims the label', () => {
    const c = accepted(create({ id: ID.toUpperCase(), entityId: ENTITY.toUpperCase(), branchId: BRANCH.toUpperCase(), label: '  Oak tree \n', deviceId: 'Dev-1' }));
    expect(c).toMatchObject({ id: ID, entityId: ENTITY, branchId: BRANCH, label: 'Oak tree', deviceId: 'Dev-1' });
  });

  it('accepts an update and a delete with baseVersion, and no label', () => {
    expect(accepted(update())).toMatchObject({ action: 'UPDATE', baseVersion: 3, label: null, data: { height: 12 } });
    expect(accepted(remove())).toMatchObject({ action: 'DELETE', baseVersion: 3, label: null, data: {} });
  });

  it('accepts an update that sets the label, trimmed', () => {
    expect(accepted(update({ label: ' Elm ' })).label).toBe('Elm');
  });

  it('turns absent or null data into an empty object', () => {
    expect(accepted(create({ data: undefined })).data).toEqual({});
    expect(accepted(create({ data: null })).data).toEqual({});
  });

  it('keeps property values of every JSON kind, including null', () => {
    const data = { s: 'x', n: -1.5, b: false, z: null, a: [1, 'two', [null]], o: { deep: { deeper: [] } } };
    expect(accepted(update({ data })).data).toEqual(data);
  });

  it('accepts a run: base equal to trunk, then above it', () => {
    expect(accepted(update({ branchId: BRANCH, trunkVersion: 3, baseVersion: 3 }))).toMatchObject({ branchId: BRANCH, trunkVersion: 3, baseVersion: 3 });
    expect(accepted(update({ branchId: BRANCH, trunkVersion: 3, baseVersion: 7 }))).toMatchObject({ trunkVersion: 3, baseVersion: 7 });
  });

  it('accepts a branch without trunkVersion (a run that began with an offline create)', () => {
    expect(accepted(create({ branchId: BRANCH }))).toMatchObject({ branchId: BRANCH, trunkVersion: null, baseVersion: null });
    expect(accepted(update({ branchId: BRANCH, baseVersion: 2 }))).toMatchObject({ branchId: BRANCH, trunkVersion: null, baseVersion: 2 });
  });

  it('accepts versions up to MAX_VERSION (int4 with room for run positions), refuses one more', () => {
    expect(MAX_VERSION).toBe(2_000_000_000);
    expect(accepted(update({ baseVersion: MAX_VERSION })).baseVersion).toBe(MAX_VERSION);
    expect(rejected(update({ baseVersion: MAX_VERSION + 1 }))).toEqual({ code: 'BASE_VERSION_INVALID', message: `baseVersion must be a positive integer: baseVersion ${MAX_VERSION + 1}` });
    expect(codeOf(update({ baseVersion: 2 ** 31 }))).toBe('BASE_VERSION_INVALID');
    expect(codeOf(update({ trunkVersion: 2 ** 31 - 1, baseVersion: 2 ** 31 - 1, branchId: BRANCH }))).toBe('BASE_VERSION_INVALID');
  });

  it('accepts a label of exactly the limit once trimmed', () => {
    const label = 'x'.repeat(DEFAULT_LIMITS.maxLabelLength);
    expect(accepted(create({ label: `   ${label}\t ` })).label).toBe(label);
  });

  it('trims leading and trailing control whitespace before looking for control characters', () => {
    expect(accepted(create({ label: '\u000bOak\u000c' })).label).toBe('Oak');
  });

  it('keeps tab, line feed and carriage return inside a label (they are not rejected as control characters)', () => {
    expect(accepted(create({ label: 'a\tb\r\nc' })).label).toBe('a\tb\r\nc');
  });

  it('accepts exactly maxProperties properties', () => {
    const limits = { ...DEFAULT_LIMITS, maxProperties: 3 };
    expect(Object.keys(accepted(update({ data: { a: 1, b: 2, c: 3 } }), limits).data)).toEqual(['a', 'b', 'c']);
  });

  it('accepts a payload of exactly maxChangeBytes', () => {
    const input = create({ data: { notes: 'é'.repeat(100) } });
    const bytes = jsonBytes(normalizePayload(input));
    expect(accepted(input, { ...DEFAULT_LIMITS, maxChangeBytes: bytes }).data).toEqual({ notes: 'é'.repeat(100) });
  });

  it('does not modify its input', () => {
    const input = Object.freeze(create({ id: ID.toUpperCase(), label: ' Oak ', data: Object.freeze({ a: Object.freeze([1]) }) }));
    const copy = structuredClone(input);
    accepted(input);
    expect(input).toEqual(copy);
  });
});

describe('validateChange: each rejection', () => {
  const small = (over: Partial<Limits>): Limits => ({ ...DEFAULT_LIMITS, ...over });

  it('TOO_LARGE: a payload over maxChangeBytes, measured in UTF-8 bytes', () => {
    const input = create({ data: { notes: 'é'.repeat(100) } });
    const bytes = jsonBytes(normalizePayload(input));
    expect(rejected(input, small({ maxChangeBytes: bytes - 1 }))).toEqual({
      code: 'TOO_LARGE',
      message: `the change is too large: ${bytes} bytes, limit ${bytes - 1}`,
    });
    // 100 characters, 200 bytes: counting characters would let it through.
    expect(codeOf(create({ data: { notes: 'é'.repeat(100) } }), small({ maxChangeBytes: 250 }))).toBe('TOO_LARGE');
  });

  it('TOO_LARGE: over the default 64 KiB', () => {
    expect(codeOf(create({ data: { notes: 'x'.repeat(64 * 1024) } }))).toBe('TOO_LARGE');
    expect(codeOf(create({ label: 'x'.repeat(64 * 1024) }))).toBe('TOO_LARGE');
  });

  it('TOO_LARGE: more properties than maxProperties', () => {
    expect(rejected(update({ data: { a: 1, b: 2, c: 3, d: 4 } }), small({ maxProperties: 3 }))).toEqual({
      code: 'TOO_LARGE',
      message: 'the change is too large: 4 properties, limit 3',
    });
    const many = Object.fromEntries(Array.from({ length: DEFAULT_LIMITS.maxProperties + 1 }, (_, i) => [`p${i}`, i]));
    expect(codeOf(update({ data: many }))).toBe('TOO_LARGE');
  });

  it.each<[string, ChangeInput]>([
    ['a NUL in dataset', create({ dataset: 'tre\u0000es' })],
    ['a NUL in deviceId', create({ deviceId: 'dev\u0000' })],
  ])('MALFORMED_CHANGE: %s', (_, input) => {
    expect(rejected(input)).toEqual({ code: 'MALFORMED_CHANGE', message: 'the change is not well formed: dataset or deviceId holds a NUL character or a lone surrogate' });
  });

  it.each(['UPSERT', 'create', '', 'Delete'])('MALFORMED_CHANGE: the unknown action %j', (action) => {
    expect(rejected(loose(create(), { action }))).toEqual({ code: 'MALFORMED_CHANGE', message: `the change is not well formed: unknown action "${action}"` });
  });

  it.each<[string, unknown]>([
    ['an array', [{ species: 'oak' }]],
    ['an empty array', []],
    ['a string', '{"species":"oak"}'],
    ['a number', 0],
    ['true', true],
    ['false', false],
  ])('MALFORMED_CHANGE: data that is %s', (_, data) => {
    expect(rejected(update({ data }))).toEqual({ code: 'MALFORMED_CHANGE', message: 'the change is not well formed: data must be an object of property values' });
  });

  it.each<[string, unknown]>([
    ['not a UUID', 'not-a-uuid'],
    ['empty', ''],
    ['a UUID in braces', `{${ID}}`],
    ['a UUID without dashes', ID.replaceAll('-', '')],
  ])('MALFORMED_ID: an id that is %s', (_, id) => {
    expect(rejected(loose(create(), { id }))).toEqual({ code: 'MALFORMED_ID', message: `an id is not a UUID: id "${id}"` });
  });

  it('MALFORMED_ID: quotes a long id truncated to 60 characters', () => {
    expect(rejected(create({ id: 'x'.repeat(100) })).message).toBe(`an id is not a UUID: id "${'x'.repeat(60)}…"`);
  });

  it('MALFORMED_ID: an entityId that is not a UUID', () => {
    expect(rejected(update({ entityId: 'tree-1' }))).toEqual({ code: 'MALFORMED_ID', message: 'an id is not a UUID: entityId "tree-1"' });
  });

  it.each(['branch-1', '', ` ${BRANCH}`])('MALFORMED_ID: the branchId %j', (branchId) => {
    expect(rejected(update({ branchId }))).toEqual({ code: 'MALFORMED_ID', message: `an id is not a UUID: branchId "${branchId}"` });
  });

  it.each<[string, string | null | undefined]>([
    ['null', null],
    ['absent', undefined],
    ['empty', ''],
  ])('MISSING_ENTITY_ID: entityId %s', (_, entityId) => {
    expect(rejected(create({ entityId }))).toEqual({ code: 'MISSING_ENTITY_ID', message: 'the change needs entityId' });
    expect(codeOf(update({ entityId }))).toBe('MISSING_ENTITY_ID');
  });

  it('TRUNK_VERSION_WITHOUT_BRANCH: trunkVersion with no branchId', () => {
    expect(rejected(update({ trunkVersion: 3 }))).toEqual({ code: 'TRUNK_VERSION_WITHOUT_BRANCH', message: 'trunkVersion needs branchId' });
    expect(codeOf(update({ trunkVersion: 3, branchId: null }))).toBe('TRUNK_VERSION_WITHOUT_BRANCH');
    // Checked before the number itself.
    expect(codeOf(update({ trunkVersion: 0 }))).toBe('TRUNK_VERSION_WITHOUT_BRANCH');
  });

  it.each<[string, unknown]>([
    ['zero', 0],
    ['negative', -1],
    ['a fraction', 1.5],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['above the safe integers', 2 ** 53],
    ['a numeric string', '3'],
  ])('BASE_VERSION_INVALID: baseVersion %s', (_, baseVersion) => {
    expect(rejected(loose(update(), { baseVersion }))).toEqual({ code: 'BASE_VERSION_INVALID', message: `baseVersion must be a positive integer: baseVersion ${baseVersion}` });
    expect(codeOf(loose(create(), { baseVersion }))).toBe('BASE_VERSION_INVALID');
  });

  it.each<[string, unknown]>([
    ['zero', 0],
    ['negative', -4],
    ['a fraction', 2.5],
    ['NaN', NaN],
  ])('BASE_VERSION_INVALID: trunkVersion %s (with a branch)', (_, trunkVersion) => {
    expect(rejected(loose(update({ branchId: BRANCH }), { trunkVersion }))).toEqual({
      code: 'BASE_VERSION_INVALID',
      message: `baseVersion must be a positive integer: trunkVersion ${trunkVersion}`,
    });
  });

  it.each(['label', '__proto__', 'constructor', 'prototype'])('UNKNOWN_PROPERTY: the reserved name %s', (name) => {
    const data = withKey({ species: 'oak' }, name, 'x');
    expect(Object.hasOwn(data, name)).toBe(true);
    expect(rejected(update({ data }))).toEqual({ code: 'UNKNOWN_PROPERTY', message: `a property is not declared by the dataset: "${name}" is reserved` });
  });

  it('UNKNOWN_PROPERTY: __proto__ as sent in JSON', () => {
    expect(codeOf(update({ data: JSON.parse('{"__proto__":{"admin":true}}') }))).toBe('UNKNOWN_PROPERTY');
  });

  it('UNKNOWN_PROPERTY: a property name holding NUL (it can never be declared, nor stored)', () => {
    // Values and nested keys with NUL are refused here; a top-level key with NUL must be too,
    // or the sync layer writes it into a Postgres text column (the error message) and fails.
    expect(codeOf(update({ data: { 'spe\u0000cies': 'oak' } }))).toBe('UNKNOWN_PROPERTY');
  });

  it.each<[string, unknown]>([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['undefined', undefined],
    ['a function', () => 1],
    ['a Date', new Date(0)],
    ['NaN in a list', [1, NaN]],
    ['undefined in an object', { a: undefined }],
    ['a NUL in a string', 'o\u0000ak'],
    ['a NUL in a nested string', { notes: ['fine', 'n\u0000'] }],
    ['a NUL in a nested key', { 'k\u0000': 1 }],
    ['nesting deeper than 32 levels', Array.from({ length: 33 }).reduce<unknown>((v) => [v], 1)],
  ])('INVALID_PROPERTY_VALUE: %s', (_, value) => {
    expect(rejected(update({ data: { height: 1, notes: value } }))).toEqual({ code: 'INVALID_PROPERTY_VALUE', message: 'a property value is not acceptable: "notes"' });
  });

  it('INVALID_PROPERTY_VALUE: 32 levels of nesting are still fine', () => {
    expect(codeOf(update({ data: { notes: Array.from({ length: 32 }).reduce<unknown>((v) => [v], 1) } }))).toBe('OK');
  });

  it.each<[string, ChangeInput]>([
    ['no label', create({ label: undefined })],
    ['a null label', create({ label: null })],
  ])('MISSING_LABEL: a create with %s', (_, input) => {
    expect(rejected(input)).toEqual({ code: 'MISSING_LABEL', message: 'a create needs a non-empty label' });
  });

  it.each(['', '   ', '\t\n', '\u00a0\u2003'])('MISSING_LABEL: a create whose label is blank (%j)', (label) => {
    expect(rejected(create({ label }))).toEqual({ code: 'MISSING_LABEL', message: 'a create needs a non-empty label: label is empty' });
  });

  it.each<[string, ChangeInput]>([
    ['an update', update({ label: '' })],
    ['an update (blank)', update({ label: '  ' })],
    ['a delete', remove({ label: '' })],
  ])('INVALID_LABEL: an empty label on %s', (_, input) => {
    expect(rejected(input)).toEqual({ code: 'INVALID_LABEL', message: 'the label is not acceptable: label is empty' });
  });

  it('INVALID_LABEL: longer than maxLabelLength once trimmed', () => {
    const label = 'x'.repeat(DEFAULT_LIMITS.maxLabelLength + 1);
    expect(rejected(create({ label }))).toEqual({ code: 'INVALID_LABEL', message: 'the label is not acceptable: longer than 1000 characters' });
    expect(codeOf(update({ label }))).toBe('INVALID_LABEL');
    expect(codeOf(create({ label: 'abcd' }), small({ maxLabelLength: 3 }))).toBe('INVALID_LABEL');
    expect(codeOf(create({ label: ' abc ' }), small({ maxLabelLength: 3 }))).toBe('OK');
  });

  it.each(['\u0000', '\u0001', '\u0007', '\u0008', '\u000b', '\u000c', '\u000e', '\u001b', '\u001f'])('INVALID_LABEL: the control character %j inside', (ch) => {
    expect(rejected(create({ label: `Oa${ch}k` }))).toEqual({ code: 'INVALID_LABEL', message: 'the label is not acceptable: control characters' });
    expect(codeOf(update({ label: `Oa${ch}k` }))).toBe('INVALID_LABEL');
  });

  it.each<[string, ChangeInput]>([
    ['an update without baseVersion', update({ baseVersion: undefined })],
    ['an update with a null baseVersion', update({ baseVersion: null })],
    ['a delete without baseVersion', remove({ baseVersion: null })],
    ['a run change with trunkVersion but no baseVersion', update({ baseVersion: null, branchId: BRANCH, trunkVersion: 2 })],
  ])('BASE_VERSION_MISSING: %s', (_, input) => {
    expect(rejected(input)).toEqual({ code: 'BASE_VERSION_MISSING', message: 'an update or delete needs baseVersion' });
  });

  it('BASE_BELOW_TRUNK: baseVersion below trunkVersion', () => {
    expect(rejected(update({ branchId: BRANCH, trunkVersion: 5, baseVersion: 4 }))).toEqual({
      code: 'BASE_BELOW_TRUNK',
      message: 'baseVersion is below trunkVersion: baseVersion 4 < trunkVersion 5',
    });
    expect(codeOf(create({ branchId: BRANCH, trunkVersion: 2, baseVersion: 1 }))).toBe('BASE_BELOW_TRUNK');
  });
});

describe('validateChange: which check wins', () => {
  const huge = { notes: 'x'.repeat(64 * 1024) };
  const threeProperties = { ...DEFAULT_LIMITS, maxProperties: 3 };
  it.each<[string, ChangeInput, ErrorCode, Limits?]>([
    ['size before everything', loose(create({ id: 'bad', dataset: 'a\u0000', data: huge }), { action: 'NOPE' }), 'TOO_LARGE'],
    ['a NUL in dataset before a malformed id', create({ id: 'bad', dataset: 'a\u0000' }), 'MALFORMED_CHANGE'],
    ['a malformed id before an unknown action', loose(create({ id: 'bad' }), { action: 'NOPE' }), 'MALFORMED_ID'],
    ['an unknown action before a missing entityId', loose(create({ entityId: null }), { action: 'NOPE' }), 'MALFORMED_CHANGE'],
    ['a missing entityId before a malformed branchId', create({ entityId: null, branchId: 'bad' }), 'MISSING_ENTITY_ID'],
    ['a malformed branchId before an invalid baseVersion', update({ branchId: 'bad', baseVersion: 0 }), 'MALFORMED_ID'],
    ['trunk without branch before an invalid baseVersion', update({ trunkVersion: 2, baseVersion: 0 }), 'TRUNK_VERSION_WITHOUT_BRANCH'],
    ['an invalid version before malformed data', loose(update({ baseVersion: -1 }), { data: [] }), 'BASE_VERSION_INVALID'],
    ['malformed data before a bad label', loose(create({ label: '' }), { data: 'x' }), 'MALFORMED_CHANGE'],
    ['too many properties before a reserved one', update({ data: withKey({ a: 1, b: 2, c: 3 }, 'label', 1) }), 'TOO_LARGE', threeProperties],
    ['a reserved name before a later bad value', update({ data: withKey({ label: 'x' }, 'n', NaN) }), 'UNKNOWN_PROPERTY'],
    ['a bad value before a later reserved name', update({ data: withKey({ n: NaN }, 'label', 'x') }), 'INVALID_PROPERTY_VALUE'],
    ['a bad value before a bad label', update({ data: { n: NaN }, label: '' }), 'INVALID_PROPERTY_VALUE'],
    ['a bad label before a missing baseVersion', update({ label: '\u0001', baseVersion: null }), 'INVALID_LABEL'],
    ['an empty label on create before a too-long check', create({ label: ' ' }), 'MISSING_LABEL'],
  ])('%s', (_, input, code, limits = DEFAULT_LIMITS) => {
    expect(codeOf(input, limits)).toBe(code);
  });

  it('names which id is malformed', () => {
    expect(rejected(update({ entityId: 'e', branchId: 'b' })).message).toBe('an id is not a UUID: entityId "e"');
    expect(rejected(update({ id: 'i', entityId: 'e' })).message).toBe('an id is not a UUID: id "i"');
  });
});

// ---- every error code: returned by validateChange, or never, and why --------------------

/**
 * ERROR_CODES split in two: the codes validateChange returns, each with one input that gets
 * it, and the codes it never returns, each with the reason (what it would need to know). The
 * two lists must cover ERROR_CODES exactly, so a new code forces this table to be updated.
 */
const RETURNS: Partial<Record<ErrorCode, { input: ChangeInput; limits?: Limits }>> = {
  INVALID_PROPERTY_VALUE: { input: update({ data: { height: NaN } }) },
  TOO_LARGE: { input: update(), limits: { ...DEFAULT_LIMITS, maxChangeBytes: 10 } },
  MALFORMED_CHANGE: { input: loose(update(), { action: 'MERGE' }) },
  INVALID_DEVICE_ID: { input: update({ deviceId: 'd'.repeat(201) }) },
  MALFORMED_ID: { input: update({ id: 'change-1' }) },
  MISSING_DEVICE_ID: { input: create({ localId: 'tree-1' }) },
  MISSING_ENTITY_ID: { input: update({ entityId: null }) },
  TRUNK_VERSION_WITHOUT_BRANCH: { input: update({ trunkVersion: 1 }) },
  BASE_VERSION_INVALID: { input: update({ baseVersion: 0 }) },
  UNKNOWN_PROPERTY: { input: update({ data: withKey({}, 'label', 'x') }) },
  MISSING_LABEL: { input: create({ label: null }) },
  INVALID_LABEL: { input: update({ label: 'a\u0001b' }) },
  BASE_VERSION_MISSING: { input: update({ baseVersion: null }) },
  BASE_BELOW_TRUNK: { input: update({ branchId: BRANCH, trunkVersion: 4, baseVersion: 3 }) },
  RUN_TOO_LONG: { input: update({ branchId: BRANCH, trunkVersion: 1, baseVersion: 2 + DEFAULT_LIMITS.maxRunLength }) },
  INVALID_OPERATION: { input: update({ operations: [{ op: 'INCREMENT', property: 'height' }] }) },
};
const NEVER_RETURNS: Partial<Record<ErrorCode, string>> = {
  UNKNOWN_DATASET: 'needs the datasets in the database (sync)',
  ENTITY_NOT_FOUND: 'needs the entity (placeChange)',
  ENTITY_EXISTS: 'needs the entity (placeChange)',
  ENTITY_DELETED: 'needs the entity (placeChange)',
  BASE_VERSION_AHEAD: "needs the entity's version (placeChange)",
  TRUNK_VERSION_AHEAD: "needs the entity's version (placeChange)",
  BRANCH_TRUNK_CHANGED: "needs the run's other changes (checkBranch)",
  BRANCH_POSITION_TAKEN: "needs the run's other changes (checkBranch)",
  BRANCH_ON_OTHER_ENTITY: "needs the run's other changes (checkBranch)",
  BRANCH_OF_OTHER_DEVICE: "needs the run's other changes (checkBranch)",
  CHANGE_ID_REUSED: 'needs the change log (sync)',
  EMPTY_BATCH: 'a property of the batch, not of one change (submitChanges)',
  BATCH_TOO_LARGE: 'a property of the batch, not of one change (submitChanges)',
  DATASET_EXISTS: 'about creating datasets, not changes',
  INVALID_NAME: 'about dataset, property and token names, not changes (validateName)',
  NOT_IN_CONFLICT: 'about resolving conflicts (resolveConflict)',
  STALE_VERSION: "about a reviewer's verdict (core/review.ts staleGuard)",
  VERSION_AHEAD: "about a reviewer's verdict (core/review.ts staleGuard)",
  ENTITY_NOT_DELETED: 'about restoring an entity (restoreEntity)',
  INVALID_NOTE: "about a reviewer's note (core/review.ts checkNote)",
  INTERNAL_ERROR: 'an unexpected failure while processing, after validation (sync)',
  OPERATION_TYPE_MISMATCH: 'needs the current value (applyOperations)',
  VALUE_OUT_OF_RANGE: 'needs the current value (applyOperations)',
  LOCAL_ID_UNKNOWN: "needs the device's local-id mappings (sync)",
  INVALID_CURSOR: 'about pulls, not changes',
  UNAUTHENTICATED: 'about the request, not the change (auth)',
  FORBIDDEN: 'about the request, not the change (auth)',
  TOKEN_NOT_FOUND: 'about API tokens, not changes',
  TOO_MANY_DATASETS: 'about creating a dataset beyond the limit (src/sync/datasets.ts), not changes',
  ADMIN_TOKEN_RESTRICTED: 'about API tokens, not changes',
  INVALID_WEBHOOK_URL: 'about webhooks, not changes',
  INVALID_WEBHOOK: 'about webhooks, not changes',
  WEBHOOK_NOT_FOUND: 'about webhooks, not changes',
  WEBHOOK_LIMIT: 'about webhooks, not changes',
  INVALID_SUBSET: 'about API tokens, not changes (core validateSubset)',
  OUTSIDE_SUBSET: "needs the submitting token's subset and the entity (planBatch)",
};
const RETURNED_CODES = (Object.keys(RETURNS) as ErrorCode[]).sort();
const NEVER_CODES = (Object.keys(NEVER_RETURNS) as ErrorCode[]).sort();

describe('validateChange: every error code, returned or not', () => {
  it('the returned and the never-returned codes split ERROR_CODES exactly', () => {
    expect(RETURNED_CODES.filter((c) => NEVER_CODES.includes(c))).toEqual([]);
    expect([...RETURNED_CODES, ...NEVER_CODES].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it.each(RETURNED_CODES)('returns %s for its example', (code) => {
    const { input, limits } = RETURNS[code]!;
    expect(codeOf(input, limits)).toBe(code);
  });

  it('returns only those codes, whatever it is given', () => {
    // Loose inputs: each field mostly valid (or absent), sometimes wrong in one of the ways the
    // checks look for, so every check gets its turn; id and dataset are always strings, as the
    // schema requires (String!).
    const mostly = (valid: fc.Arbitrary<unknown>, ...wrong: unknown[]) => fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: fc.constantFrom(...wrong) });
    const version = fc.integer({ min: 1, max: 12 });
    const operation = fc.record({
      op: mostly(fc.constantFrom('SET', 'UNSET', 'LIST_ADD', 'LIST_REMOVE', 'INCREMENT', 'SET_LABEL'), 'MERGE'),
      property: mostly(fc.constantFrom('height', 'kids'), '', 'label', null),
      value: mostly(fc.jsonValue({ maxDepth: 2 }), undefined, 'n\u0000', ' '),
      index: mostly(fc.option(fc.nat(3)), -1, 1.5),
      by: mostly(fc.integer(), null, Infinity),
    });
    const anyInput = fc.record({
      id: mostly(fc.uuid(), '', 'x', '\u0000'),
      entityId: mostly(fc.uuid(), null, undefined, '', 'x'),
      branchId: mostly(fc.option(fc.uuid()), 'x'),
      dataset: mostly(fc.constant('trees'), 'a\u0000'),
      deviceId: mostly(fc.option(fc.constantFrom('tab-1', '')), 'd'.repeat(201), '\u0000'),
      localId: mostly(fc.oneof({ weight: 8, arbitrary: fc.constantFrom(null, undefined) }, { weight: 1, arbitrary: fc.constant('tree-1') }), '', '\u0000'),
      label: mostly(fc.option(fc.constant('Oak')), '', ' ', 'a\u0001', 'x'.repeat(1001)),
      action: mostly(fc.constantFrom('CREATE', 'UPDATE', 'DELETE'), 'MERGE'),
      baseVersion: mostly(fc.option(version, { freq: 4 }), 0, 1.5, NaN, 2 ** 31, DEFAULT_LIMITS.maxRunLength + 5),
      trunkVersion: mostly(fc.option(version), 0, 1.5),
      data: fc.oneof(
        { weight: 4, arbitrary: fc.option(fc.dictionary(fc.constantFrom('height', 'species'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 })) },
        { weight: 1, arbitrary: fc.constantFrom<unknown>([], 'x', { label: 1 }, { height: NaN }, { height: [undefined] }, { 'a\u0000': 1 }) },
      ),
      operations: fc.option(fc.array(operation, { minLength: 1, maxLength: 2 }), { freq: 2 }),
    });
    const seen = new Set<string>();
    fc.assert(
      fc.property(anyInput, fc.constantFrom(DEFAULT_LIMITS, { ...DEFAULT_LIMITS, maxChangeBytes: 600, maxProperties: 1 }, { ...DEFAULT_LIMITS, maxRunLength: 5 }), (raw, limits) => {
        const code = codeOf(raw as unknown as ChangeInput, limits);
        seen.add(code);
        expect([...RETURNED_CODES, 'OK']).toContain(code);
      }),
      { numRuns: 3000 },
    );
    // The generator reaches most of the checks, so the property says something about each.
    expect(RETURNED_CODES.filter((c) => !seen.has(c))).toEqual([]);
  });
});

// ---- generated changes -------------------------------------------------------------------

const absent = fc.constantFrom(null, undefined);
const uuidAnyCase = fc.mixedCase(fc.uuid());
const propertyName = fc.oneof(fc.constantFrom('species', 'height', 'notes'), fc.string({ maxLength: 12 })).filter((k) => !RESERVED_PROPERTIES.has(k));
const label = fc
  .tuple(fc.constantFrom('', ' ', '\t', ' \n'), fc.string({ minLength: 1, maxLength: 30 }), fc.constantFrom('', ' ', '\r\n'))
  .filter(([, core]) => core.trim() !== '')
  .map(([a, core, b]) => a + core + b);

/** Well-formed inputs: every one must be accepted. */
const wellFormed: fc.Arbitrary<ChangeInput> = fc
  .record({
    id: uuidAnyCase,
    entityId: uuidAnyCase,
    action: fc.constantFrom<ChangeInput['action']>('CREATE', 'UPDATE', 'DELETE'),
    dataset: fc.string({ maxLength: 20 }),
    deviceId: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
    deviceIdAbsent: absent,
    label: fc.option(label, { nil: undefined }),
    labelAbsent: absent,
    data: fc.oneof(fc.dictionary(propertyName, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }), absent),
    branchId: fc.option(uuidAnyCase, { nil: undefined }),
    branchAbsent: absent,
    trunkVersion: fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: undefined }),
    step: fc.nat(50),
    withBase: fc.boolean(),
    versionAbsent: absent,
  })
  .map((r): ChangeInput => {
    const trunkVersion = r.branchId !== undefined ? r.trunkVersion : undefined;
    const needsBase = r.action !== 'CREATE';
    const baseVersion = needsBase || r.withBase ? (trunkVersion ?? 1) + r.step : r.versionAbsent;
    const label = r.label ?? (r.action === 'CREATE' ? 'Oak' : r.labelAbsent);
    return {
      id: r.id,
      dataset: r.dataset,
      entityId: r.entityId,
      action: r.action,
      deviceId: r.deviceId ?? r.deviceIdAbsent,
      label,
      data: r.data,
      baseVersion,
      trunkVersion: trunkVersion ?? r.versionAbsent,
      branchId: r.branchId ?? r.branchAbsent,
    };
  });

describe('validateChange: generated changes', () => {
  it('accepts every well-formed change and normalises it', () => {
    fc.assert(
      fc.property(wellFormed, (input) => {
        expect(accepted(input)).toEqual({
          id: input.id.toLowerCase(),
          deviceId: input.deviceId ?? null,
          dataset: input.dataset,
          entityId: input.entityId!.toLowerCase(),
          action: input.action,
          label: input.label?.trim() ?? null,
          data: input.data ?? {},
          baseVersion: input.baseVersion ?? null,
          trunkVersion: input.trunkVersion ?? null,
          branchId: input.branchId?.toLowerCase() ?? null,
        });
      }),
    );
  });

  it('accepts its own output unchanged (validation is idempotent)', () => {
    fc.assert(
      fc.property(wellFormed, (input) => {
        const once = accepted(input);
        expect(accepted(once)).toEqual(once);
      }),
    );
  });

  type Defect = [name: string, code: ErrorCode, apply: (c: ChangeInput) => { input: ChangeInput; limits?: Limits }];
  const defects: Defect[] = [
    ['oversized', 'TOO_LARGE', (c) => ({ input: c, limits: { ...DEFAULT_LIMITS, maxChangeBytes: jsonBytes(normalizePayload(c)) - 1 } })],
    [
      'too many properties',
      'TOO_LARGE',
      (c) => {
        const data = { ...(c.data as object), p1: 1, p2: 2 };
        return { input: { ...c, data }, limits: { ...DEFAULT_LIMITS, maxProperties: Object.keys(data).length - 1 } };
      },
    ],
    ['NUL in dataset', 'MALFORMED_CHANGE', (c) => ({ input: { ...c, dataset: `${c.dataset}\u0000` } })],
    ['NUL in deviceId', 'MALFORMED_CHANGE', (c) => ({ input: { ...c, deviceId: '\u0000' } })],
    ['unknown action', 'MALFORMED_CHANGE', (c) => ({ input: loose(c, { action: 'MERGE' }) })],
    ['data is a list', 'MALFORMED_CHANGE', (c) => ({ input: { ...c, data: [c.data] } })],
    ['id not a UUID', 'MALFORMED_ID', (c) => ({ input: { ...c, id: c.id.slice(1) } })],
    ['entityId not a UUID', 'MALFORMED_ID', (c) => ({ input: { ...c, entityId: `${c.entityId}x` } })],
    ['branchId not a UUID', 'MALFORMED_ID', (c) => ({ input: { ...c, branchId: c.id.replaceAll('-', '') } })],
    ['no entityId', 'MISSING_ENTITY_ID', (c) => ({ input: { ...c, entityId: undefined } })],
    ['trunk without branch', 'TRUNK_VERSION_WITHOUT_BRANCH', (c) => ({ input: { ...c, branchId: null, trunkVersion: 1 } })],
    ['baseVersion zero', 'BASE_VERSION_INVALID', (c) => ({ input: { ...c, baseVersion: 0 } })],
    ['trunkVersion a fraction', 'BASE_VERSION_INVALID', (c) => ({ input: { ...c, branchId: BRANCH, trunkVersion: 0.5 } })],
    ['a reserved property', 'UNKNOWN_PROPERTY', (c) => ({ input: { ...c, data: withKey((c.data ?? {}) as Record<string, unknown>, 'label', 'x') } })],
    ['a NaN property', 'INVALID_PROPERTY_VALUE', (c) => ({ input: { ...c, data: { ...(c.data as object), zz: NaN } } })],
    ['an undefined property', 'INVALID_PROPERTY_VALUE', (c) => ({ input: { ...c, data: { ...(c.data as object), zz: undefined } } })],
    ['a NUL property value', 'INVALID_PROPERTY_VALUE', (c) => ({ input: { ...c, data: { ...(c.data as object), zz: ['\u0000'] } } })],
    ['a create without label', 'MISSING_LABEL', (c) => ({ input: { ...c, action: 'CREATE', label: null } })],
    ['a create with a blank label', 'MISSING_LABEL', (c) => ({ input: { ...c, action: 'CREATE', label: ' ' } })],
    ['an update with an empty label', 'INVALID_LABEL', (c) => ({ input: { ...c, action: 'UPDATE', baseVersion: c.baseVersion ?? c.trunkVersion ?? 1, label: '' } })],
    ['a label with a control character', 'INVALID_LABEL', (c) => ({ input: { ...c, label: 'a\u0002b' } })],
    ['a label too long', 'INVALID_LABEL', (c) => ({ input: { ...c, label: 'x'.repeat(DEFAULT_LIMITS.maxLabelLength + 1) } })],
    ['a delete without baseVersion', 'BASE_VERSION_MISSING', (c) => ({ input: { ...c, action: 'DELETE', baseVersion: undefined } })],
    ['base below trunk', 'BASE_BELOW_TRUNK', (c) => ({ input: { ...c, branchId: BRANCH, trunkVersion: 10, baseVersion: 9 } })],
    ['a deviceId too long', 'INVALID_DEVICE_ID', (c) => ({ input: { ...c, deviceId: 'd'.repeat(201) } })],
    ['a localId without deviceId', 'MISSING_DEVICE_ID', (c) => ({ input: { ...c, localId: 'tree-1', deviceId: null } })],
    [
      'a run one change too long',
      'RUN_TOO_LONG',
      (c) => ({ input: { ...c, action: 'UPDATE', branchId: BRANCH, trunkVersion: 1, baseVersion: 2 + DEFAULT_LIMITS.maxRunLength, label: null } }),
    ],
    ['an unknown operation', 'INVALID_OPERATION', (c) => ({ input: { ...c, operations: [{ op: 'MERGE' }] } })],
  ];

  it.each(defects)('rejects any well-formed change with one defect (%s) as %s', (_, code, apply) => {
    fc.assert(
      fc.property(wellFormed, (c) => {
        const { input, limits } = apply(c);
        expect(codeOf(input, limits)).toBe(code);
      }),
      { numRuns: 30 },
    );
  });

  it('has a generated case for every code validateChange can return', () => {
    expect([...new Set(defects.map(([, code]) => code))].sort()).toEqual(RETURNED_CODES);
  });

  it('always gives a message that starts with the code sentence', () => {
    fc.assert(
      fc.property(wellFormed, fc.constantFrom(...defects), (c, [, , apply]) => {
        const { input, limits } = apply(c);
        const e = rejected(input, limits);
        expect(e.message.startsWith(ERROR_CODES[e.code])).toBe(true);
      }),
    );
  });
});

describe('changeKey', () => {
  it('a UUID in canonical (lower-case) form, any other string as sent, null for one with NUL', () => {
    expect(changeKey('C3000000-0000-4000-8000-00000000000A')).toBe('c3000000-0000-4000-8000-00000000000a');
    expect(changeKey('my-change-7')).toBe('my-change-7');
    expect(changeKey('')).toBe('');
    expect(changeKey('a\u0000b')).toBeNull();
  });
});
