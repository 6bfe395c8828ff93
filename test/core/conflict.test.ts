import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChange, touchedProperties } from '../../src/core/apply.js';
import { classifyConflict, conflictOfChange, judgeConflict, strongestConflict } from '../../src/core/conflict.js';
import type { ConflictType, EntityState, ValidChange } from '../../src/core/types.js';
import { validChange } from '../helpers/core.js';

describe('classifyConflict: examples', () => {
  it('no unseen versions: no conflict, whatever is touched', () => {
    expect(classifyConflict(['age'], [])).toEqual({ conflict: null, conflictingProperties: [] });
    expect(classifyConflict([], [])).toEqual({ conflict: null, conflictingProperties: [] });
    expect(classifyConflict('ALL', [])).toEqual({ conflict: null, conflictingProperties: [] });
  });

  it('unseen versions that share nothing: SOFT', () => {
    expect(classifyConflict(['age'], [['name'], ['label']])).toEqual({ conflict: 'SOFT', conflictingProperties: [] });
  });

  it('unseen versions that set nothing still make it SOFT', () => {
    expect(classifyConflict(['age'], [[]])).toEqual({ conflict: 'SOFT', conflictingProperties: [] });
    expect(classifyConflict('ALL', [[], []])).toEqual({ conflict: 'SOFT', conflictingProperties: [] });
  });

  it('a change touching nothing against unseen versions: SOFT', () => {
    expect(classifyConflict([], [['age']])).toEqual({ conflict: 'SOFT', conflictingProperties: [] });
  });

  it('a shared property: HARD, naming it', () => {
    expect(classifyConflict(['age', 'name'], [['age']])).toEqual({ conflict: 'HARD', conflictingProperties: ['age'] });
  });

  it('names each shared property once, sorted, across several unseen versions', () => {
    expect(classifyConflict(['b', 'a', 'b', 'x'], [['a', 'c'], ['b', 'a'], ['z']])).toEqual({ conflict: 'HARD', conflictingProperties: ['a', 'b'] });
  });

  it('sorts by code unit, as Array.prototype.sort does', () => {
    expect(classifyConflict(['b', 'B', 'a', '_', 'A1'], [['a', 'b', 'B', '_', 'A1']]).conflictingProperties).toEqual(['A1', 'B', '_', 'a', 'b']);
  });

  it('the label conflicts like a property', () => {
    expect(classifyConflict(['label'], [['label', 'age']])).toEqual({ conflict: 'HARD', conflictingProperties: ['label'] });
  });

  it('is case-sensitive', () => {
    expect(classifyConflict(['Age'], [['age']])).toEqual({ conflict: 'SOFT', conflictingProperties: [] });
  });

  it('a delete (ALL) conflicts with every property the unseen versions set', () => {
    expect(classifyConflict('ALL', [['name', 'age'], ['age', 'label']])).toEqual({ conflict: 'HARD', conflictingProperties: ['age', 'label', 'name'] });
  });

  it('does not modify its inputs', () => {
    const touched = Object.freeze(['b', 'a']);
    const unseen = Object.freeze([Object.freeze(['b']), Object.freeze(['a', 'c'])]);
    expect(classifyConflict(touched, unseen)).toEqual({ conflict: 'HARD', conflictingProperties: ['a', 'b'] });
    expect(touched).toEqual(['b', 'a']);
  });
});

describe('classifyConflict: the DESIGN scenarios, through applyChange and touchedProperties', () => {
  const base = (over: Partial<ValidChange>): ValidChange => validChange({ dataset: 'people', ...over });
  // v1 create {name, age}; v2 an online edit of age that the offline author never saw.
  const v1 = applyChange(null, base({ action: 'CREATE', label: 'Ann', data: { name: 'Ann', age: 30 } }));
  const v2 = applyChange({ ...v1, version: 1 }, base({ data: { age: 31 } }));
  const current: EntityState = { ...v2, version: 2 };
  const unseen = [Object.keys(v2.changed)];

  it('an offline change of age, made on v1, is HARD on age', () => {
    const offline = base({ data: { age: 40 }, baseVersion: 1 });
    expect(classifyConflict(touchedProperties(offline), unseen)).toEqual({ conflict: 'HARD', conflictingProperties: ['age'] });
    expect(applyChange(current, offline).data).toEqual({ name: 'Ann', age: 40 });
  });

  it('an offline change of name only, made on v1, is SOFT and keeps the online age', () => {
    const offline = base({ data: { name: 'Anna' }, baseVersion: 1 });
    expect(classifyConflict(touchedProperties(offline), unseen)).toEqual({ conflict: 'SOFT', conflictingProperties: [] });
    expect(applyChange(current, offline).data).toEqual({ name: 'Anna', age: 31 });
  });

  it('an offline relabel against an unseen create is HARD on label', () => {
    const offline = base({ label: 'Annie' });
    expect(classifyConflict(touchedProperties(offline), [Object.keys(v1.changed)])).toEqual({ conflict: 'HARD', conflictingProperties: ['label'] });
  });

  it('an offline delete against the unseen edit is HARD on what that edit set', () => {
    const offline = base({ action: 'DELETE' });
    expect(classifyConflict(touchedProperties(offline), unseen)).toEqual({ conflict: 'HARD', conflictingProperties: ['age'] });
  });

  it('a change made on the current version has nothing unseen', () => {
    expect(classifyConflict(touchedProperties(base({ data: { age: 50 }, baseVersion: 2 })), [])).toEqual({ conflict: null, conflictingProperties: [] });
  });
});

const name = fc.oneof(fc.constantFrom('a', 'b', 'c', 'd', 'label'), fc.string({ maxLength: 6 }));
const touchedArb = fc.oneof({ weight: 5, arbitrary: fc.array(name, { maxLength: 6 }) }, { weight: 1, arbitrary: fc.constant('ALL' as const) });
const unseenArb = fc.array(fc.array(name, { maxLength: 5 }), { maxLength: 4 });
/** The verdicts in order of strength. */
const LEVELS: (ConflictType | null)[] = [null, 'SOFT', 'HARD'];

describe('classifyConflict: properties', () => {
  it('no unseen versions: always null with no properties', () => {
    fc.assert(
      fc.property(touchedArb, (touched) => {
        expect(classifyConflict(touched, [])).toEqual({ conflict: null, conflictingProperties: [] });
      }),
    );
  });

  const rank = (v: ConflictType | null) => LEVELS.indexOf(v);
  const touchedListArb = fc.array(name, { maxLength: 6 });

  it('law: an unseen version never weakens the verdict, makes it at least SOFT, and never drops a name', () => {
    fc.assert(
      fc.property(touchedArb, unseenArb, fc.array(name, { maxLength: 5 }), fc.nat(4), (touched, unseen, extra, at) => {
        const before = classifyConflict(touched, unseen);
        const more = [...unseen];
        more.splice(at % (unseen.length + 1), 0, extra);
        const after = classifyConflict(touched, more);
        expect(rank(after.conflict)).toBeGreaterThanOrEqual(Math.max(rank(before.conflict), rank('SOFT')));
        expect(after.conflictingProperties).toEqual(expect.arrayContaining(before.conflictingProperties));
      }),
    );
  });

  it('law: adding an unseen version that sets a touched property makes it HARD on that property', () => {
    fc.assert(
      fc.property(fc.array(name, { minLength: 1, maxLength: 6 }), unseenArb, fc.nat(), fc.array(name, { maxLength: 3 }), (touched, unseen, i, rest) => {
        const shared = touched[i % touched.length]!;
        const verdict = classifyConflict(touched, [...unseen, [...rest, shared]]);
        expect(verdict.conflict).toBe('HARD');
        expect(verdict.conflictingProperties).toContain(shared);
      }),
    );
  });

  it('law: adding an unseen version that sets nothing touched changes no name', () => {
    fc.assert(
      fc.property(touchedListArb, unseenArb, fc.array(name, { maxLength: 5 }), (touched, unseen, extra) => {
        fc.pre(unseen.length > 0);
        const untouched = extra.filter((p) => !touched.includes(p));
        expect(classifyConflict(touched, [...unseen, untouched])).toEqual(classifyConflict(touched, unseen));
      }),
    );
  });

  it('law: only what the unseen versions set together matters, not how it splits into versions', () => {
    fc.assert(
      fc.property(touchedArb, fc.array(fc.array(name, { maxLength: 5 }), { minLength: 1, maxLength: 4 }), (touched, unseen) => {
        expect(classifyConflict(touched, [unseen.flat()])).toEqual(classifyConflict(touched, unseen));
      }),
    );
  });

  it('law: a delete (ALL) conflicts at least as much as any change, and is HARD once an unseen version set anything', () => {
    fc.assert(
      fc.property(touchedListArb, unseenArb, (touched, unseen) => {
        const change = classifyConflict(touched, unseen);
        const del = classifyConflict('ALL', unseen);
        expect(rank(del.conflict)).toBeGreaterThanOrEqual(rank(change.conflict));
        expect(del.conflictingProperties).toEqual(expect.arrayContaining(change.conflictingProperties));
        if (unseen.some((v) => v.length > 0)) expect(del.conflict).toBe('HARD');
      }),
    );
  });

  it('HARD iff some touched property is set by an unseen version', () => {
    fc.assert(
      fc.property(fc.array(name, { maxLength: 6 }), unseenArb, (touched, unseen) => {
        fc.pre(unseen.length > 0);
        const shares = touched.some((p) => unseen.some((v) => v.includes(p)));
        expect(classifyConflict(touched, unseen).conflict).toBe(shares ? 'HARD' : 'SOFT');
      }),
    );
  });

  it('names are unique, sorted, touched, and set by some unseen version', () => {
    fc.assert(
      fc.property(fc.array(name, { maxLength: 6 }), unseenArb, (touched, unseen) => {
        const { conflictingProperties: ps } = classifyConflict(touched, unseen);
        expect(new Set(ps).size).toBe(ps.length);
        expect(ps).toEqual([...ps].sort());
        for (const p of ps) {
          expect(touched).toContain(p);
          expect(unseen.some((v) => v.includes(p))).toBe(true);
        }
      }),
    );
  });

  it('does not depend on the order of touched, of unseen versions, or of names inside them', () => {
    fc.assert(
      fc.property(touchedArb, unseenArb, (touched, unseen) => {
        const reordered = classifyConflict(
          touched === 'ALL' ? 'ALL' : [...touched].reverse(),
          [...unseen].reverse().map((v) => [...v].reverse()),
        );
        expect(reordered).toEqual(classifyConflict(touched, unseen));
      }),
    );
  });

  it('touching more never weakens the verdict', () => {
    fc.assert(
      fc.property(fc.array(name, { maxLength: 4 }), fc.array(name, { maxLength: 4 }), unseenArb, (t, extra, unseen) => {
        const smaller = classifyConflict(t, unseen);
        const larger = classifyConflict([...t, ...extra], unseen);
        expect(strongestConflict(smaller.conflict, larger.conflict)).toBe(larger.conflict);
        for (const p of smaller.conflictingProperties) expect(larger.conflictingProperties).toContain(p);
      }),
    );
  });
});

const level = fc.constantFrom(...LEVELS);

describe('strongestConflict', () => {
  it.each<[ConflictType | null, ConflictType | null, ConflictType | null]>([
    [null, null, null],
    [null, 'SOFT', 'SOFT'],
    [null, 'HARD', 'HARD'],
    ['SOFT', null, 'SOFT'],
    ['SOFT', 'SOFT', 'SOFT'],
    ['SOFT', 'HARD', 'HARD'],
    ['HARD', null, 'HARD'],
    ['HARD', 'SOFT', 'HARD'],
    ['HARD', 'HARD', 'HARD'],
  ])('strongest(%s, %s) is %s', (a, b, expected) => {
    expect(strongestConflict(a, b)).toBe(expected);
  });

  it('is commutative', () => {
    fc.assert(
      fc.property(level, level, (a, b) => {
        expect(strongestConflict(a, b)).toBe(strongestConflict(b, a));
      }),
    );
  });

  it('is associative', () => {
    fc.assert(
      fc.property(level, level, level, (a, b, c) => {
        expect(strongestConflict(strongestConflict(a, b), c)).toBe(strongestConflict(a, strongestConflict(b, c)));
      }),
    );
  });

  it('is idempotent, has null as identity, and HARD absorbs', () => {
    fc.assert(
      fc.property(level, (a) => {
        expect(strongestConflict(a, a)).toBe(a);
        expect(strongestConflict(a, null)).toBe(a);
        expect(strongestConflict(null, a)).toBe(a);
        expect(strongestConflict(a, 'HARD')).toBe('HARD');
        expect(strongestConflict('HARD', a)).toBe('HARD');
      }),
    );
  });

  it('returns one of its arguments', () => {
    fc.assert(
      fc.property(level, level, (a, b) => {
        expect([a, b]).toContain(strongestConflict(a, b));
      }),
    );
  });

  it('folding a history gives its strongest level, in any order', () => {
    fc.assert(
      fc.property(fc.array(level, { maxLength: 10 }), (history) => {
        const expected = history.includes('HARD') ? 'HARD' : history.includes('SOFT') ? 'SOFT' : null;
        expect(history.reduce<ConflictType | null>(strongestConflict, null)).toBe(expected);
        expect([...history].reverse().reduce<ConflictType | null>(strongestConflict, null)).toBe(expected);
      }),
    );
  });
});

describe('judgeConflict: a property both sides set to the same value is not shared', () => {
  it('the same value as the unseen write: not conflicting; the entity still saw unseen versions, so SOFT', () => {
    expect(judgeConflict(['height'], { height: 14 }, [{ height: 14 }])).toEqual({ conflict: 'SOFT', conflictingProperties: [] });
  });

  it('another value: HARD on it', () => {
    expect(judgeConflict(['height'], { height: 15 }, [{ height: 14 }])).toEqual({ conflict: 'HARD', conflictingProperties: ['height'] });
  });

  it('compared with the latest unseen write of the property, key order and structure as JSON', () => {
    expect(judgeConflict(['kids'], { kids: { a: 1, b: [2] } }, [{ kids: 'x' }, { kids: { b: [2], a: 1 } }])).toEqual({ conflict: 'SOFT', conflictingProperties: [] });
    expect(judgeConflict(['h'], { h: 14 }, [{ h: 14 }, { h: 15 }])).toEqual({ conflict: 'HARD', conflictingProperties: ['h'] });
  });

  it('unset on both sides (null) is the same value; the label counts like a property', () => {
    expect(judgeConflict(['note', 'label'], { note: null, label: 'Oak' }, [{ note: null }, { label: 'Oak' }])).toEqual({ conflict: 'SOFT', conflictingProperties: [] });
    expect(judgeConflict(['label'], { label: 'Elm' }, [{ label: 'Oak' }])).toEqual({ conflict: 'HARD', conflictingProperties: ['label'] });
  });

  it('a delete loses every unseen write, whatever the values', () => {
    expect(judgeConflict('ALL', {}, [{ height: 1 }])).toEqual({ conflict: 'HARD', conflictingProperties: ['height'] });
  });

  it('no unseen versions, or a change that only merges: no conflict', () => {
    expect(judgeConflict(['height'], { height: 1 }, [])).toEqual({ conflict: null, conflictingProperties: [] });
    expect(judgeConflict([], { kids: ['a'] }, [{ kids: ['b'] }])).toEqual({ conflict: null, conflictingProperties: [] });
  });

  const values = fc.oneof(fc.constantFrom(1, 2, 'a', null), fc.array(fc.constantFrom(1, 2), { maxLength: 2 }));
  const writes = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'label'), values, { maxKeys: 3 });

  it('law: equal values only ever weaken the verdict of the names alone (never a new conflicting property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'label'), { maxLength: 4 }), writes, fc.array(writes, { maxLength: 3 }), (touched, written, unseen) => {
        const byName = conflictOfChange(touched, unseen.map((v) => Object.keys(v)));
        const judged = judgeConflict(touched, written, unseen);
        expect(byName.conflictingProperties).toEqual(expect.arrayContaining(judged.conflictingProperties));
        expect(judged.conflict === null).toBe(byName.conflict === null);
      }),
    );
  });

  it('law: writing exactly what the latest unseen writes left is never HARD', () => {
    fc.assert(
      fc.property(fc.array(writes, { minLength: 1, maxLength: 3 }), (unseen) => {
        const latest = Object.assign({}, ...unseen) as Record<string, unknown>;
        const touched = Object.keys(latest);
        expect(judgeConflict(touched, latest as never, unseen).conflict).not.toBe('HARD');
      }),
    );
  });
});
