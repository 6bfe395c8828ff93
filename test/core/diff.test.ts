import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffStates, type PropertyDiff } from '../../src/core/diff.js';
import type { JsonValue, PropertyValues } from '../../src/core/types.js';
import { RESERVED_PROPERTIES } from '../../src/core/validate.js';

const snap = (label: string, data: PropertyValues) => ({ label, data });

/** JSON text with keys sorted at every level: equal iff the values are equal as jsonb. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
/** A state as a client reads it: an absent property and a null one are the same, key order is not a difference. */
function normal(s: { label: string; data: PropertyValues }): string {
  return canonical({ label: s.label, data: Object.fromEntries(Object.entries(s.data).filter(([, v]) => v !== null)) });
}
/** Sets the label and every listed property to its new value (null: gone). */
function applyDiff(s: { label: string; data: PropertyValues }, diff: PropertyDiff[]): { label: string; data: PropertyValues } {
  const out = { label: s.label, data: { ...s.data } };
  for (const d of diff) {
    if (d.property === 'label') out.label = d.new as string;
    else if (d.new === null) delete out.data[d.property];
    else out.data[d.property] = d.new;
  }
  return out;
}
function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverseKeys(x)]));
  return v;
}

describe('diffStates: examples', () => {
  it('from nothing: the label and every non-null property, old values null', () => {
    expect(diffStates(null, snap('Oak', { species: 'oak', height: 3, gone: null }))).toEqual([
      { property: 'label', old: null, new: 'Oak' },
      { property: 'height', old: null, new: 3 },
      { property: 'species', old: null, new: 'oak' },
    ]);
  });

  it('from nothing to an empty state: only the label', () => {
    expect(diffStates(null, snap('', {}))).toEqual([{ property: 'label', old: null, new: '' }]);
  });

  it('equal states: nothing', () => {
    expect(diffStates(snap('Oak', { a: 1, b: [1, { c: 2 }] }), snap('Oak', { a: 1, b: [1, { c: 2 }] }))).toEqual([]);
  });

  it('a changed value, with old and new', () => {
    expect(diffStates(snap('Oak', { height: 3, species: 'oak' }), snap('Oak', { height: 5, species: 'oak' }))).toEqual([
      { property: 'height', old: 3, new: 5 },
    ]);
  });

  it('a changed label, first, then the properties sorted', () => {
    expect(diffStates(snap('Oak', { z: 1, a: 1, m: 1 }), snap('Elm', { z: 2, a: 2, m: 1 }))).toEqual([
      { property: 'label', old: 'Oak', new: 'Elm' },
      { property: 'a', old: 1, new: 2 },
      { property: 'z', old: 1, new: 2 },
    ]);
  });

  it('label comes first even when a property sorts before it', () => {
    expect(diffStates(snap('x', { A: 1 }), snap('y', { A: 2 })).map((d) => d.property)).toEqual(['label', 'A']);
  });

  it('a label differing only in case is a diff', () => {
    expect(diffStates(snap('oak', {}), snap('Oak', {}))).toEqual([{ property: 'label', old: 'oak', new: 'Oak' }]);
  });

  it('an added property has old null; a removed one has new null', () => {
    expect(diffStates(snap('L', { a: 1 }), snap('L', { b: 2 }))).toEqual([
      { property: 'a', old: 1, new: null },
      { property: 'b', old: null, new: 2 },
    ]);
  });

  it('an absent property and a null one are the same, both ways', () => {
    expect(diffStates(snap('L', {}), snap('L', { a: null }))).toEqual([]);
    expect(diffStates(snap('L', { a: null }), snap('L', {}))).toEqual([]);
  });

  it('setting a property to null is a diff to null', () => {
    expect(diffStates(snap('L', { a: 'x' }), snap('L', { a: null }))).toEqual([{ property: 'a', old: 'x', new: null }]);
  });

  it('compares nested values structurally, ignoring key order', () => {
    expect(diffStates(snap('L', { pos: { x: 1, y: [1, 2] } }), snap('L', { pos: { y: [1, 2], x: 1 } }))).toEqual([]);
  });

  it('a nested change reports the whole old and new values', () => {
    expect(diffStates(snap('L', { pos: { x: 1, y: [1, 2] } }), snap('L', { pos: { x: 1, y: [2, 1] } }))).toEqual([
      { property: 'pos', old: { x: 1, y: [1, 2] }, new: { x: 1, y: [2, 1] } },
    ]);
  });

  it('tells values of different JSON types apart', () => {
    expect(diffStates(snap('L', { a: 1, b: false, c: '', d: [] }), snap('L', { a: '1', b: 0, c: null, d: {} }))).toEqual([
      { property: 'a', old: 1, new: '1' },
      { property: 'b', old: false, new: 0 },
      { property: 'c', old: '', new: null },
      { property: 'd', old: [], new: {} },
    ]);
  });

  it('reads only own properties: a name Object.prototype also has is absent when not set', () => {
    // `toString`, `valueOf`, `hasOwnProperty`… are valid, unreserved property names (validatePropertyNames
    // accepts them), so an entity may first set one in a later version.
    expect(diffStates(snap('L', {}), snap('L', { toString: 'a' }))).toEqual([{ property: 'toString', old: null, new: 'a' }]);
    expect(diffStates(snap('L', { valueOf: 1 }), snap('L', {}))).toEqual([{ property: 'valueOf', old: 1, new: null }]);
    expect(diffStates(snap('L', { hasOwnProperty: null }), snap('L', {}))).toEqual([]);
  });

  it('does not modify its inputs', () => {
    const before = Object.freeze(snap('a', Object.freeze({ x: 1 })));
    const after = Object.freeze(snap('b', Object.freeze({ y: 2 })));
    expect(diffStates(before, after)).toHaveLength(3);
    expect(before).toEqual(snap('a', { x: 1 }));
    expect(after).toEqual(snap('b', { y: 2 }));
  });
});

// ---- properties ---------------------------------------------------------------------------

/**
 * Property names as validation lets them through: any unreserved key (the sync layer then checks
 * them against the dataset). `toString` is a valid declared name that Object.prototype also has.
 */
const key = fc.oneof(fc.constantFrom('a', 'b', 'c', 'toString'), fc.string({ maxLength: 10 })).filter((k) => !RESERVED_PROPERTIES.has(k));
const leaf = fc.oneof(fc.constantFrom<JsonValue>(null, 0, 1, 'x', true, [], {}, [1, 2], { p: 1 }), fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>);
const values = fc.dictionary(key, leaf, { maxKeys: 6 });
const label = fc.constantFrom('Oak', 'oak', 'Elm', '');
const snapshot = fc.record({ label, data: values });
/** A state and an edit of it: some keys kept, some changed, some removed, some added. */
const pair = fc.oneof(
  fc.tuple(snapshot, snapshot),
  fc.tuple(snapshot, label, values, fc.array(key, { maxLength: 3 })).map(([a, l, extra, removed]) => {
    const data = { ...a.data, ...extra };
    for (const k of removed) delete data[k];
    return [a, { label: l, data }] as const;
  }),
);

describe('diffStates: properties', () => {
  it('a state against itself, or a copy with keys reordered, has no diff', () => {
    fc.assert(
      fc.property(snapshot, (s) => {
        expect(diffStates(s, s)).toEqual([]);
        expect(diffStates(s, { label: s.label, data: reverseKeys(s.data) as PropertyValues })).toEqual([]);
      }),
    );
  });

  it('law: applying the new values of the diff to the old state gives the new state', () => {
    fc.assert(
      fc.property(pair, ([before, after]) => {
        expect(normal(applyDiff(before, diffStates(before, after)))).toBe(normal(after));
      }),
    );
  });

  it('law: every property it lists differs (nothing equal is listed)', () => {
    fc.assert(
      fc.property(pair, ([before, after]) => {
        for (const d of diffStates(before, after)) expect(canonical(d.old), d.property).not.toBe(canonical(d.new));
      }),
    );
  });

  it('law: from nothing is the label, then the diff from an empty state with that label', () => {
    fc.assert(
      fc.property(snapshot, (s) => {
        expect(diffStates(null, s)).toEqual([{ property: 'label', old: null, new: s.label }, ...diffStates({ label: s.label, data: {} }, s)]);
      }),
    );
  });

  it('is antisymmetric: reversing the states swaps old and new', () => {
    fc.assert(
      fc.property(pair, ([a, b]) => {
        expect(diffStates(b, a)).toEqual(diffStates(a, b).map((d) => ({ property: d.property, old: d.new, new: d.old })));
      }),
    );
  });

  it('lists each property once, label first, the rest sorted', () => {
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const names = diffStates(a, b).map((d) => d.property);
        const rest = names[0] === 'label' ? names.slice(1) : names;
        expect(new Set(names).size).toBe(names.length);
        expect(rest).not.toContain('label');
        expect(rest).toEqual([...rest].sort());
      }),
    );
  });
});
