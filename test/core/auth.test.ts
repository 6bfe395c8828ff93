import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ROLES,
  isAdmin,
  isRole,
  mayActAsDevice,
  mayReview,
  maySubmit,
  maySeeChange,
  mayHaveSubset,
  maySubmitAll,
  mayUseAllDatasets,
  mayUseDataset,
  type Principal,
  type Role,
} from '../../src/core/auth.js';
import { deepFreeze } from '../helpers/core.js';

/**
 * The pure authorization rules (issue 7), exhaustively over roles × dataset lists × device
 * ids; fast-check where a rule is a property of a whole batch.
 */

const DATASET_LISTS: (readonly string[] | null)[] = [null, [], ['trees'], ['trees', 'birds']];
const DEVICES: (string | null)[] = [null, 'tab-1'];
/** Names asked about: listed ones, an unlisted one, near misses and no name at all. */
const NAMES: (string | null | undefined)[] = ['trees', 'birds', 'fish', 'Trees', 'trees ', '', null, undefined];
const DEVICE_ARGS: (string | null | undefined)[] = ['tab-1', 'tab-2', 'TAB-1', 'tab-1 ', '', null, undefined];

const principal = (role: Role, datasets: readonly string[] | null, deviceId: string | null): Principal =>
  deepFreeze({ tokenId: 'b4f0c1e2-0000-4000-8000-000000000001', role, deviceId, datasets: datasets && [...datasets], subset: null });

/** Every combination of role, dataset list and device: 3 × 4 × 2 principals. */
const GRID = ROLES.flatMap((role) => DATASET_LISTS.flatMap((datasets) => DEVICES.map((deviceId) => principal(role, datasets, deviceId))));
const label = (p: Principal) => `${p.role} datasets=${JSON.stringify(p.datasets)} device=${JSON.stringify(p.deviceId)}`;

describe('roles', () => {
  it('ROLES are exactly collector, reviewer, admin', () => {
    expect(ROLES).toEqual(['collector', 'reviewer', 'admin']);
    expect(GRID).toHaveLength(24);
  });

  it.each([
    ['collector', true],
    ['reviewer', true],
    ['admin', true],
    ['Admin', false],
    ['ADMIN', false],
    [' admin', false],
    ['admin\u0000', false],
    ['', false],
    ['anonymous', false],
    ['root', false],
    ['toString', false],
    ['__proto__', false],
    ['constructor', false],
  ])('isRole(%j) is %s', (value, expected) => {
    expect(isRole(value)).toBe(expected);
  });

  it('isRole accepts no string other than the three roles', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(isRole(s)).toBe(s === 'collector' || s === 'reviewer' || s === 'admin');
      }),
    );
  });

  // What each role may do depends on the role alone, never on its datasets or device.
  const BY_ROLE: Record<Role, { submit: boolean; review: boolean; admin: boolean }> = {
    collector: { submit: true, review: false, admin: false },
    reviewer: { submit: false, review: true, admin: false },
    admin: { submit: true, review: true, admin: true },
  };
  it.each(GRID.map((p) => [label(p), p] as const))('maySubmit / mayReview / isAdmin for %s', (_name, p) => {
    expect({ submit: maySubmit(p), review: mayReview(p), admin: isAdmin(p) }).toEqual(BY_ROLE[p.role]);
  });
});

describe('datasets', () => {
  /** What each dataset list allows, written out name by name. */
  const ALLOWED: { datasets: readonly string[] | null; names: (string | null | undefined)[] }[] = [
    { datasets: null, names: NAMES },
    { datasets: [], names: [] },
    { datasets: ['trees'], names: ['trees'] },
    { datasets: ['trees', 'birds'], names: ['trees', 'birds'] },
  ];

  it.each(GRID.map((p) => [label(p), p] as const))('mayUseDataset and mayUseAllDatasets for %s', (_name, p) => {
    const allowed = ALLOWED.find((a) => JSON.stringify(a.datasets) === JSON.stringify(p.datasets))!.names;
    for (const name of NAMES) expect(mayUseDataset(p, name), `dataset ${JSON.stringify(name)}`).toBe(allowed.includes(name));
    expect(mayUseAllDatasets(p)).toBe(p.datasets === null);
  });

  it('an empty list is no dataset at all, not every dataset', () => {
    const p = principal('admin', [], null);
    expect(mayUseAllDatasets(p)).toBe(false);
    expect(mayUseDataset(p, 'trees')).toBe(false);
  });

  it('a restricted principal may use exactly the names in its list (any names)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string(), { maxLength: 5 }), fc.string(), fc.constantFrom(...ROLES), (list, name, role) => {
        const p = principal(role, list, null);
        expect(mayUseDataset(p, name)).toBe(list.includes(name));
        expect(mayUseDataset(p, null)).toBe(false);
        expect(mayUseAllDatasets(p)).toBe(false);
      }),
    );
  });
});

describe('devices', () => {
  it.each(GRID.map((p) => [label(p), p] as const))('mayActAsDevice for %s', (_name, p) => {
    for (const device of DEVICE_ARGS) {
      // An unbound principal may act as any device; a bound one only as its own (exact match), or name none.
      const expected = p.deviceId === null || device == null || device === 'tab-1';
      expect(mayActAsDevice(p, device), `device ${JSON.stringify(device)}`).toBe(expected);
    }
  });

  it('a bound principal may act as no other device id, whatever it is', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string(), (own, other) => {
        const p = principal('collector', ['trees'], own);
        expect(mayActAsDevice(p, other)).toBe(other === own);
        expect(mayActAsDevice(principal('collector', ['trees'], null), other)).toBe(true);
      }),
    );
  });
});

describe('maySubmitAll', () => {
  type C = { dataset?: string | null; deviceId?: string | null };
  const CHANGES: C[] = NAMES.flatMap((dataset) => DEVICE_ARGS.map((deviceId) => ({ dataset, deviceId })));

  it.each(GRID.map((p) => [label(p), p] as const))('one change, every dataset × device, for %s', (_name, p) => {
    for (const c of CHANGES) {
      const datasetOk = p.datasets === null || (c.dataset != null && p.datasets.includes(c.dataset));
      // Unlike mayActAsDevice, a bound principal's submissions must name its device: local ids are scoped to it.
      const deviceOk = p.deviceId === null || c.deviceId === p.deviceId;
      expect(maySubmitAll(p, [c]), JSON.stringify(c)).toBe(p.role !== 'reviewer' && datasetOk && deviceOk);
    }
  });

  it.each([
    ['trees collector on tab-1, its own change', principal('collector', ['trees'], 'tab-1'), [{ dataset: 'trees', deviceId: 'tab-1' }], true],
    ['… as another device', principal('collector', ['trees'], 'tab-1'), [{ dataset: 'trees', deviceId: 'tab-2' }], false],
    ['… naming no device', principal('collector', ['trees'], 'tab-1'), [{ dataset: 'trees' }], false],
    ['… to birds', principal('collector', ['trees'], 'tab-1'), [{ dataset: 'birds', deviceId: 'tab-1' }], false],
    ['… a batch mixing trees and birds', principal('collector', ['trees'], 'tab-1'), [{ dataset: 'trees', deviceId: 'tab-1' }, { dataset: 'birds', deviceId: 'tab-1' }], false],
    ['… an empty batch', principal('collector', ['trees'], 'tab-1'), [], true],
    ['unbound trees collector, any device', principal('collector', ['trees'], null), [{ dataset: 'trees', deviceId: 'x' }, { dataset: 'trees' }], true],
    ['unrestricted reviewer', principal('reviewer', null, null), [{ dataset: 'trees' }], false],
    ['unrestricted reviewer, empty batch', principal('reviewer', null, null), [], false],
    ['unrestricted admin, anything', principal('admin', null, null), [{ dataset: 'birds', deviceId: 'x' }, { dataset: null }], true],
    ['restricted admin outside its list', principal('admin', ['trees'], null), [{ dataset: 'birds' }], false],
  ] as const)('%s: %s', (_name, p, changes, expected) => {
    expect(maySubmitAll(p, changes)).toBe(expected);
  });

  const arbPrincipal = fc
    .tuple(fc.constantFrom(...ROLES), fc.constantFrom(...DATASET_LISTS), fc.constantFrom(...DEVICES))
    .map(([role, datasets, device]) => principal(role, datasets, device));
  const arbChange = fc.record({ dataset: fc.constantFrom(...NAMES), deviceId: fc.constantFrom(...DEVICE_ARGS) }, { requiredKeys: [] });
  const arbBatch = fc.array(arbChange, { maxLength: 8 });

  it('a batch is allowed exactly when the principal may submit and every change alone is allowed', () => {
    fc.assert(
      fc.property(arbPrincipal, arbBatch, (p, batch) => {
        expect(maySubmitAll(p, batch)).toBe(maySubmit(p) && batch.every((c) => maySubmitAll(p, [c])));
      }),
    );
  });

  it('order does not matter, and one refused change refuses the whole batch wherever it stands', () => {
    fc.assert(
      fc.property(arbPrincipal, arbBatch, fc.nat(), (p, batch, at) => {
        expect(maySubmitAll(p, [...batch].reverse())).toBe(maySubmitAll(p, batch));
        const refused = CHANGES.find((c) => !maySubmitAll(p, [c]));
        if (!refused) return; // an unrestricted admin or collector: nothing is refused alone
        const i = at % (batch.length + 1);
        expect(maySubmitAll(p, [...batch.slice(0, i), refused, ...batch.slice(i)])).toBe(false);
      }),
    );
  });

  it('only unbound, unrestricted submitters have no refused single change', () => {
    for (const p of GRID) {
      const anyRefused = CHANGES.some((c) => !maySubmitAll(p, [c]));
      expect(anyRefused, label(p)).toBe(!(p.role !== 'reviewer' && p.datasets === null && p.deviceId === null));
    }
  });
});

describe('maySeeChange', () => {
  const OWNERS = [null, ...['trees', 'birds', null].flatMap((dataset) => ['tab-1', 'tab-2', null].map((deviceId) => ({ dataset, deviceId })))];

  it.each(GRID.map((p) => [label(p), p] as const))('%s: its datasets only; for a device-bound collector, its device only', (_l, p) => {
    for (const owner of OWNERS) {
      const inDataset = p.datasets === null || (owner?.dataset != null && p.datasets.includes(owner.dataset));
      const ownDevice = p.deviceId === null || owner?.deviceId === p.deviceId;
      const reviewer = p.role === 'reviewer' || p.role === 'admin';
      expect(maySeeChange(p, owner), JSON.stringify(owner)).toBe(inDataset && (reviewer || ownDevice));
    }
  });

  it('concrete cases', () => {
    const tab1 = principal('collector', ['trees'], 'tab-1');
    expect(maySeeChange(tab1, { dataset: 'trees', deviceId: 'tab-1' })).toBe(true);
    expect(maySeeChange(tab1, { dataset: 'trees', deviceId: 'tab-2' })).toBe(false);
    expect(maySeeChange(tab1, { dataset: 'trees', deviceId: null })).toBe(false);
    expect(maySeeChange(tab1, { dataset: 'birds', deviceId: 'tab-1' })).toBe(false);
    expect(maySeeChange(tab1, null)).toBe(false);
    expect(maySeeChange(principal('reviewer', ['trees'], null), { dataset: 'trees', deviceId: 'tab-2' })).toBe(true);
    expect(maySeeChange(principal('admin', null, null), null)).toBe(true);
  });

  it('a collector with a subset sees only its own device\'s changes: another device\'s may be about an entity outside its share', () => {
    const district = [{ property: 'district', values: ['d1'] }];
    const tab1 = { ...principal('collector', ['trees'], 'tab-1'), subset: district };
    const gateway = { ...principal('collector', ['trees'], null), subset: district };
    expect(maySeeChange(tab1, { dataset: 'trees', deviceId: 'tab-1' })).toBe(true);
    expect(maySeeChange(tab1, { dataset: 'trees', deviceId: 'tab-2' })).toBe(false);
    expect(maySeeChange(gateway, { dataset: 'trees', deviceId: 'tab-2' })).toBe(false);
    expect(maySeeChange(gateway, { dataset: 'trees', deviceId: null })).toBe(false);
    // An empty subset is the whole datasets.
    expect(maySeeChange({ ...gateway, subset: [] }, { dataset: 'trees', deviceId: 'tab-2' })).toBe(true);
  });
});

describe('mayHaveSubset', () => {
  it.each(GRID.map((p) => [label(p), p] as const))('%s', (_name, p) => {
    expect(mayHaveSubset(p)).toBe(p.role === 'collector' && p.datasets !== null && p.datasets.length > 0);
  });
});
