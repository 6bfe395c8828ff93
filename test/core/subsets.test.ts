import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inSubset, movement, netOfPage, SUBSET_LIMITS, subsetKey, validateSubset, type LogRow, type Subset, type SubsetState } from '../../src/core/subsets.js';
import type { JsonValue, PropertyValues } from '../../src/core/types.js';

/**
 * The pure subset rules (issue 20): what a rule matches, how an entity moves in and out of a
 * token's share, and which subsets a token may carry. Exhaustive where the domain is small,
 * fast-check where a rule is a law.
 */

describe('subsetKey: the text a property value is matched by', () => {
  it.each<[JsonValue | undefined, string | null]>([
    ['d2', 'd2'],
    ['', ''],
    [' d2', ' d2'],
    ['D2', 'D2'],
    [true, 'true'],
    [false, 'false'],
    [0, '0'],
    [-0, '0'],
    [42, '42'],
    [-7, '-7'],
    [999_999_999_999_999, '999999999999999'],
    [-999_999_999_999_999, '-999999999999999'],
    [1e15, null],
    [-1e15, null],
    [1.5, null],
    [0.1, null],
    [null, null],
    [undefined, null],
    [['d2'], null],
    [{ d: 'd2' }, null],
    [[], null],
  ])('%j -> %j', (value, key) => {
    expect(subsetKey(value)).toBe(key);
  });
});

describe('inSubset', () => {
  const district = (...values: string[]) => ({ property: 'district', values });
  it('no subset (null) sees everything; an empty list matches everything', () => {
    for (const data of [{}, { district: 'd1' }, { other: 1 }] as PropertyValues[]) {
      expect(inSubset(null, data)).toBe(true);
      expect(inSubset([], data)).toBe(true);
    }
  });

  it('one rule: the property holds one of the values', () => {
    const s: Subset = [district('d1', 'd2')];
    expect(inSubset(s, { district: 'd1' })).toBe(true);
    expect(inSubset(s, { district: 'd2', x: 1 })).toBe(true);
    expect(inSubset(s, { district: 'd3' })).toBe(false);
    expect(inSubset(s, { district: 'D1' })).toBe(false);
    expect(inSubset(s, { district: null })).toBe(false);
    expect(inSubset(s, {})).toBe(false);
    expect(inSubset(s, { district: ['d1'] })).toBe(false);
    expect(inSubset(s, { District: 'd1' })).toBe(false);
  });

  it('two rules: both must hold', () => {
    const s: Subset = [district('d1'), { property: 'status', values: ['open', 'true'] }];
    expect(inSubset(s, { district: 'd1', status: 'open' })).toBe(true);
    expect(inSubset(s, { district: 'd1', status: true })).toBe(true);
    expect(inSubset(s, { district: 'd1', status: 'closed' })).toBe(false);
    expect(inSubset(s, { district: 'd2', status: 'open' })).toBe(false);
    expect(inSubset(s, { status: 'open' })).toBe(false);
  });

  it('numbers match by their decimal text, only integers', () => {
    const s: Subset = [{ property: 'zone', values: ['3', '-1'] }];
    expect(inSubset(s, { zone: 3 })).toBe(true);
    expect(inSubset(s, { zone: '3' })).toBe(true);
    expect(inSubset(s, { zone: -1 })).toBe(true);
    expect(inSubset(s, { zone: 3.5 })).toBe(false);
    expect(inSubset(s, { zone: 4 })).toBe(false);
  });

  it('a property named like an Object prototype member is only ever the data\'s own', () => {
    expect(inSubset([{ property: 'constructor', values: ['x'] }], {})).toBe(false);
    expect(inSubset([{ property: 'toString', values: ['x'] }], {})).toBe(false);
  });

  it('law: a document matches a subset exactly when it matches each of its rules alone', () => {
    const value = fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.boolean(), fc.integer({ min: -2, max: 2 }), fc.constant(null));
    const data = fc.dictionary(fc.constantFrom('p', 'q', 'r'), value);
    const rule = fc.record({ property: fc.constantFrom('p', 'q', 'r'), values: fc.array(fc.constantFrom('a', 'b', 'true', '0', '1'), { minLength: 1, maxLength: 3 }) });
    fc.assert(fc.property(fc.array(rule, { maxLength: 3 }), data, (s, d) => inSubset(s, d) === s.every((r) => inSubset([r], d))));
  });
});

describe('movement(old rules, new rules, before, after)', () => {
  const d1: Subset = [{ property: 'district', values: ['d1'] }];
  const d2: Subset = [{ property: 'district', values: ['d2'] }];
  const at = (district: string, deleted = false): SubsetState => ({ data: { district }, deleted });

  it.each<[string, Subset | null, Subset | null, SubsetState | null, SubsetState | null, string]>([
    // A version: the same rules before and after.
    ['an edit inside the share', d1, d1, at('d1'), at('d1'), 'STAYED'],
    ['an edit that moves it in', d1, d1, at('d2'), at('d1'), 'ENTERED'],
    ['an edit that moves it out', d1, d1, at('d1'), at('d2'), 'LEFT'],
    ['an edit outside the share', d1, d1, at('d2'), at('d3'), 'OUTSIDE'],
    ['a create inside', d1, d1, null, at('d1'), 'ENTERED'],
    ['a create outside', d1, d1, null, at('d2'), 'OUTSIDE'],
    ['a delete inside (the device gets the delete)', d1, d1, at('d1'), at('d1', true), 'STAYED'],
    ['a delete outside', d1, d1, at('d2'), at('d2', true), 'OUTSIDE'],
    // A reassignment: the same state, other rules.
    ['reassigned away from it', d1, d2, at('d1'), at('d1'), 'LEFT'],
    ['reassigned onto it', d1, d2, at('d2'), at('d2'), 'ENTERED'],
    ['reassigned onto a deleted one: no tombstone for a device that never had it', d1, d2, at('d2', true), at('d2', true), 'OUTSIDE'],
    ['reassigned away from a deleted one it held', d1, d2, at('d1', true), at('d1', true), 'LEFT'],
    ['reassigned, still in both', [{ property: 'district', values: ['d1', 'd2'] }], d1, at('d1'), at('d1'), 'STAYED'],
    ['whole datasets to a subset, outside it', null, d1, at('d2'), at('d2'), 'LEFT'],
    ['a subset to the whole datasets', d1, null, at('d2'), at('d2'), 'ENTERED'],
    ['a subset to an empty subset (everything)', d1, [], at('d2'), at('d2'), 'ENTERED'],
    // A token made with a subset: nothing held before.
    ['made: in its share', d1, d1, null, at('d1'), 'ENTERED'],
    ['made: a deleted one in its share', d1, d1, null, at('d1', true), 'OUTSIDE'],
  ])('%s', (_name, oldRules, newRules, before, after, expected) => {
    expect(movement(oldRules, newRules, before, after)).toBe(expected);
  });

  it('law: the device ends up holding exactly the entities in its share, whatever moves it is told, in order', () => {
    const district = fc.constantFrom('d1', 'd2', 'd3');
    const rules = fc.option(fc.array(fc.record({ property: fc.constant('district'), values: fc.uniqueArray(district, { minLength: 1, maxLength: 2 }) }), { maxLength: 1 }), { nil: null });
    const step = fc.oneof(
      fc.record({ kind: fc.constant('edit' as const), entity: fc.nat(3), district, deleted: fc.boolean() }),
      fc.record({ kind: fc.constant('reassign' as const), rules }),
    );
    fc.assert(
      fc.property(rules, fc.array(step, { maxLength: 30 }), (start, steps) => {
        const server = new Map<number, SubsetState>();
        let current = start;
        const held = new Set<number>();
        const apply = (e: number, m: string) => {
          if (m === 'ENTERED' || m === 'STAYED') held.add(e);
          if (m === 'LEFT') held.delete(e);
        };
        for (const s of steps) {
          if (s.kind === 'edit') {
            const before = server.get(s.entity) ?? null;
            // Deleted entities change no more.
            if (before?.deleted) continue;
            const after = { data: { district: s.district }, deleted: s.deleted };
            server.set(s.entity, after);
            apply(s.entity, movement(current, current, before, after));
          } else {
            for (const [e, state] of server) apply(e, movement(current, s.rules, state, state));
            current = s.rules;
          }
        }
        // Every live entity in the share is held, and nothing outside it; a deleted one may be held
        // (the device got its delete) but only inside the share.
        const live = [...server].filter(([, s]) => !s.deleted).map(([e]) => e);
        expect(live.filter((e) => held.has(e)).sort()).toEqual(live.filter((e) => inSubset(current, server.get(e)!.data)).sort());
        for (const e of held) expect(inSubset(current, server.get(e)!.data)).toBe(true);
      }),
    );
  });
});

describe('validateSubset', () => {
  const trees = ['district', 'status', 'height'];
  const birds = ['district', 'status'];

  it('keeps rules in order, values deduplicated in order', () => {
    expect(
      validateSubset(
        [
          { property: 'district', values: ['d2', 'd1', 'd2'] },
          { property: 'status', values: ['open'] },
        ],
        [trees, birds],
      ),
    ).toEqual({
      ok: true,
      subset: [
        { property: 'district', values: ['d2', 'd1'] },
        { property: 'status', values: ['open'] },
      ],
    });
    expect(validateSubset([], [trees])).toEqual({ ok: true, subset: [] });
  });

  it.each<[string, Parameters<typeof validateSubset>[0], string, string]>([
    ['a property one dataset lacks', [{ property: 'height', values: ['1'] }], 'UNKNOWN_PROPERTY', 'a property is not declared by the dataset: height'],
    ['a property no dataset has', [{ property: 'colour', values: ['red'] }], 'UNKNOWN_PROPERTY', 'a property is not declared by the dataset: colour'],
    ['two rules on one property', [{ property: 'district', values: ['d1'] }, { property: 'district', values: ['d2'] }], 'INVALID_SUBSET', 'the subset is not acceptable: two rules on "district": put their values in one rule'],
    ['no values', [{ property: 'district', values: [] }], 'INVALID_SUBSET', 'the subset is not acceptable: the rule on "district" has no values (it would match nothing)'],
    ['an empty value', [{ property: 'district', values: [''] }], 'INVALID_SUBSET', 'the subset is not acceptable: a value of the rule on "district" is not 1 to 200 characters of text'],
    ['a value of 201 characters', [{ property: 'district', values: ['x'.repeat(201)] }], 'INVALID_SUBSET', 'the subset is not acceptable: a value of the rule on "district" is not 1 to 200 characters of text'],
    ['a NUL in a value', [{ property: 'district', values: ['d\u00001'] }], 'INVALID_SUBSET', 'the subset is not acceptable: a value of the rule on "district" is not 1 to 200 characters of text'],
    ['a lone surrogate in a value', [{ property: 'district', values: ['d\ud8001'] }], 'INVALID_SUBSET', 'the subset is not acceptable: a value of the rule on "district" is not 1 to 200 characters of text'],
    ['101 values', [{ property: 'district', values: Array.from({ length: 101 }, (_, i) => `d${i}`) }], 'INVALID_SUBSET', 'the subset is not acceptable: the rule on "district" has 101 values; at most 100'],
    ['9 rules', Array.from({ length: 9 }, (_, i) => ({ property: `p${i}`, values: ['x'] })), 'INVALID_SUBSET', 'the subset is not acceptable: 9 rules; at most 8'],
    ['a property name with a NUL', [{ property: 'dis\u0000trict', values: ['d1'] }], 'INVALID_SUBSET', 'the subset is not acceptable: a rule names a property that is not a property name'],
    ['a property name of 65 characters', [{ property: 'p'.repeat(65), values: ['d1'] }], 'INVALID_SUBSET', 'the subset is not acceptable: a rule names a property that is not a property name'],
  ])('refuses %s', (_name, input, code, message) => {
    expect(validateSubset(input, [trees, birds])).toEqual({ ok: false, error: { code, message } });
  });

  it('accepts the bounds themselves: 8 rules, 100 values, 200 characters', () => {
    const declared = Array.from({ length: SUBSET_LIMITS.maxRules }, (_, i) => `p${i}`);
    const rules = declared.map((property) => ({ property, values: Array.from({ length: SUBSET_LIMITS.maxValues }, (_, i) => `${i}`.padEnd(SUBSET_LIMITS.maxValueLength, 'x')) }));
    const r = validateSubset(rules, [declared]);
    expect(r.ok).toBe(true);
  });

  it('a duplicated value does not count against the bound', () => {
    expect(validateSubset([{ property: 'district', values: Array.from({ length: 150 }, (_, i) => `d${i % 100}`) }], [trees]).ok).toBe(true);
  });
});

describe('netOfPage: what one page tells a device', () => {
  const V = (entityId: string, versionSeq: number): LogRow => ({ kind: 'VERSION', entityId, versionSeq });
  const E = (entityId: string, versionSeq: number): LogRow => ({ kind: 'ENTERED', entityId, versionSeq });
  /** A LEFT by a reassignment names the version held; one by an edit names none. */
  const L = (entityId: string, versionSeq: number | null = null): LogRow => ({ kind: 'LEFT', entityId, versionSeq });

  it.each<[string, LogRow[], ReturnType<typeof netOfPage>]>([
    ['nothing', [], { versionSeqs: [], enteredSeqs: [], left: [] }],
    ['versions in order, entered, left', [V('a', 1), E('b', 2), L('c', 3), V('a', 4)], { versionSeqs: [1, 4], enteredSeqs: [2], left: ['c'] }],
    ['a version, then out by an edit: both, and the id to drop after', [V('a', 1), L('a')], { versionSeqs: [1], enteredSeqs: [], left: ['a'] }],
    ['out by an edit, back in by one: the version, not dropped', [L('a'), V('a', 5)], { versionSeqs: [5], enteredSeqs: [], left: [] }],
    ['reassigned away and back at the same version: nothing', [L('a', 7), E('a', 7)], { versionSeqs: [], enteredSeqs: [], left: [] }],
    ['... after a version of the page: that version only', [V('a', 6), L('a', 6), E('a', 6)], { versionSeqs: [6], enteredSeqs: [], left: [] }],
    ['reassigned away, edited outside, back: the newer state enters', [L('a', 7), E('a', 9)], { versionSeqs: [], enteredSeqs: [9], left: [] }],
    ['out by an edit, then entered by a reassignment at that state: entered (the device never had it)', [L('a'), E('a', 8)], { versionSeqs: [], enteredSeqs: [8], left: [] }],
    ['away, back, away again', [L('a', 7), E('a', 7), L('a', 7)], { versionSeqs: [], enteredSeqs: [], left: ['a'] }],
    ['entered then left in the page', [E('a', 3), L('a', 3)], { versionSeqs: [], enteredSeqs: [3], left: ['a'] }],
    ['rows of another entity in between do not keep them apart', [L('a', 7), V('b', 8), E('a', 7)], { versionSeqs: [8], enteredSeqs: [], left: [] }],
  ])('%s', (_name, rows, expected) => {
    expect(netOfPage(rows)).toEqual(expected);
  });

  it('a page with no LEFT (a first sync of a share) nets nothing: its versions and entered, each in page order', () => {
    const row = fc.record({ kind: fc.constantFrom<'VERSION' | 'ENTERED'>('VERSION', 'ENTERED'), entityId: fc.constantFrom('a', 'b', 'c'), versionSeq: fc.nat() });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 12 }), (rows) => {
        expect(netOfPage(rows)).toEqual({
          versionSeqs: rows.filter((r) => r.kind === 'VERSION').map((r) => r.versionSeq),
          enteredSeqs: rows.filter((r) => r.kind === 'ENTERED').map((r) => r.versionSeq),
          left: [],
        });
      }),
    );
  });
});
