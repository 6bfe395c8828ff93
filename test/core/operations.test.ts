import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { touchedProperties, tryApplyChange } from '../../src/core/apply.js';
import { conflictOfChange } from '../../src/core/conflict.js';
import { applyOperations, isOverwrite, operationProperty, parseOperations, type OpsResult } from '../../src/core/operations.js';
import type { EntityState, JsonValue, Operation, OperationInput, PropertyValues, ValidChange } from '../../src/core/types.js';
import { validChange } from '../helpers/core.js';

/** Changes as replayable operations (DESIGN "Operations"): parsing, replay, and how they merge. */

const state = (data: PropertyValues, label = 'Oak'): OpsResult => ({ label, data });

/** Applies operations and asserts success. */
function apply(s: OpsResult, ops: Operation[]): OpsResult {
  const r = applyOperations(s, ops);
  if (!r.ok) throw new Error(`unexpected ${r.error.code}: ${r.error.message}`);
  return r.state;
}

function parsed(raw: OperationInput[]): Operation[] {
  const r = parseOperations(raw);
  if (!r.ok) throw new Error(`unexpected ${r.error.code}: ${r.error.message}`);
  return r.operations;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** A value nested in `depth` arrays around a scalar. */
const nested = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

describe('parseOperations: well-formed operations', () => {
  it('accepts every kind and normalises it', () => {
    expect(
      parsed([
        { op: 'SET', property: 'height', value: 3 },
        { op: 'SET', property: 'notes', value: null },
        { op: 'UNSET', property: 'girth' },
        { op: 'LIST_ADD', property: 'kids', value: { name: 'x' } },
        { op: 'LIST_ADD', property: 'kids', value: 'y', index: 0 },
        { op: 'LIST_ADD', property: 'kids', value: 'z', index: null },
        { op: 'LIST_REMOVE', property: 'kids', value: [1, 2] },
        { op: 'INCREMENT', property: 'count', by: -2.5 },
        { op: 'SET_LABEL', value: '  Tall oak  ' },
      ]),
    ).toEqual([
      { op: 'SET', property: 'height', value: 3 },
      { op: 'SET', property: 'notes', value: null },
      { op: 'UNSET', property: 'girth' },
      { op: 'LIST_ADD', property: 'kids', value: { name: 'x' }, index: null },
      { op: 'LIST_ADD', property: 'kids', value: 'y', index: 0 },
      { op: 'LIST_ADD', property: 'kids', value: 'z', index: null },
      { op: 'LIST_REMOVE', property: 'kids', value: [1, 2] },
      { op: 'INCREMENT', property: 'count', by: -2.5 },
      { op: 'SET_LABEL', value: 'Tall oak' },
    ]);
  });

  it('accepts no operations at all', () => {
    expect(parseOperations([])).toEqual({ ok: true, operations: [] });
  });

  it('accepts a value nested exactly to the depth limit', () => {
    expect(parseOperations([{ op: 'SET', property: 'p', value: nested(32) }]).ok).toBe(true);
    expect(parseOperations([{ op: 'LIST_ADD', property: 'p', value: nested(32) }]).ok).toBe(true);
  });

  it('ignores fields a kind does not use (value of UNSET, index of SET, by of LIST_ADD)', () => {
    expect(parsed([{ op: 'UNSET', property: 'p', value: 3, by: 2 }])).toEqual([{ op: 'UNSET', property: 'p' }]);
    expect(parsed([{ op: 'SET', property: 'p', value: 1, index: -5 }])).toEqual([{ op: 'SET', property: 'p', value: 1 }]);
    expect(parsed([{ op: 'INCREMENT', property: 'p', by: 1, value: 'x' }])).toEqual([{ op: 'INCREMENT', property: 'p', by: 1 }]);
  });
});

describe('parseOperations: every rejection is INVALID_OPERATION, naming the operation', () => {
  const rejects = (raw: OperationInput[], position: number, why: RegExp) => {
    const r = parseOperations(raw);
    expect(r.ok, `${raw.map((o) => o.op).join(', ')}: ${why}`).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('INVALID_OPERATION');
    expect(r.error.message).toMatch(new RegExp(`operation ${position}: `));
    expect(r.error.message).toMatch(why);
  };
  const good: OperationInput = { op: 'SET', property: 'p', value: 1 };

  it('an unknown kind (quoted, cut to 40 characters)', () => {
    rejects([{ op: 'APPEND', property: 'p', value: 1 }], 1, /unknown kind "APPEND"/);
    rejects([{ op: 'set', property: 'p', value: 1 }], 1, /unknown kind "set"/);
    rejects([good, { op: '', property: 'p' }], 2, /unknown kind ""/);
    const r = parseOperations([{ op: 'X'.repeat(500) }]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message.length).toBeLessThan(200);
  });

  it('SET_LABEL without a non-empty string', () => {
    rejects([{ op: 'SET_LABEL' }], 1, /SET_LABEL needs a non-empty string value/);
    rejects([{ op: 'SET_LABEL', value: '' }], 1, /SET_LABEL/);
    rejects([{ op: 'SET_LABEL', value: '   ' }], 1, /SET_LABEL/);
    rejects([{ op: 'SET_LABEL', value: 42 }], 1, /SET_LABEL/);
    rejects([{ op: 'SET_LABEL', value: null }], 1, /SET_LABEL/);
    rejects([{ op: 'SET_LABEL', value: ['a'] }], 1, /SET_LABEL/);
    rejects([{ op: 'SET_LABEL', value: 'a\u0000b' }], 1, /SET_LABEL/);
    rejects([{ op: 'SET_LABEL', value: 'lone \uD800 surrogate' }], 1, /SET_LABEL/);
  });

  it('a property-based kind without a property', () => {
    for (const op of ['SET', 'UNSET', 'LIST_ADD', 'LIST_REMOVE', 'INCREMENT'] as const) {
      rejects([{ op, value: 1, by: 1 }], 1, new RegExp(`${op} needs a property`));
      rejects([{ op, property: null, value: 1, by: 1 }], 1, new RegExp(`${op} needs a property`));
      rejects([good, { op, property: '', value: 1, by: 1 }], 2, new RegExp(`${op} needs a property`));
      rejects([{ op, property: 7 as unknown as string, value: 1, by: 1 }], 1, new RegExp(`${op} needs a property`));
    }
  });

  it('SET, LIST_ADD and LIST_REMOVE without a JSON value', () => {
    for (const op of ['SET', 'LIST_ADD', 'LIST_REMOVE'] as const) {
      const needs = new RegExp(`${op} needs a JSON value`);
      rejects([{ op, property: 'p' }], 1, needs);
      rejects([{ op, property: 'p', value: undefined }], 1, needs);
      rejects([{ op, property: 'p', value: Number.NaN }], 1, needs);
      rejects([{ op, property: 'p', value: Number.POSITIVE_INFINITY }], 1, needs);
      rejects([{ op, property: 'p', value: () => 1 }], 1, needs);
      rejects([{ op, property: 'p', value: new Date(0) }], 1, needs);
      rejects([{ op, property: 'p', value: [1, undefined] }], 1, needs);
      rejects([{ op, property: 'p', value: { a: 1n } }], 1, needs);
      // Text Postgres cannot store: NUL or a lone surrogate, in a value or a key.
      rejects([{ op, property: 'p', value: 'a\u0000b' }], 1, needs);
      rejects([{ op, property: 'p', value: ['\uDC00'] }], 1, needs);
      rejects([{ op, property: 'p', value: { 'k\u0000': 1 } }], 1, needs);
      // Nested deeper than the limit.
      rejects([{ op, property: 'p', value: nested(33) }], 1, needs);
      rejects([good, good, { op, property: 'p', value: nested(5000) }], 3, needs);
    }
  });

  it('LIST_ADD with an index that is not a whole number 0 or more', () => {
    for (const index of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, -0.5]) {
      rejects([{ op: 'LIST_ADD', property: 'p', value: 1, index }], 1, /index must be a whole number, 0 or more/);
    }
    expect(parsed([{ op: 'LIST_ADD', property: 'p', value: 1, index: 2 ** 53 - 1 }])).toEqual([{ op: 'LIST_ADD', property: 'p', value: 1, index: 2 ** 53 - 1 }]);
  });

  it('INCREMENT without a finite number `by`', () => {
    for (const by of [undefined, null, '1' as unknown as number, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      rejects([{ op: 'INCREMENT', property: 'p', by }], 1, /INCREMENT needs a finite number `by`/);
    }
  });

  it('stops at the first bad operation, whatever follows', () => {
    rejects([good, { op: 'INCREMENT', property: 'p' }, { op: 'NOPE' }], 2, /INCREMENT/);
  });
});

describe('applyOperations: each operation', () => {
  it('SET sets a value, replacing lists and objects whole', () => {
    expect(apply(state({ a: 1, kids: ['x'] }), [{ op: 'SET', property: 'kids', value: { y: 1 } }, { op: 'SET', property: 'b', value: null }])).toEqual(state({ a: 1, kids: { y: 1 }, b: null }));
  });

  it('UNSET removes a property; removing an absent one changes nothing', () => {
    expect(apply(state({ a: 1, b: 2 }), [{ op: 'UNSET', property: 'a' }])).toEqual(state({ b: 2 }));
    const r = apply(state({ b: 2 }), [{ op: 'UNSET', property: 'a' }]);
    expect(r).toEqual(state({ b: 2 }));
    expect(Object.hasOwn(r.data, 'a')).toBe(false);
  });

  it('SET_LABEL sets the label and leaves the properties', () => {
    expect(apply(state({ a: 1 }, 'Oak'), [{ op: 'SET_LABEL', value: 'Elm' }])).toEqual(state({ a: 1 }, 'Elm'));
  });

  it('INCREMENT adds `by`; an absent (or null) property counts as 0', () => {
    expect(apply(state({ n: 5 }), [{ op: 'INCREMENT', property: 'n', by: 3 }])).toEqual(state({ n: 8 }));
    expect(apply(state({ n: 5 }), [{ op: 'INCREMENT', property: 'n', by: -7 }])).toEqual(state({ n: -2 }));
    expect(apply(state({ n: 1.5 }), [{ op: 'INCREMENT', property: 'n', by: 0.25 }])).toEqual(state({ n: 1.75 }));
    expect(apply(state({}), [{ op: 'INCREMENT', property: 'n', by: 4 }])).toEqual(state({ n: 4 }));
    expect(apply(state({ n: null }), [{ op: 'INCREMENT', property: 'n', by: 4 }])).toEqual(state({ n: 4 }));
    expect(apply(state({}), [{ op: 'INCREMENT', property: 'n', by: 0 }])).toEqual(state({ n: 0 }));
  });

  it('INCREMENT to a sum past the largest double is VALUE_OUT_OF_RANGE, both ways; the largest finite sums are fine', () => {
    for (const [n, by] of [[Number.MAX_VALUE, Number.MAX_VALUE], [1.7e308, 1e308], [-Number.MAX_VALUE, -1e308]] as const) {
      expect(applyOperations(state({ n }), [{ op: 'INCREMENT', property: 'n', by }])).toEqual({
        ok: false,
        error: { code: 'VALUE_OUT_OF_RANGE', message: `the result is not a finite number: INCREMENT of "n" by ${by} leaves the range of numbers` },
      });
    }
    expect(apply(state({ n: Number.MAX_VALUE }), [{ op: 'INCREMENT', property: 'n', by: 1 }])).toEqual(state({ n: Number.MAX_VALUE }));
    expect(apply(state({ n: 1e308 }), [{ op: 'INCREMENT', property: 'n', by: -1e308 }])).toEqual(state({ n: 0 }));
  });

  it('LIST_ADD appends without an index, inserts at one, appends past the end, and makes the list when absent', () => {
    const kids = state({ kids: ['a', 'b', 'c'] });
    expect(apply(kids, [{ op: 'LIST_ADD', property: 'kids', value: 'd', index: null }]).data.kids).toEqual(['a', 'b', 'c', 'd']);
    expect(apply(kids, [{ op: 'LIST_ADD', property: 'kids', value: 'd', index: 0 }]).data.kids).toEqual(['d', 'a', 'b', 'c']);
    expect(apply(kids, [{ op: 'LIST_ADD', property: 'kids', value: 'd', index: 2 }]).data.kids).toEqual(['a', 'b', 'd', 'c']);
    expect(apply(kids, [{ op: 'LIST_ADD', property: 'kids', value: 'd', index: 3 }]).data.kids).toEqual(['a', 'b', 'c', 'd']);
    expect(apply(kids, [{ op: 'LIST_ADD', property: 'kids', value: 'd', index: 99 }]).data.kids).toEqual(['a', 'b', 'c', 'd']);
    expect(apply(state({}), [{ op: 'LIST_ADD', property: 'kids', value: { n: 1 }, index: null }]).data).toEqual({ kids: [{ n: 1 }] });
    expect(apply(state({}), [{ op: 'LIST_ADD', property: 'kids', value: 'x', index: 5 }]).data).toEqual({ kids: ['x'] });
    expect(apply(state({ kids: null }), [{ op: 'LIST_ADD', property: 'kids', value: 'x', index: null }]).data).toEqual({ kids: ['x'] });
    // A duplicate is still added: a list is not a set.
    expect(apply(state({ kids: ['x'] }), [{ op: 'LIST_ADD', property: 'kids', value: 'x', index: null }]).data.kids).toEqual(['x', 'x']);
  });

  it('LIST_REMOVE removes every element deeply equal to the value (key order aside); absent value or list: nothing happens', () => {
    const s = state({ kids: ['a', { x: 1, y: [2, 3] }, 'b', 'a', { y: [2, 3], x: 1 }, { x: 1 }] });
    expect(apply(s, [{ op: 'LIST_REMOVE', property: 'kids', value: 'a' }]).data.kids).toEqual([{ x: 1, y: [2, 3] }, 'b', { y: [2, 3], x: 1 }, { x: 1 }]);
    expect(apply(s, [{ op: 'LIST_REMOVE', property: 'kids', value: { y: [2, 3], x: 1 } }]).data.kids).toEqual(['a', 'b', 'a', { x: 1 }]);
    expect(apply(s, [{ op: 'LIST_REMOVE', property: 'kids', value: { y: [3, 2], x: 1 } }]).data.kids).toEqual(s.data.kids);
    expect(apply(s, [{ op: 'LIST_REMOVE', property: 'kids', value: 'zzz' }])).toEqual(s);
    expect(apply(state({ kids: [1, '1', true, null] }), [{ op: 'LIST_REMOVE', property: 'kids', value: 1 }]).data.kids).toEqual(['1', true, null]);
    // Absent list: stays absent (not created empty).
    const none = apply(state({ a: 1 }), [{ op: 'LIST_REMOVE', property: 'kids', value: 'a' }]);
    expect(none).toEqual(state({ a: 1 }));
    expect(Object.hasOwn(none.data, 'kids')).toBe(false);
    expect(apply(state({ kids: null }), [{ op: 'LIST_REMOVE', property: 'kids', value: 'a' }])).toEqual(state({ kids: null }));
    expect(apply(state({ kids: [] }), [{ op: 'LIST_REMOVE', property: 'kids', value: 'a' }])).toEqual(state({ kids: [] }));
  });

  it('replays in order, each on the result of the previous one', () => {
    expect(
      apply(state({ n: 1, kids: ['a'] }), [
        { op: 'INCREMENT', property: 'n', by: 1 },
        { op: 'SET', property: 'n', value: 10 },
        { op: 'INCREMENT', property: 'n', by: 5 },
        { op: 'LIST_ADD', property: 'kids', value: 'b', index: null },
        { op: 'LIST_REMOVE', property: 'kids', value: 'a' },
        { op: 'LIST_ADD', property: 'kids', value: 'c', index: 0 },
        { op: 'UNSET', property: 'kids' },
        { op: 'LIST_ADD', property: 'kids', value: 'd', index: null },
        { op: 'SET_LABEL', value: 'One' },
        { op: 'SET_LABEL', value: 'Two' },
      ]),
    ).toEqual(state({ n: 15, kids: ['d'] }, 'Two'));
  });

  it('never changes its input', () => {
    const s = deepFreeze(state({ n: 1, kids: ['a', 'b'], o: { x: 1 } }));
    const r = apply(s, [
      { op: 'INCREMENT', property: 'n', by: 1 },
      { op: 'LIST_ADD', property: 'kids', value: 'c', index: 1 },
      { op: 'LIST_REMOVE', property: 'kids', value: 'a' },
      { op: 'UNSET', property: 'o' },
      { op: 'SET_LABEL', value: 'Elm' },
    ]);
    expect(r).toEqual(state({ n: 2, kids: ['c', 'b'] }, 'Elm'));
    expect(s).toEqual(state({ n: 1, kids: ['a', 'b'], o: { x: 1 } }));
  });
});

describe('applyOperations: type mismatches are OPERATION_TYPE_MISMATCH, and nothing is applied', () => {
  const mismatch = (data: PropertyValues, ops: Operation[], what: RegExp) => {
    const r = applyOperations(deepFreeze(state(data)), ops);
    expect(r.ok, JSON.stringify({ data, ops })).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('OPERATION_TYPE_MISMATCH');
    expect(r.error.message).toMatch(what);
  };

  it('INCREMENT on text, a boolean, a list or an object', () => {
    for (const v of ['3', true, false, [1], {}, { n: 1 }] as JsonValue[]) {
      mismatch({ n: v }, [{ op: 'INCREMENT', property: 'n', by: 1 }], /INCREMENT on "n", which is not a number/);
    }
  });

  it('LIST_ADD on anything but a list (or absent / null)', () => {
    for (const v of ['a', 0, true, { 0: 'a' }] as JsonValue[]) {
      mismatch({ kids: v }, [{ op: 'LIST_ADD', property: 'kids', value: 'x', index: null }], /LIST_ADD on "kids", which is not a list/);
      mismatch({ kids: v }, [{ op: 'LIST_ADD', property: 'kids', value: 'x', index: 0 }], /LIST_ADD on "kids"/);
    }
  });

  it('LIST_REMOVE on anything but a list (or absent / null)', () => {
    for (const v of ['a', 0, false, { a: 1 }] as JsonValue[]) {
      mismatch({ kids: v }, [{ op: 'LIST_REMOVE', property: 'kids', value: 'a' }], /LIST_REMOVE on "kids", which is not a list/);
    }
  });

  it('a mismatch made by an earlier operation of the same change, after good ones', () => {
    mismatch({ n: 1 }, [{ op: 'INCREMENT', property: 'n', by: 1 }, { op: 'SET', property: 'n', value: 'x' }, { op: 'INCREMENT', property: 'n', by: 1 }], /INCREMENT on "n"/);
    mismatch({}, [{ op: 'LIST_ADD', property: 'k', value: 1, index: null }, { op: 'INCREMENT', property: 'k', by: 1 }], /INCREMENT on "k"/);
    mismatch({}, [{ op: 'INCREMENT', property: 'k', by: 1 }, { op: 'LIST_ADD', property: 'k', value: 1, index: null }], /LIST_ADD on "k"/);
  });
});

describe('operations inside a change (tryApplyChange, touchedProperties)', () => {
  const change = validChange;
  const current: EntityState = { label: 'Oak', data: { n: 1, kids: ['a'], title: 'T' }, version: 3, deleted: false };

  it('`data` applies first, as one SET per property, then the operations', () => {
    const r = tryApplyChange(current, change({ data: { n: 10, kids: ['z'] }, operations: [{ op: 'INCREMENT', property: 'n', by: 1 }, { op: 'LIST_ADD', property: 'kids', value: 'y', index: null }] }));
    expect(r).toEqual({ ok: true, applied: { label: 'Oak', data: { n: 11, kids: ['z', 'y'], title: 'T' }, deleted: false, changed: { n: 11, kids: ['z', 'y'] } } });
  });

  it('`changed` holds each operated property with its resulting value (null when unset) and the label when set', () => {
    const r = tryApplyChange(current, change({ operations: [{ op: 'UNSET', property: 'title' }, { op: 'LIST_ADD', property: 'kids', value: 'b', index: null }, { op: 'SET_LABEL', value: 'Elm' }] }));
    expect(r).toEqual({ ok: true, applied: { label: 'Elm', data: { n: 1, kids: ['a', 'b'] }, deleted: false, changed: { title: null, kids: ['a', 'b'], label: 'Elm' } } });
  });

  it('a type mismatch is an error value, also when `data` caused it', () => {
    const r = tryApplyChange(current, change({ data: { n: 'many' }, operations: [{ op: 'INCREMENT', property: 'n', by: 1 }] }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('OPERATION_TYPE_MISMATCH');
    const t = tryApplyChange(current, change({ operations: [{ op: 'LIST_ADD', property: 'title', value: 'x', index: null }] }));
    expect(!t.ok && t.error.code).toBe('OPERATION_TYPE_MISMATCH');
  });

  it('a create replays operations on an empty state', () => {
    const r = tryApplyChange(null, change({ action: 'CREATE', label: 'Oak', data: { n: 2 }, operations: [{ op: 'INCREMENT', property: 'n', by: 3 }, { op: 'LIST_ADD', property: 'kids', value: 'a', index: 4 }] }));
    expect(r).toEqual({ ok: true, applied: { label: 'Oak', data: { n: 5, kids: ['a'] }, deleted: false, changed: { n: 5, kids: ['a'], label: 'Oak' } } });
  });

  it('touched: SET, UNSET and SET_LABEL (and plain data, and the label) only', () => {
    expect(touchedProperties(change({ operations: [{ op: 'LIST_ADD', property: 'kids', value: 1, index: null }, { op: 'LIST_REMOVE', property: 'kids', value: 1 }, { op: 'INCREMENT', property: 'n', by: 1 }] }))).toEqual([]);
    expect(new Set(touchedProperties(change({ data: { a: 1 }, operations: [{ op: 'SET', property: 'b', value: 1 }, { op: 'UNSET', property: 'c' }, { op: 'INCREMENT', property: 'n', by: 1 }] })) as string[])).toEqual(new Set(['a', 'b', 'c']));
    expect(touchedProperties(change({ operations: [{ op: 'SET_LABEL', value: 'X' }] }))).toEqual(['label']);
    expect(touchedProperties(change({ action: 'DELETE', operations: [] }))).toBe('ALL');
  });

  it('isOverwrite and operationProperty', () => {
    expect((['SET', 'UNSET', 'SET_LABEL', 'LIST_ADD', 'LIST_REMOVE', 'INCREMENT'] as const).map((op) => isOverwrite({ op, property: 'p', value: 1, index: null, by: 1 } as Operation))).toEqual([true, true, true, false, false, false]);
    expect(operationProperty({ op: 'SET_LABEL', value: 'x' })).toBe('label');
    expect(operationProperty({ op: 'INCREMENT', property: 'n', by: 1 })).toBe('n');
  });
});

/* ---- Properties: merge operations commute and lose nothing ---- */

const LISTS = ['kids', 'tags'] as const;
const COUNTERS = ['count', 'score'] as const;

/** Multiset key of a JSON value: the canonical text (object keys sorted). */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
const multiset = (list: unknown): string[] => {
  expect(Array.isArray(list), `a list: ${JSON.stringify(list)}`).toBe(true);
  return (list as unknown[]).map(canon).sort();
};

/** Compares end states: lists as multisets, everything else (counters, label) exactly. */
function normalise(s: OpsResult): unknown {
  const data = Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, (LISTS as readonly string[]).includes(k) ? multiset(v) : v]));
  return { label: s.label, data };
}

/** Values clients add: tagged so they never equal a value some client removes. */
const added = fc.jsonValue({ maxDepth: 3 }).map((v) => ({ added: v }) as JsonValue);
/** Values clients remove (never added by anyone). */
const removable = fc.oneof(fc.constantFrom<JsonValue>('r1', 'r2', 3, { r: [1, 2] }, { r: { a: 1, b: 2 } }), fc.string().map((s) => `r:${s}`));

const appendOp: fc.Arbitrary<Operation> = fc.record({ property: fc.constantFrom(...LISTS), value: added }).map(({ property, value }) => ({ op: 'LIST_ADD', property, value, index: null }));
const incrementOp: fc.Arbitrary<Operation> = fc.record({ property: fc.constantFrom(...COUNTERS), by: fc.integer({ min: -1_000_000, max: 1_000_000 }) }).map(({ property, by }) => ({ op: 'INCREMENT', property, by }));
const removeOp: fc.Arbitrary<Operation> = fc.record({ property: fc.constantFrom(...LISTS), value: removable }).map(({ property, value }) => ({ op: 'LIST_REMOVE', property, value }));

/** A start state: each list absent or holding some values (removable ones among them, key order varied), each counter absent or an integer. */
const startState: fc.Arbitrary<OpsResult> = fc
  .record({
    kids: fc.option(fc.array(fc.oneof(removable, added, removable.map((v) => (v && typeof v === 'object' && !Array.isArray(v) ? (Object.fromEntries(Object.entries(v).reverse()) as JsonValue) : v))), { maxLength: 8 }), { nil: undefined }),
    tags: fc.option(fc.array(fc.oneof(removable, added), { maxLength: 8 }), { nil: undefined }),
    count: fc.option(fc.integer({ min: -1000, max: 1000 }), { nil: undefined }),
    score: fc.option(fc.integer({ min: -1000, max: 1000 }), { nil: undefined }),
    title: fc.option(fc.string(), { nil: undefined }),
  })
  .map((r) => ({ label: 'Start', data: Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as PropertyValues }));

/** Several clients, each with its own list of operations (each operation its own change). */
const clients = (op: fc.Arbitrary<Operation>) => fc.array(fc.array(op, { maxLength: 6 }), { minLength: 1, maxLength: 4 });

/** A permutation of 0..n-1 from random sort keys. */
const permutationOf = (n: number) => fc.array(fc.double({ noNaN: true }), { minLength: n, maxLength: n }).map((keys) => keys.map((k, i) => [k, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i));

/** Ops of all clients, with two arbitrary orders of them. */
const twoOrders = (op: fc.Arbitrary<Operation>) =>
  clients(op).chain((cs) => {
    const all = cs.flat();
    return fc.tuple(fc.constant(cs), permutationOf(all.length), permutationOf(all.length));
  });

/** Each operation applied as its own change, in the given order, on the state it finds. */
function replayOneByOne(start: OpsResult, ops: readonly Operation[]): OpsResult {
  return ops.reduce((s, op) => apply(s, [op]), start);
}

/** Each client's operations in its own order, clients interleaved as `schedule` (client indexes) says. */
function interleave<T>(cs: readonly (readonly T[])[], schedule: readonly number[]): T[] {
  const next = cs.map(() => 0);
  const out: T[] = [];
  for (const c of schedule) {
    const i = next[c]!;
    if (i < cs[c]!.length) {
      out.push(cs[c]![i]!);
      next[c] = i + 1;
    }
  }
  // Whatever the schedule did not reach, in client order.
  cs.forEach((ops, c) => out.push(...ops.slice(next[c])));
  return out;
}

describe('property: list appends and counter increments from several clients commute', () => {
  it('any two orders of LIST_ADD (append) and INCREMENT give the same state (lists as multisets, counters exactly)', () => {
    fc.assert(
      fc.property(startState, twoOrders(fc.oneof(appendOp, incrementOp)), (start, [cs, p, q]) => {
        const all = cs.flat();
        const a = replayOneByOne(start, p.map((i) => all[i]!));
        const b = replayOneByOne(start, q.map((i) => all[i]!));
        expect(normalise(a)).toEqual(normalise(b));
      }),
      { numRuns: 300 },
    );
  });

  it('any interleaving of the clients (each keeping its own order), batched or not, ends the same as all in sequence', () => {
    fc.assert(
      fc.property(startState, clients(fc.oneof(appendOp, incrementOp)), fc.array(fc.nat(3), { maxLength: 30 }), fc.boolean(), (start, cs, schedule, batched) => {
        const sequential = replayOneByOne(start, cs.flat());
        // Batched: each client's whole list is one change, clients in schedule order.
        const interleaved = batched
          ? interleave(cs.map((ops) => [ops]), schedule.map((c) => c % cs.length)).reduce((s, ops) => apply(s, ops), start)
          : replayOneByOne(start, interleave(cs, schedule.map((c) => c % cs.length)));
        expect(normalise(interleaved)).toEqual(normalise(sequential));
      }),
      { numRuns: 300 },
    );
  });

  it('never drops an added element, and sums every increment', () => {
    fc.assert(
      fc.property(startState, twoOrders(fc.oneof(appendOp, incrementOp)), (start, [cs, p]) => {
        const all = cs.flat();
        const end = replayOneByOne(start, p.map((i) => all[i]!));
        for (const list of LISTS) {
          const adds = all.filter((o) => o.op === 'LIST_ADD' && o.property === list).map((o) => (o as { value: JsonValue }).value);
          const before = (start.data[list] as JsonValue[] | undefined) ?? [];
          if (before.length === 0 && adds.length === 0 && !Object.hasOwn(start.data, list)) {
            expect(Object.hasOwn(end.data, list)).toBe(false);
          } else {
            expect(multiset(end.data[list])).toEqual([...before, ...adds].map(canon).sort());
          }
        }
        for (const counter of COUNTERS) {
          const bys = all.filter((o) => o.op === 'INCREMENT' && o.property === counter).map((o) => (o as { by: number }).by);
          if (bys.length === 0) expect(end.data[counter]).toEqual(start.data[counter]);
          else expect(end.data[counter]).toBe(((start.data[counter] as number | undefined) ?? 0) + bys.reduce((x, y) => x + y, 0));
        }
        // Nothing else moved.
        expect(end.label).toBe(start.label);
        expect(end.data.title).toEqual(start.data.title);
      }),
      { numRuns: 300 },
    );
  });
});

describe('property: LIST_REMOVE of values nobody adds commutes with the rest', () => {
  it('any two orders of LIST_ADD, LIST_REMOVE and INCREMENT give the same state', () => {
    fc.assert(
      fc.property(startState, twoOrders(fc.oneof(appendOp, incrementOp, removeOp)), (start, [cs, p, q]) => {
        const all = cs.flat();
        const a = replayOneByOne(start, p.map((i) => all[i]!));
        const b = replayOneByOne(start, q.map((i) => all[i]!));
        expect(normalise(a)).toEqual(normalise(b));
      }),
      { numRuns: 300 },
    );
  });

  it('the end list is the start list without the removed values, plus every added element', () => {
    fc.assert(
      fc.property(startState, twoOrders(fc.oneof(appendOp, removeOp)), (start, [cs, p]) => {
        const all = cs.flat();
        const end = replayOneByOne(start, p.map((i) => all[i]!));
        for (const list of LISTS) {
          const removed = new Set(all.filter((o) => o.op === 'LIST_REMOVE' && o.property === list).map((o) => canon((o as { value: JsonValue }).value)));
          const adds = all.filter((o) => o.op === 'LIST_ADD' && o.property === list).map((o) => canon((o as { value: JsonValue }).value));
          const kept = ((start.data[list] as JsonValue[] | undefined) ?? []).map(canon).filter((k) => !removed.has(k));
          if (!Object.hasOwn(start.data, list) && adds.length === 0) expect(Object.hasOwn(end.data, list)).toBe(false);
          else expect(multiset(end.data[list])).toEqual([...kept, ...adds].sort());
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('property: merge-only changes never conflict', () => {
  const propertyName: fc.Arbitrary<string> = fc.constantFrom('kids', 'tags', 'count', 'score', 'title', 'label', 'height');
  const unseen = fc.array(fc.array(propertyName, { maxLength: 5 }), { maxLength: 6 });
  const mergeOp = fc.oneof(
    appendOp,
    incrementOp,
    removeOp,
    fc.record({ property: propertyName, value: added, index: fc.option(fc.nat(10), { nil: null }) }).map(({ property, value, index }): Operation => ({ op: 'LIST_ADD', property, value, index })),
  );

  it('conflictOfChange of a change with only list and counter operations is null, whatever the unseen versions changed', () => {
    fc.assert(
      fc.property(fc.array(mergeOp, { maxLength: 8 }), unseen, (ops, changedByOthers) => {
        const touched = touchedProperties({ action: 'UPDATE', data: {}, label: null, operations: ops });
        expect(touched).toEqual([]);
        expect(conflictOfChange(touched, changedByOthers)).toEqual({ conflict: null, conflictingProperties: [] });
      }),
      { numRuns: 500 },
    );
  });

  it('adding an overwrite makes it SOFT or HARD exactly as the overwritten properties meet the unseen ones', () => {
    const overwrite = fc.oneof(
      fc.record({ property: propertyName.filter((p) => p !== 'label'), value: added }).map(({ property, value }): Operation => ({ op: 'SET', property, value })),
      propertyName.filter((p) => p !== 'label').map((property): Operation => ({ op: 'UNSET', property })),
      fc.constant<Operation>({ op: 'SET_LABEL', value: 'New' }),
    );
    fc.assert(
      fc.property(fc.array(mergeOp, { maxLength: 6 }), fc.array(overwrite, { minLength: 1, maxLength: 3 }), unseen, (merges, overwrites, changedByOthers) => {
        const ops = [...merges, ...overwrites];
        const touched = touchedProperties({ action: 'UPDATE', data: {}, label: null, operations: ops });
        const written = new Set(overwrites.map(operationProperty));
        expect(new Set(touched as string[])).toEqual(written);
        const shared = [...written].filter((p) => changedByOthers.some((v) => v.includes(p))).sort();
        const expected = changedByOthers.length === 0 ? null : shared.length > 0 ? 'HARD' : 'SOFT';
        expect(conflictOfChange(touched, changedByOthers)).toEqual({ conflict: expected, conflictingProperties: changedByOthers.length === 0 ? [] : shared });
      }),
      { numRuns: 500 },
    );
  });
});
