import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dailySeries, lastDays } from '../../src/core/activity.js';
import { conflictDetails, seenVersion, type DetailRow, type OpenConflict } from '../../src/core/conflict-details.js';
import { checkEdit, checkNote, MAX_NOTE_LENGTH, planResolve, planRestore, runStep, staleGuard, type ReviewEntity } from '../../src/core/review.js';
import { DEFAULT_LIMITS, ERROR_CODES, type ErrorCode } from '../../src/core/types.js';
import { validateChange } from '../../src/core/validate.js';

const E = '0e000000-0000-4000-8000-000000000001';
const err = (code: ErrorCode, detail?: string) => ({ code, message: detail === undefined ? ERROR_CODES[code] : `${ERROR_CODES[code]}: ${detail}` });

const entity = (over: Partial<ReviewEntity> = {}): ReviewEntity => ({
  id: E,
  datasetId: 'd5000000-0000-4000-8000-000000000001',
  datasetName: 'trees',
  properties: ['height', 'note'],
  label: 'Oak',
  data: { height: 3, note: 'measured' },
  version: 3,
  conflict: 'HARD',
  deleted: false,
  openProperties: ['height'],
  openVersions: 1,
  ...over,
});

describe('staleGuard', () => {
  it('holds only at the current version: STALE_VERSION below it (naming it), VERSION_AHEAD above', () => {
    expect(staleGuard({ id: E, version: 3 }, 3)).toBeNull();
    expect(staleGuard({ id: E, version: 3 }, 2)).toEqual(err('STALE_VERSION', 'it is at version 3, not 2'));
    expect(staleGuard({ id: E, version: 3 }, 0)).toEqual(err('STALE_VERSION', 'it is at version 3, not 0'));
    expect(staleGuard({ id: E, version: 3 }, 4)).toEqual(err('VERSION_AHEAD', 'it is at version 3, not 4'));
  });
  it('is null exactly when the versions are equal', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: -5, max: 1e6 }), (at, looked) => (staleGuard({ id: E, version: at }, looked) === null) === (at === looked)));
  });
});

describe('planResolve', () => {
  it('without an edit: resolves every open version up to the current one, writes nothing, clears the conflict', () => {
    const r = planResolve(entity({ openVersions: 2 }), 3, null, 'review-1');
    expect(r).toEqual({
      ok: true,
      value: {
        kind: 'RESOLVE',
        version: null,
        entity: { label: 'Oak', data: { height: 3, note: 'measured' }, version: 3, conflict: null, deleted: false },
        resolvesUpTo: 3,
        cleared: { conflict: 'HARD', conflictingProperties: ['height'], versions: 2 },
      },
    });
  });

  it('with values: a REVIEW version on top of the current one, from no device, setting exactly those properties', () => {
    const r = planResolve(entity(), 3, { data: { height: 2 }, label: null }, 'review-7');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.version).toEqual({
      entityId: E, version: 4, appliedOn: 3, baseVersion: 3, action: 'UPDATE', label: 'Oak', data: { height: 2, note: 'measured' }, changed: { height: 2 }, operations: [], deleted: false,
      conflict: null, conflictingProperties: [], source: 'REVIEW', branchId: null, trunkVersion: null,
      serverDiff: [{ property: 'height', old: 3, new: 2 }], baseDiff: [{ property: 'height', old: 3, new: 2 }], authorViewUnavailable: null, changeId: 'review-7', deviceId: null, datasetId: 'd5000000-0000-4000-8000-000000000001',
    });
    expect(r.value.entity).toEqual({ label: 'Oak', data: { height: 2, note: 'measured' }, version: 4, conflict: null, deleted: false });
    expect(r.value.resolvesUpTo).toBe(3);
    const labelled = planResolve(entity(), 3, { data: {}, label: 'Old oak' }, 'review-8');
    expect(labelled.ok && labelled.value.version).toMatchObject({ changed: { label: 'Old oak' }, label: 'Old oak', serverDiff: [{ property: 'label', old: 'Oak', new: 'Old oak' }] });
  });

  it('values equal to what is there write no version', () => {
    const r = planResolve(entity(), 3, { data: { height: 3 }, label: 'Oak' }, 'review-1');
    expect(r.ok && r.value.version).toBeNull();
    expect(r.ok && r.value.entity.conflict).toBeNull();
  });

  it('refuses, in this order: not found, stale or ahead, not in conflict, deleted (with values), undeclared properties', () => {
    const edit = { data: { colour: 'red' }, label: null };
    expect(planResolve(null, 3, edit, 'x')).toEqual({ ok: false, error: err('ENTITY_NOT_FOUND') });
    expect(planResolve(entity({ conflict: null }), 2, edit, 'x')).toEqual({ ok: false, error: err('STALE_VERSION', 'it is at version 3, not 2') });
    expect(planResolve(entity({ conflict: null }), 3, edit, 'x')).toEqual({ ok: false, error: err('NOT_IN_CONFLICT', E) });
    expect(planResolve(entity({ deleted: true }), 3, edit, 'x')).toEqual({ ok: false, error: err('ENTITY_DELETED', `${E}; restore it (restoreEntity) before writing values`) });
    expect(planResolve(entity(), 3, edit, 'x')).toEqual({ ok: false, error: err('UNKNOWN_PROPERTY', 'colour') });
    // A deleted entity's conflict can still be marked resolved; it stays deleted.
    const marked = planResolve(entity({ deleted: true }), 3, null, 'x');
    expect(marked.ok && marked.value.entity).toMatchObject({ deleted: true, conflict: null });
  });
});

describe('planRestore', () => {
  it('brings a deleted entity back with its label and values as a REVIEW version; its conflict stays', () => {
    const r = planRestore(entity({ deleted: true, version: 4, conflict: 'SOFT' }), 4, 'review-2');
    expect(r.ok && r.value).toMatchObject({
      kind: 'RESTORE',
      resolvesUpTo: null,
      cleared: { conflict: null, conflictingProperties: [], versions: 0 },
      entity: { label: 'Oak', data: { height: 3, note: 'measured' }, version: 5, deleted: false, conflict: 'SOFT' },
      version: { version: 5, appliedOn: 4, source: 'REVIEW', deleted: false, changed: {}, serverDiff: [], deviceId: null, changeId: 'review-2' },
    });
  });
  it('refuses what is not there, stale or ahead, and what is not deleted', () => {
    expect(planRestore(null, 1, 'x')).toEqual({ ok: false, error: err('ENTITY_NOT_FOUND') });
    expect(planRestore(entity({ deleted: true }), 2, 'x')).toEqual({ ok: false, error: err('STALE_VERSION', 'it is at version 3, not 2') });
    expect(planRestore(entity({ deleted: true }), 5, 'x')).toEqual({ ok: false, error: err('VERSION_AHEAD', 'it is at version 3, not 5') });
    expect(planRestore(entity(), 3, 'x')).toEqual({ ok: false, error: err('ENTITY_NOT_DELETED', E) });
  });
});

describe('checkNote', () => {
  it('trims; empty is none; bounded at MAX_NOTE_LENGTH inclusive; line breaks and tabs allowed, other control characters and lone surrogates not', () => {
    expect(checkNote(null)).toEqual({ ok: true, value: null });
    expect(checkNote('   ')).toEqual({ ok: true, value: null });
    expect(checkNote('  kept the tablet\'s height\n(second line)\t ')).toEqual({ ok: true, value: "kept the tablet's height\n(second line)" });
    expect(checkNote('n'.repeat(MAX_NOTE_LENGTH))).toEqual({ ok: true, value: 'n'.repeat(MAX_NOTE_LENGTH) });
    expect(checkNote('n'.repeat(MAX_NOTE_LENGTH + 1))).toEqual({ ok: false, error: err('INVALID_NOTE', `${MAX_NOTE_LENGTH + 1} characters; at most ${MAX_NOTE_LENGTH}`) });
    for (const bad of ['a\u0000b', 'a\u0007b', 'a\u007fb', 'a\ud800b']) expect(checkNote(bad)).toMatchObject({ ok: false, error: { code: 'INVALID_NOTE' } });
  });
});

describe('checkEdit', () => {
  it('no values and no label (or {}) is no edit', () => {
    expect(checkEdit(null, null, DEFAULT_LIMITS)).toEqual({ ok: true, value: null });
    expect(checkEdit({}, undefined, DEFAULT_LIMITS)).toEqual({ ok: true, value: null });
    expect(checkEdit({ height: 2 }, ' Oak ', DEFAULT_LIMITS)).toEqual({ ok: true, value: { data: { height: 2 }, label: 'Oak' } });
  });
  it('refuses exactly what validateChange refuses in an update carrying the same data and label', () => {
    const value = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant('\u0000'), fc.constant(Number.NaN));
    const data = fc.dictionary(fc.oneof(fc.constantFrom('height', 'note', 'label', '__proto__', 'a\u0000'), fc.string({ maxLength: 4 })), value, { maxKeys: 4 });
    fc.assert(
      fc.property(data, fc.option(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('', '  ', 'a\u0001'))), (values, label) => {
        const edit = checkEdit(values, label, DEFAULT_LIMITS);
        const none = Object.keys(values).length === 0 && label === null;
        const change = validateChange({ id: E, dataset: 'trees', entityId: E, action: 'UPDATE', baseVersion: 1, label, data: values }, DEFAULT_LIMITS);
        if (none) return edit.ok && edit.value === null;
        return edit.ok === change.ok && (edit.ok || (!change.ok && edit.error.code === change.error.code));
      }),
    );
  });
  it('sizes by the change limits: too many properties, too many bytes, too deep', () => {
    expect(checkEdit(Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`p${i}`, i])), null, DEFAULT_LIMITS)).toMatchObject({ ok: false, error: { code: 'TOO_LARGE' } });
    expect(checkEdit({ note: 'x'.repeat(70_000) }, null, DEFAULT_LIMITS)).toMatchObject({ ok: false, error: { code: 'TOO_LARGE' } });
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(checkEdit({ note: deep as never }, null, DEFAULT_LIMITS)).toMatchObject({ ok: false, error: { code: 'INVALID_PROPERTY_VALUE' } });
  });
});

describe('runStep', () => {
  it('counts a run from 1: the change on the trunk, or the offline create, is step 1', () => {
    expect([runStep(5, 5), runStep(6, 5), runStep(7, 5)]).toEqual([1, 2, 3]);
    expect([runStep(0, null), runStep(1, null), runStep(2, null)]).toEqual([1, 2, 3]);
  });
});

describe('the daily series', () => {
  it('lastDays: the UTC days up to today, oldest first, and the start of the first', () => {
    const { days, from } = lastDays(new Date('2026-03-01T23:59:59.999Z'), 3);
    expect(days).toEqual(['2026-02-27', '2026-02-28', '2026-03-01']);
    expect(from.toISOString()).toBe('2026-02-27T00:00:00.000Z');
    expect(lastDays(new Date('2026-03-01T00:00:00.000Z'), 1).days).toEqual(['2026-03-01']);
  });
  it('dailySeries: counts per day, zero on quiet days, the backlog carried from the start', () => {
    const days = ['2026-02-27', '2026-02-28', '2026-03-01'];
    expect(
      dailySeries(days, {
        opened: new Map([['2026-02-28', 2]]),
        resolved: new Map([['2026-03-01', 1]]),
        heldAtStart: 3,
        entered: new Map([['2026-02-27', 2], ['2026-03-01', 1]]),
        left: new Map([['2026-02-28', 4]]),
      }),
    ).toEqual([
      { day: '2026-02-27', conflictsOpened: 0, conflictsResolved: 0, backlog: 5 },
      { day: '2026-02-28', conflictsOpened: 2, conflictsResolved: 0, backlog: 1 },
      { day: '2026-03-01', conflictsOpened: 0, conflictsResolved: 1, backlog: 2 },
    ]);
  });
  it('the last day\'s backlog is the start plus all that entered less all that left', () => {
    const day = fc.constantFrom('2026-02-27', '2026-02-28', '2026-03-01');
    const counts = fc.array(fc.tuple(day, fc.nat(9)), { maxLength: 6 }).map((xs) => new Map(xs));
    fc.assert(
      fc.property(fc.nat(20), counts, counts, (start, entered, left) => {
        const series = dailySeries(['2026-02-27', '2026-02-28', '2026-03-01'], { opened: new Map(), resolved: new Map(), heldAtStart: start, entered, left });
        const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
        return series.at(-1)!.backlog === start + sum(entered) - sum(left);
      }),
    );
  });
});

describe('conflictDetails', () => {
  const row = (version: number, changed: Record<string, unknown>, data: Record<string, unknown>, deviceId: string | null = null, label = 'Oak'): DetailRow => ({
    version, label, data: data as never, changed: changed as never, deviceId, source: 'ONLINE', createdAt: new Date(Date.UTC(2026, 0, version)),
  });
  const rows = [
    row(1, { height: 1, label: 'Oak' }, { height: 1 }),
    row(2, { height: 2 }, { height: 2 }, 'office-1'),
    row(3, { note: 'x' }, { height: 2, note: 'x' }, 'office-1'),
    row(4, { height: 3, label: 'Old oak' }, { height: 3, note: 'x' }, 'tablet-7', 'Old oak'),
  ];
  const open: OpenConflict[] = [{ version: 4, conflict: 'HARD', conflictingProperties: ['height'], branchId: null, trunkVersion: null, baseVersion: 1 }];
  const at = (version: number) => new Date(Date.UTC(2026, 0, version));

  it('per property: now, before (what the author saw) and every write since, the authors marked', () => {
    expect(conflictDetails({ label: 'Old oak', data: { height: 3, note: 'x' }, version: 4 }, open, rows)).toEqual([
      {
        property: 'height',
        now: { value: 3, version: 4, deviceId: 'tablet-7', source: 'ONLINE', at: at(4), conflicting: true },
        before: { value: 1, version: 1, deviceId: null, source: 'ONLINE', at: at(1), conflicting: false },
        writes: [
          { value: 2, version: 2, deviceId: 'office-1', source: 'ONLINE', at: at(2), conflicting: false },
          { value: 3, version: 4, deviceId: 'tablet-7', source: 'ONLINE', at: at(4), conflicting: true },
        ],
      },
    ]);
  });

  it('the label is a property like any; several conflicts share one list, seen from the earliest; nothing seen is no `before`', () => {
    const both: OpenConflict[] = [
      { version: 3, conflict: 'HARD', conflictingProperties: ['label'], branchId: 'b', trunkVersion: 2, baseVersion: 2 },
      { version: 4, conflict: 'HARD', conflictingProperties: ['height', 'label'], branchId: 'r', trunkVersion: null, baseVersion: 1 },
    ];
    const details = conflictDetails({ label: 'Old oak', data: { height: 3, note: 'x' }, version: 4 }, both, rows);
    expect(details.map((x) => x.property)).toEqual(['height', 'label']);
    // An offline create's run saw nothing: no `before`, every write counts.
    expect(details[1]).toMatchObject({ before: null, now: { value: 'Old oak', version: 4 }, writes: [{ value: 'Oak', version: 1, conflicting: false }, { value: 'Old oak', version: 4, conflicting: true }] });
    expect(seenVersion(both[0]!)).toBe(2);
    expect(seenVersion(both[1]!)).toBe(0);
  });

  it('a SOFT conflict names no property: no details', () => {
    expect(conflictDetails({ label: 'Oak', data: {}, version: 4 }, [], rows)).toEqual([]);
  });
});
