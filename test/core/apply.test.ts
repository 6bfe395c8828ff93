import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChange, touchedProperties } from '../../src/core/apply.js';
import type { ChangeAction, EntityState, JsonValue, PropertyValues, ValidChange } from '../../src/core/types.js';
import { RESERVED_PROPERTIES } from '../../src/core/validate.js';
import { deepFreeze, validChange } from '../helpers/core.js';

const change = validChange;
const state = (label: string, data: PropertyValues, version = 1, deleted = false): EntityState => ({ label, data, version, deleted });

describe('applyChange: create', () => {
  it('builds the first state from the change', () => {
    expect(applyChange(null, change({ action: 'CREATE', label: 'Oak', data: { species: 'oak', height: 3 }, baseVersion: null }))).toEqual({
      label: 'Oak',
      data: { species: 'oak', height: 3 },
      deleted: false,
      changed: { species: 'oak', height: 3, label: 'Oak' },
    });
  });

  it('builds a state with no properties from empty data', () => {
    expect(applyChange(null, change({ action: 'CREATE', label: 'Oak', data: {} }))).toEqual({ label: 'Oak', data: {}, deleted: false, changed: { label: 'Oak' } });
  });

  it('applies a create on top of an existing state like an update (a create after a forced update)', () => {
    const current = state('(label unknown)', { height: 4, notes: 'forced' }, 1);
    expect(applyChange(current, change({ action: 'CREATE', label: 'Oak', data: { species: 'oak', height: 3 } }))).toEqual({
      label: 'Oak',
      data: { height: 3, notes: 'forced', species: 'oak' },
      deleted: false,
      changed: { species: 'oak', height: 3, label: 'Oak' },
    });
  });

  it('builds a state from an update when there is none yet (a forced update), with its properties', () => {
    const r = applyChange(null, change({ action: 'UPDATE', data: { height: 4 } }));
    expect(r.data).toEqual({ height: 4 });
    expect(r.deleted).toBe(false);
    expect(r.changed).toEqual({ height: 4 });
  });
});

describe('applyChange: update', () => {
  const current = state('Oak', { species: 'oak', height: 3, notes: ['old'] }, 4);

  it('replaces only the properties it sets and keeps the label', () => {
    expect(applyChange(current, change({ data: { height: 5 } }))).toEqual({
      label: 'Oak',
      data: { species: 'oak', height: 5, notes: ['old'] },
      deleted: false,
      changed: { height: 5 },
    });
  });

  it('adds a property the state did not have', () => {
    expect(applyChange(current, change({ data: { girth: 1.2 } })).data).toEqual({ species: 'oak', height: 3, notes: ['old'], girth: 1.2 });
  });

  it('replaces a whole value, not merging lists or objects', () => {
    expect(applyChange(current, change({ data: { notes: ['new'] } })).data.notes).toEqual(['new']);
    const withObject = state('Oak', { pos: { x: 1, y: 2 } });
    expect(applyChange(withObject, change({ data: { pos: { x: 9 } } })).data.pos).toEqual({ x: 9 });
  });

  it('sets a property to null rather than dropping it', () => {
    const r = applyChange(current, change({ data: { height: null } }));
    expect(r.data).toEqual({ species: 'oak', height: null, notes: ['old'] });
    expect(Object.hasOwn(r.data, 'height')).toBe(true);
    expect(r.changed).toEqual({ height: null });
  });

  it('sets the label when the change carries one, and records it as changed', () => {
    expect(applyChange(current, change({ label: 'Old oak', data: { height: 6 } }))).toEqual({
      label: 'Old oak',
      data: { species: 'oak', height: 6, notes: ['old'] },
      deleted: false,
      changed: { height: 6, label: 'Old oak' },
    });
  });

  it('with neither label nor data changes nothing and records nothing', () => {
    expect(applyChange(current, change())).toEqual({ label: 'Oak', data: current.data, deleted: false, changed: {} });
  });

  it('records a value even when it equals the current one', () => {
    expect(applyChange(current, change({ data: { height: 3 } })).changed).toEqual({ height: 3 });
  });

  it('handles property names that Object.prototype also has', () => {
    const r = applyChange(state('Oak', { toString: 'a' }), change({ data: { valueOf: 1, hasOwnProperty: true } }));
    expect(r.data).toEqual({ toString: 'a', valueOf: 1, hasOwnProperty: true });
    expect(Object.keys(r.data)).toEqual(['toString', 'valueOf', 'hasOwnProperty']);
  });

  it('does not modify the current state or the change', () => {
    const cur = deepFreeze(state('Oak', { species: 'oak', list: [1] }));
    const ch = deepFreeze(change({ label: 'Elm', data: { species: 'elm', list: [2] } }));
    const r = applyChange(cur, ch);
    expect(cur).toEqual(state('Oak', { species: 'oak', list: [1] }));
    expect(ch.data).toEqual({ species: 'elm', list: [2] });
    expect(r.data).not.toBe(cur.data);
    expect(r.changed).not.toBe(ch.data);
  });
});

describe('applyChange: delete', () => {
  it('keeps the last label and properties, marks the state deleted, and records no changed properties', () => {
    const current = state('Oak', { species: 'oak', height: 3 }, 7);
    expect(applyChange(current, change({ action: 'DELETE', baseVersion: 7 }))).toEqual({
      label: 'Oak',
      data: { species: 'oak', height: 3 },
      deleted: true,
      changed: {},
    });
  });

  it('ignores a label or data the delete carries', () => {
    const current = state('Oak', { species: 'oak' });
    expect(applyChange(current, change({ action: 'DELETE', label: 'Elm', data: { species: 'elm' } }))).toEqual({
      label: 'Oak',
      data: { species: 'oak' },
      deleted: true,
      changed: {},
    });
  });

  it('needs a current state', () => {
    expect(() => applyChange(null, change({ action: 'DELETE' }))).toThrow('applyChange: the entity does not exist');
  });
});

// ---- properties ---------------------------------------------------------------------------

const key = fc.oneof(fc.constantFrom('a', 'b', 'c', 'd'), fc.string({ maxLength: 8 })).filter((k) => !RESERVED_PROPERTIES.has(k));
const values = fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>, { maxKeys: 6 });
const currentState = fc.record({ label: fc.string({ minLength: 1, maxLength: 10 }), data: values, version: fc.integer({ min: 1, max: 100 }), deleted: fc.constant(false) });
const setting = fc.record({
  action: fc.constantFrom<ChangeAction>('CREATE', 'UPDATE'),
  label: fc.option(fc.string({ minLength: 1, maxLength: 10 }), { nil: null }),
  data: values,
});

describe('applyChange: properties', () => {
  it('never loses a property it does not set, and sets exactly the change’s values', () => {
    fc.assert(
      fc.property(currentState, setting, (cur, s) => {
        const r = applyChange(cur, change(s));
        for (const [k, v] of Object.entries(cur.data)) {
          if (!Object.hasOwn(s.data, k)) expect(r.data[k]).toEqual(v);
        }
        for (const [k, v] of Object.entries(s.data)) expect(r.data[k]).toEqual(v);
        expect(new Set(Object.keys(r.data))).toEqual(new Set([...Object.keys(cur.data), ...Object.keys(s.data)]));
      }),
    );
  });

  it('takes the change’s label when it has one, else keeps the current one', () => {
    fc.assert(
      fc.property(currentState, setting, (cur, s) => {
        const r = applyChange(cur, change(s));
        expect(r.label).toBe(s.label ?? cur.label);
        expect(r.deleted).toBe(false);
      }),
    );
  });

  it('records as changed exactly what the change set, and label when it set one', () => {
    fc.assert(
      fc.property(fc.option(currentState, { nil: null }), setting, (cur, s) => {
        const r = applyChange(cur, change(s));
        expect(r.changed).toEqual(s.label === null ? s.data : { ...s.data, label: s.label });
      }),
    );
  });

  it('is idempotent: applying the same change again changes nothing', () => {
    fc.assert(
      fc.property(currentState, setting, (cur, s) => {
        const once = applyChange(cur, change(s));
        const twice = applyChange({ ...once, version: cur.version + 1 }, change(s));
        expect(twice.data).toEqual(once.data);
        expect(twice.label).toBe(once.label);
      }),
    );
  });

  it('commutes for changes that set different properties', () => {
    fc.assert(
      fc.property(currentState, values, values, (cur, x, y) => {
        const yOnly = Object.fromEntries(Object.entries(y).filter(([k]) => !Object.hasOwn(x, k)));
        const xy = applyChange({ ...applyChange(cur, change({ data: x })), version: 2 }, change({ data: yOnly }));
        const yx = applyChange({ ...applyChange(cur, change({ data: yOnly })), version: 2 }, change({ data: x }));
        expect(xy.data).toEqual(yx.data);
      }),
    );
  });

  it('for a later change on a shared property, the later value wins', () => {
    fc.assert(
      fc.property(currentState, key, fc.jsonValue({ maxDepth: 1 }), fc.jsonValue({ maxDepth: 1 }), (cur, k, first, second) => {
        const afterFirst = applyChange(cur, change({ data: { [k]: first as JsonValue } }));
        const afterSecond = applyChange({ ...afterFirst, version: 2 }, change({ data: { [k]: second as JsonValue } }));
        expect(afterSecond.data[k]).toEqual(second);
      }),
    );
  });

  it('a delete keeps the state whatever it carries', () => {
    fc.assert(
      fc.property(currentState, setting, (cur, s) => {
        expect(applyChange(cur, change({ ...s, action: 'DELETE' }))).toEqual({ label: cur.label, data: cur.data, deleted: true, changed: {} });
      }),
    );
  });
});

describe('touchedProperties', () => {
  it('is ALL for a delete, whatever it carries', () => {
    expect(touchedProperties({ action: 'DELETE', data: {}, label: null })).toBe('ALL');
    expect(touchedProperties({ action: 'DELETE', data: { a: 1 }, label: 'x' })).toBe('ALL');
  });

  it('is the data keys in order, then label when the change sets one', () => {
    expect(touchedProperties({ action: 'UPDATE', data: { height: 1, age: null }, label: null })).toEqual(['height', 'age']);
    expect(touchedProperties({ action: 'UPDATE', data: { height: 1 }, label: 'Oak' })).toEqual(['height', 'label']);
    expect(touchedProperties({ action: 'CREATE', data: { species: 'oak' }, label: 'Oak' })).toEqual(['species', 'label']);
  });

  it('is empty for a change that sets nothing', () => {
    expect(touchedProperties({ action: 'UPDATE', data: {}, label: null })).toEqual([]);
  });

  it('counts an empty-string label as set (only null means no label)', () => {
    expect(touchedProperties({ action: 'UPDATE', data: {}, label: '' })).toEqual(['label']);
  });

  it('does not modify the change’s data', () => {
    const c = deepFreeze(change({ data: { a: 1 }, label: 'L' }));
    expect(touchedProperties(c)).toEqual(['a', 'label']);
    expect(Object.keys(c.data)).toEqual(['a']);
  });

  it('equals the keys of what applyChange records as changed', () => {
    fc.assert(
      fc.property(currentState, setting, (cur, s) => {
        const touched = touchedProperties(change(s));
        expect(touched).not.toBe('ALL');
        expect([...(touched as string[])].sort()).toEqual(Object.keys(applyChange(cur, change(s)).changed).sort());
      }),
    );
  });
});
