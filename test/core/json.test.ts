import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asStoredJson, hasNul, isJsonValue, jsonBytes, sameJson, scrubNul, storedJson, utf8Length } from '../../src/core/json.js';
import type { JsonValue } from '../../src/core/types.js';

/** JSON text with object keys sorted at every level: equal iff the values are equal as jsonb. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The same value with every object's keys inserted in reverse order. */
function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverseKeys(x)]));
  return v;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** `f` leaves every value it is given as it was: frozen, a write would throw (ESM is strict), and its text is unchanged. */
function leavesItsInput(values: fc.Arbitrary<JsonValue>, f: (v: JsonValue) => unknown): void {
  fc.assert(
    fc.property(values, (v) => {
      const before = JSON.stringify(v);
      f(deepFreeze(v));
      expect(JSON.stringify(v)).toBe(before);
    }),
  );
}

const json = fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<JsonValue>;

/** Values from a tiny domain, so two independent draws are often equal (or nearly so). */
const tinyJson: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue; arr: JsonValue[]; obj: Record<string, JsonValue> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: 3 }, fc.constantFrom<JsonValue>(null, 0, 1, '', 'a', true, false), tie('arr'), tie('obj')),
  arr: fc.array(tie('value'), { maxLength: 3 }),
  obj: fc.dictionary(fc.constantFrom('a', 'b', 'c'), tie('value'), { maxKeys: 3 }),
})).value;

/** Pairs that are equal, equal up to key order, or independent (often different). */
const jsonPair = fc.oneof(
  fc.tuple(tinyJson, tinyJson),
  tinyJson.map((v) => [v, reverseKeys(v)] as const),
  fc.tuple(json, json),
  json.map((v) => [v, JSON.parse(JSON.stringify(v))] as const),
);

/** JSON values whose strings and keys may hold NUL (no backslashes, so JSON text stays simple). */
const nulString = (units: string[]) => fc.string({ unit: fc.constantFrom(...units), maxLength: 6 });
const nulJsonOf = (units: string[]): fc.Arbitrary<JsonValue> =>
  fc.letrec<{ value: JsonValue; arr: JsonValue[]; obj: Record<string, JsonValue> }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth: 4 },
      nulString(units),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      tie('arr'),
      tie('obj'),
    ),
    arr: fc.array(tie('value'), { maxLength: 4 }),
    obj: fc.dictionary(nulString(units), tie('value'), { maxKeys: 4 }),
  })).value;
const nulJson = nulJsonOf(['a', 'b', 'é', '\u0000', '\uFFFD']);
/** Without U+FFFD, scrubbing can never make two keys collide. */
const nulJsonNoFffd = nulJsonOf(['a', 'b', 'é', '\u0000']);

describe('sameJson', () => {
  it.each<[string, unknown, unknown]>([
    ['equal numbers', 1, 1],
    ['0 and -0 (JSON has one zero)', 0, -0],
    ['equal strings', 'oak', 'oak'],
    ['null and null', null, null],
    ['booleans', false, false],
    ['empty arrays', [], []],
    ['empty objects', {}, {}],
    ['objects with keys in another order', { a: 1, b: 2 }, { b: 2, a: 1 }],
    ['nested objects with keys in another order', { x: [{ a: 1, b: [true, null] }], y: 'z' }, { y: 'z', x: [{ b: [true, null], a: 1 }] }],
    ['a null-prototype object and a plain one', Object.assign(Object.create(null), { a: 1 }), { a: 1 }],
    ['an own __proto__ key on both sides', JSON.parse('{"__proto__":1}'), JSON.parse('{"__proto__":1}')],
  ])('%s are the same', (_, a, b) => {
    expect(sameJson(a, b)).toBe(true);
    expect(sameJson(b, a)).toBe(true);
  });

  it.each<[string, unknown, unknown]>([
    ['different numbers', 1, 2],
    ['a number and its string', 1, '1'],
    ['true and 1', true, 1],
    ['false and 0', false, 0],
    ['empty string and 0', '', 0],
    ['null and undefined', null, undefined],
    ['null and an empty object', null, {}],
    ['null and an empty array', null, []],
    ['an empty array and an empty object', [], {}],
    ['an array and an object with index keys', ['x'], { 0: 'x' }],
    ['arrays in another order', [1, 2], [2, 1]],
    ['arrays of different lengths', [1], [1, 1]],
    ['an object with an extra key', { a: 1 }, { a: 1, b: 2 }],
    ['objects with the same size but other keys', { a: undefined }, { b: undefined }],
    ['objects with a different nested value', { a: { b: [1, 2] } }, { a: { b: [1, 3] } }],
    ['an absent key and a key set to null', {}, { a: null }],
    ['strings differing in case', 'Oak', 'oak'],
    ['a string and a one-element array of it', 'a', ['a']],
  ])('%s differ', (_, a, b) => {
    expect(sameJson(a, b)).toBe(false);
    expect(sameJson(b, a)).toBe(false);
  });

  it('is reflexive on JSON values, and on a copy with keys reordered', () => {
    fc.assert(
      fc.property(json, (v) => {
        expect(sameJson(v, v)).toBe(true);
        expect(sameJson(v, reverseKeys(v))).toBe(true);
        expect(sameJson(v, JSON.parse(JSON.stringify(v)))).toBe(true);
      }),
    );
  });

  it('is symmetric', () => {
    fc.assert(
      fc.property(jsonPair, ([a, b]) => {
        expect(sameJson(a, b)).toBe(sameJson(b, a));
      }),
    );
  });

  it('agrees with JSON.stringify equality after sorting keys', () => {
    fc.assert(
      fc.property(jsonPair, ([a, b]) => {
        expect(sameJson(a, b)).toBe(canonical(a) === canonical(b));
      }),
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(tinyJson, tinyJson, tinyJson, (a, b, c) => {
        if (sameJson(a, b) && sameJson(b, c)) expect(sameJson(a, c)).toBe(true);
      }),
    );
  });

  it('sees a change to any one leaf', () => {
    fc.assert(
      fc.property(json, fc.constantFrom<JsonValue>('changed', 12345, false, null), (v, leaf) => {
        const wrapped = { inner: [v, 'x'] };
        const changed = { inner: [v, leaf] };
        expect(sameJson(wrapped, changed)).toBe(false);
      }),
    );
  });
});

describe('isJsonValue', () => {
  const nest = (n: number, inner: unknown, asObject = false): unknown => {
    let v = inner;
    for (let i = 0; i < n; i++) v = asObject ? { k: v } : [v];
    return v;
  };

  it.each<[string, unknown]>([
    ['null', null],
    ['an empty string', ''],
    ['a string', 'oak'],
    ['true', true],
    ['false', false],
    ['zero', 0],
    ['a negative fraction', -1.5],
    ['the largest double', Number.MAX_VALUE],
    ['an empty array', []],
    ['an empty object', {}],
    ['a nested structure', { a: [1, 'two', null, { b: false }], c: {} }],
    ['a null-prototype object', Object.assign(Object.create(null), { a: 1 })],
    ['an object with an own __proto__ key', JSON.parse('{"__proto__":{"a":1}}')],
    ['32 nested arrays', nest(32, 1)],
    ['32 nested objects', nest(32, 1, true)],
  ])('accepts %s', (_, v) => {
    expect(isJsonValue(v)).toBe(true);
  });

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a bigint', 1n],
    ['a Date', new Date(0)],
    ['a Map', new Map([['a', 1]])],
    ['a Set', new Set([1])],
    ['a RegExp', /oak/],
    ['a boxed string', new String('oak')],
    ['a class instance', new (class Point { x = 1 })()],
    ['a typed array', new Uint8Array([1])],
    ['undefined in an array', [1, undefined]],
    ['undefined as an object value', { a: undefined }],
    ['NaN deep inside', { a: [{ b: [NaN] }] }],
    ['Infinity deep inside', [[[Infinity]]]],
    ['a Date inside an object', { when: new Date(0) }],
    ['33 nested arrays', nest(33, 1)],
    ['33 nested objects', nest(33, 1, true)],
  ])('rejects %s', (_, v) => {
    expect(isJsonValue(v)).toBe(false);
  });

  it('accepts every generated JSON value', () => {
    fc.assert(fc.property(json, (v) => {
      expect(isJsonValue(v)).toBe(true);
    }));
  });

  it('accepts only values that survive a JSON round trip', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 3 }), (v) => {
        if (isJsonValue(v)) expect(sameJson(JSON.parse(JSON.stringify(v)), v)).toBe(true);
      }),
    );
  });

  it('rejects a JSON value with one non-JSON leaf anywhere in it', () => {
    const bad = fc.constantFrom<unknown>(undefined, NaN, Infinity, -Infinity, () => 0, new Date(0));
    fc.assert(
      fc.property(json, bad, fc.boolean(), (v, leaf, inArray) => {
        const container = inArray ? [v, [leaf]] : { v, x: { y: leaf } };
        expect(isJsonValue(container)).toBe(false);
      }),
    );
  });
});

describe('jsonBytes', () => {
  it.each<[string, unknown, number]>([
    ['null', null, 4],
    ['an ASCII string (with its quotes)', 'a', 3],
    ['a two-byte character', 'é', 4],
    ['a three-byte character', '€', 5],
    ['a character outside the BMP', '😀', 6],
    ['a lone surrogate (escaped by JSON.stringify)', '\ud800', 8],
    ['a NUL (escaped as \\u0000)', '\u0000', 8],
    ['an empty object', {}, 2],
    ['a small object', { a: 1 }, 7],
    ['an array holding undefined (written as null)', [undefined], 6],
    ['a number', 12.5, 4],
    ['undefined (no JSON text)', undefined, 0],
    ['a function (no JSON text)', () => 1, 0],
  ])('measures %s', (_, v, bytes) => {
    expect(jsonBytes(v)).toBe(bytes);
  });

  it('is the UTF-8 length of the JSON text', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3, stringUnit: 'grapheme' }), (v) => {
        expect(jsonBytes(v)).toBe(Buffer.byteLength(JSON.stringify(v), 'utf8'));
      }),
    );
  });

  it('equals the JSON text length for ASCII-only values', () => {
    fc.assert(fc.property(json, (v) => {
      expect(jsonBytes(v)).toBe(JSON.stringify(v).length);
    }));
  });
});

describe('hasNul', () => {
  it.each<[string, unknown, boolean]>([
    ['a string with NUL', 'a\u0000b', true],
    ['a string that is only NUL', '\u0000', true],
    ['a plain string', 'ab', false],
    ['the replacement character', '\uFFFD', false],
    ['the text \\u0000 (backslash, not NUL)', '\\u0000', false],
    ['NUL in a nested array', ['x', ['y', '\u0000']], true],
    ['NUL in an object value', { a: { b: 'x\u0000' } }, true],
    ['NUL in a top-level key', { 'a\u0000': 1 }, true],
    ['NUL in a nested key', { a: [{ 'b\u0000': null }] }, true],
    ['a clean nested structure', { a: ['b', { c: 'd' }] }, false],
    ['a number', 0, false],
    ['null', null, false],
    ['undefined', undefined, false],
    ['a boolean', true, false],
  ])('%s: %s', (_, v, expected) => {
    expect(hasNul(v)).toBe(expected);
  });

  it('agrees with the JSON text holding an escaped NUL', () => {
    fc.assert(fc.property(nulJson, (v) => {
      expect(hasNul(v)).toBe(JSON.stringify(v).includes('\\u0000'));
    }));
  });
});

describe('scrubNul', () => {
  it.each<[string, unknown, unknown]>([
    ['a string with NUL', 'a\u0000b', 'a\uFFFDb'],
    ['several NULs', '\u0000\u0000x\u0000', '\uFFFD\uFFFDx\uFFFD'],
    ['a clean string', 'oak', 'oak'],
    ['an array', ['\u0000', 'x', 1, null], ['\uFFFD', 'x', 1, null]],
    ['keys and values', { 'k\u0000': 'v\u0000', ok: { 'n\u0000': ['\u0000'] } }, { 'k\uFFFD': 'v\uFFFD', ok: { 'n\uFFFD': ['\uFFFD'] } }],
    ['a number', 42, 42],
    ['a boolean', false, false],
    ['null', null, null],
    ['undefined', undefined, undefined],
  ])('scrubs %s', (_, input, expected) => {
    expect(scrubNul(input)).toEqual(expected);
  });

  it('returns a clean string itself', () => {
    const s = 'no nul here';
    expect(scrubNul(s)).toBe(s);
  });

  it('keeps an own __proto__ key an own key', () => {
    const out = scrubNul(JSON.parse('{"__proto__":"x\\u0000"}')) as Record<string, unknown>;
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.entries(out)).toEqual([['__proto__', 'x\uFFFD']]);
  });

  it('never leaves a NUL', () => {
    fc.assert(fc.property(nulJson, (v) => {
      expect(hasNul(scrubNul(v))).toBe(false);
    }));
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(nulJson, (v) => {
        const once = scrubNul(v);
        expect(scrubNul(once)).toEqual(once);
      }),
    );
  });

  it('leaves NUL-free values unchanged', () => {
    fc.assert(fc.property(json, (v) => {
      expect(scrubNul(v)).toEqual(v);
    }));
  });

  it('replaces each NUL by U+FFFD and changes nothing else', () => {
    fc.assert(
      fc.property(nulJsonNoFffd, (v) => {
        expect(JSON.stringify(scrubNul(v))).toBe(JSON.stringify(v).replaceAll('\\u0000', '\uFFFD'));
      }),
    );
  });

  it('keeps string lengths and every other character in place', () => {
    fc.assert(
      fc.property(nulString(['a', '\u0000', 'é', '\uFFFD']), (s) => {
        const out = scrubNul(s);
        expect(out).toHaveLength(s.length);
        for (let i = 0; i < s.length; i++) expect(out[i]).toBe(s[i] === '\u0000' ? '\uFFFD' : s[i]);
      }),
    );
  });

  it('does not modify its input', () => leavesItsInput(nulJson, scrubNul));
});

describe('utf8Length', () => {
  it.each<[string, string, number]>([
    ['the empty string', '', 0],
    ['ASCII', 'oak', 3],
    ['the last one-byte character', '\u007f', 1],
    ['the first two-byte character', '\u0080', 2],
    ['the last two-byte character', '\u07ff', 2],
    ['the first three-byte character', '\u0800', 3],
    ['a pair (outside the BMP)', '😀', 4],
    ['a lone high surrogate (U+FFFD)', '\ud800', 3],
    ['a lone low surrogate', '\udc00', 3],
    ['a high surrogate at the end, after a pair', '😀\ud83d', 7],
    ['two high surrogates, then a low one', '\ud83d\ud83d\ude00', 7],
    ['the last BMP character', '\uffff', 3],
  ])('counts %s', (_, s, bytes) => {
    expect(utf8Length(s)).toBe(bytes);
    expect(new TextEncoder().encode(s).length).toBe(bytes);
  });

  it('is the length TextEncoder writes, for any UTF-16 text (lone surrogates included)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: fc.constantFrom('a', 'é', '€', '\ud83d', '\ude00', '😀'), maxLength: 12 }), (a, b) => {
        for (const s of [a, b, a + b]) expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
      }),
      { numRuns: 500 },
    );
  });
});

describe('storedJson', () => {
  /** Strings of units that JSON.stringify escapes, that jsonb refuses, or that look like their escapes. */
  const tricky = nulJsonOf(['a', 'é', '\u0000', '\ud83d', '\ude00', '😀', '\\', 'u', '0', 'd', '8', '\uFFFD']);

  it.each<[string, unknown, unknown]>([
    ['a clean object', { a: 'x', n: [1, null] }, { a: 'x', n: [1, null] }],
    ['a NUL in a key and a value', { 'k\u0000': 'v\u0000' }, { 'k\uFFFD': 'v\uFFFD' }],
    ['a lone surrogate', ['\ud800'], ['\uFFFD']],
    ['a pair, kept', '😀', '😀'],
    ['a literal backslash-u text, kept', '\\u0000', '\\u0000'],
    ['undefined keys and Infinity, as jsonb keeps them', { a: undefined, b: Infinity }, { b: null }],
    ['undefined', undefined, null],
  ])('stores %s', (_, v, stored) => {
    expect(storedJson(v)).toStrictEqual(stored);
  });

  it('is asStoredJson of scrubNul, for values with and without text to scrub', () => {
    fc.assert(
      fc.property(fc.oneof(tricky, json, nulJson), (v) => {
        expect(storedJson(v)).toStrictEqual(asStoredJson(scrubNul(v)));
      }),
      { numRuns: 500 },
    );
  });

  it('does not modify its input', () => leavesItsInput(tricky, storedJson));
});
