import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inSubset, type Subset } from '../../src/core/subsets.js';
import { resolveConflict, restoreEntity } from '../../src/sync/resolve-conflict.js';
import { useSyncContext, type SyncContext } from '../helpers/sync-context.js';
import { expectNoRepeats, newDevice, type Device } from '../helpers/subset-device.js';

/**
 * Model-based test of subsets (issue 20): a token made with rules or with none (its whole dataset),
 * random online creates, edits and deletes by others,
 * edits and creates by the device itself, a reviewer's resolves with values and restores,
 * reassignments of its token, and pulls of pages of random
 * sizes, against src/sync on the back end DATABASE_URL picks. The model is what the rules say:
 * which entities exist with which properties, the token's rules now, and which entities its token
 * could ever see. Every answer to the device's own writes must be the model's; whenever it has
 * synced to the end it must hold exactly the server's share, and never have been handed one
 * version twice while it held the entity.
 */

const NUM_RUNS = Number(process.env.SUBSET_MODEL_RUNS ?? 30);
const DISTRICTS = ['d1', 'd2', 'd3'] as const;

interface Model {
  entities: Map<string, { district: string; status: string; deleted: boolean }>;
  /** null: the token's whole dataset (it has had no rules yet). */
  rules: Subset | null;
  /** Entities the token could see at some moment (its log handed them out): the device may change them. */
  seen: Set<string>;
}

interface Real {
  ctx: SyncContext;
  dataset: string;
  device: Device;
  ids: string[];
}

type Cmd = fc.AsyncCommand<Model, Real>;

const stateOf = (m: Model, id: string) => {
  const e = m.entities.get(id)!;
  return { district: e.district, status: e.status };
};

/** After any move, what the token may see now joins what it could ever see. */
function look(m: Model): void {
  for (const [id, e] of m.entities) if (!e.deleted && inSubset(m.rules, stateOf(m, id))) m.seen.add(id);
}

const districtArb = fc.constantFrom(...DISTRICTS);
const statusArb = fc.constantFrom('open', 'closed');
const rulesArb: fc.Arbitrary<Subset> = fc.oneof(
  { weight: 4, arbitrary: fc.uniqueArray(districtArb, { minLength: 1, maxLength: 2 }).map((values): Subset => [{ property: 'district', values }]) },
  { weight: 2, arbitrary: fc.tuple(fc.uniqueArray(districtArb, { minLength: 1, maxLength: 2 }), statusArb).map(([values, s]): Subset => [{ property: 'district', values }, { property: 'status', values: [s] }]) },
  { weight: 1, arbitrary: fc.constant<Subset>([]) },
);

class Create implements Cmd {
  constructor(readonly district: string, readonly status: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = await r.ctx.newEntity(r.dataset, 'E', { district: this.district, status: this.status });
    r.ids.push(id);
    m.entities.set(id, { district: this.district, status: this.status, deleted: false });
    look(m);
  }
  toString = () => `create(${this.district}, ${this.status})`;
}

class Edit implements Cmd {
  constructor(readonly pick: number, readonly district: string | null, readonly status: string | null, readonly remove: boolean) {}
  check = (m: Model) => [...m.entities.values()].some((e) => !e.deleted);
  async run(m: Model, r: Real) {
    const live = r.ids.filter((id) => !m.entities.get(id)!.deleted);
    const id = live[this.pick % live.length]!;
    const current = (await r.ctx.entity(id))!;
    const data = { ...(this.district ? { district: this.district } : {}), ...(this.status ? { status: this.status } : {}) };
    const [res] = await r.ctx.submit(this.remove ? { dataset: r.dataset, entityId: id, action: 'DELETE', baseVersion: current.version } : { dataset: r.dataset, entityId: id, action: 'UPDATE', baseVersion: current.version, data });
    expect(res!.outcome).toBe('APPLIED');
    const e = m.entities.get(id)!;
    if (this.remove) e.deleted = true;
    else Object.assign(e, data);
    look(m);
  }
  toString = () => `${this.remove ? 'delete' : 'edit'}(#${this.pick}, ${this.district}, ${this.status})`;
}

/** The device writes: an update of any entity (some it never could see), or a create in any district. */
class DeviceWrite implements Cmd {
  constructor(readonly pick: number | null, readonly district: string, readonly status: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const data = { district: this.district, status: this.status };
    if (this.pick === null || r.ids.length === 0) {
      const id = randomUUID();
      const [res] = await r.device.submit({ entityId: id, action: 'CREATE', label: 'Mine', data });
      const fits = inSubset(m.rules, data);
      expect([res!.outcome, res!.error?.code ?? null], `create in ${this.district}`).toEqual(fits ? ['APPLIED', null] : ['REJECTED', 'OUTSIDE_SUBSET']);
      if (fits) {
        r.ids.push(id);
        m.entities.set(id, { ...data, deleted: false });
        look(m);
      }
      return;
    }
    const id = r.ids[this.pick % r.ids.length]!;
    const e = m.entities.get(id)!;
    const current = (await r.ctx.entity(id))!;
    const [res] = await r.device.submit({ entityId: id, action: 'UPDATE', baseVersion: current.version, data });
    const visible = m.seen.has(id) || inSubset(m.rules, stateOf(m, id));
    const expected = !visible ? ['REJECTED', 'OUTSIDE_SUBSET'] : e.deleted ? ['REJECTED', 'ENTITY_DELETED'] : ['APPLIED', null];
    expect([res!.outcome, res!.error?.code ?? null], `update of #${this.pick}`).toEqual(expected);
    if (res!.outcome === 'APPLIED') {
      Object.assign(e, data);
      look(m);
    }
  }
  toString = () => `device ${this.pick === null ? 'create' : `update(#${this.pick})`}(${this.district}, ${this.status})`;
}

const ADMIN = { tokenId: null, role: 'admin' as const, deviceId: null, datasets: null, subset: null };

/**
 * A reviewer's version: a deleted entity is restored; another is put in conflict (two updates of
 * its status from one version) and resolved with a chosen district.
 */
class Review implements Cmd {
  constructor(readonly pick: number, readonly district: string) {}
  check = (m: Model) => m.entities.size > 0;
  async run(m: Model, r: Real) {
    const id = r.ids[this.pick % r.ids.length]!;
    const e = m.entities.get(id)!;
    const base = (await r.ctx.entity(id))!.version;
    if (e.deleted) {
      await restoreEntity(r.ctx.db, ADMIN, { entityId: id, version: base });
      e.deleted = false;
      look(m);
      return;
    }
    for (const status of ['open', 'closed']) {
      const [res] = await r.ctx.submit({ dataset: r.dataset, entityId: id, action: 'UPDATE', baseVersion: base, data: { status } });
      expect(res!.outcome).toBe('APPLIED');
      e.status = status;
      look(m);
    }
    await resolveConflict(r.ctx.db, ADMIN, { entityId: id, version: base + 2, values: { district: this.district } });
    e.district = this.district;
    look(m);
  }
  toString = () => `review(#${this.pick}, ${this.district})`;
}

class Reassign implements Cmd {
  constructor(readonly rules: Subset) {}
  check = () => true;
  async run(m: Model, r: Real) {
    await r.device.reassign(this.rules.map((x) => ({ property: x.property, values: [...x.values] })));
    // No rules asked for a token of its whole dataset: it stays one (tokens.ts setTokenSubset).
    m.rules = m.rules === null && this.rules.length === 0 ? null : this.rules;
    look(m);
  }
  toString = () => `reassign(${JSON.stringify(this.rules)})`;
}

class PullPage implements Cmd {
  constructor(readonly limit: number) {}
  check = () => true;
  async run(_m: Model, r: Real) {
    await r.device.pullPage(this.limit);
  }
  toString = () => `pullPage(${this.limit})`;
}

class Sync implements Cmd {
  constructor(readonly limit: number) {}
  check = () => true;
  async run(_m: Model, r: Real) {
    await r.device.sync(this.limit);
    await r.device.expectInSync();
  }
  toString = () => `sync(${this.limit})`;
}

const commandArbs = [
  fc.tuple(districtArb, statusArb).map(([d, s]) => new Create(d, s)),
  fc.tuple(fc.nat(20), fc.option(districtArb), fc.option(statusArb), fc.boolean()).map(([p, d, s, del]) => new Edit(p, d, s, del && p % 3 === 0)),
  // Twice as likely as the others: the write rules are what the device meets most.
  fc.tuple(fc.option(fc.nat(20), { freq: 4 }), districtArb, statusArb).map(([p, d, s]) => new DeviceWrite(p, d, s)),
  fc.tuple(fc.nat(20), districtArb, statusArb).map(([p, d, s]) => new DeviceWrite(p, d, s)),
  fc.tuple(fc.nat(20), districtArb).map(([p, d]) => new Review(p, d)),
  rulesArb.map((rules) => new Reassign(rules)),
  fc.integer({ min: 1, max: 4 }).map((l) => new PullPage(l)),
  fc.integer({ min: 1, max: 5 }).map((l) => new Sync(l)),
];

describe('subsets against the model', () => {
  const ctx = useSyncContext();

  it(`${NUM_RUNS} random sequences of edits, device writes, reviews, reassignments and pulls: the device holds exactly the server's share`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.option(rulesArb, { freq: 3 }), fc.commands(commandArbs, { maxCommands: 30 }), async (start, cmds) => {
        const dataset = await ctx.newDataset(['district', 'status']);
        // A token is made with a subset of rules (an empty list is "no subset" then), or none: its
        // whole dataset, until a reassignment gives it rules (the entities it had then move).
        const first: Subset | null = start === null ? null : start.length > 0 ? start : [{ property: 'district', values: ['d1'] }];
        const device = await newDevice(ctx.db, dataset, first && first.map((x) => ({ property: x.property, values: [...x.values] })));
        const model: Model = { entities: new Map(), rules: first, seen: new Set() };
        const real: Real = { ctx, dataset, device, ids: [] };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await device.sync(3);
        await device.expectInSync();
        expectNoRepeats(device);
      }),
      { numRuns: NUM_RUNS },
    );
  }, 600_000);
});
