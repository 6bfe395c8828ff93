import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, offline, sync, type Domain, type Offline, type SyncChangeInput, type Sync } from '../helpers/domain.js';

/**
 * Client-local ids (DESIGN "Client-local ids and pulling", issue 5): a create may name its
 * entity by a `localId` scoped to its `deviceId`; the server mints the UUID, returns it, and
 * resolves the local id in the device's later changes, holding those that overtake the create.
 */

const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
const s = sync(t);
const o = offline(t);

const PROPS = ['title', 'note', 'views'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const localCreate = (dataset: string, deviceId: string, localId: string, label: string, data: Record<string, unknown> = {}): SyncChangeInput & { id: string } => ({
  id: randomUUID(),
  dataset,
  deviceId,
  localId,
  action: 'CREATE',
  label,
  data,
});
/** The device's n-th change after its create (n = 1, 2, …): baseVersion n, as a client numbers its run. */
const localUpdate = (dataset: string, deviceId: string, localId: string, n: number, data: Record<string, unknown>, extra: Partial<SyncChangeInput> = {}): SyncChangeInput & { id: string } => ({
  id: randomUUID(),
  dataset,
  deviceId,
  localId,
  action: 'UPDATE',
  baseVersion: n,
  data,
  ...extra,
});

describe('a create with a localId', () => {
  it('returns the minted entityId beside the localId; later changes by the localId reach that entity', async () => {
    const ds = await d.createDataset(PROPS);
    const device = `phone-${randomUUID()}`;
    const create = localCreate(ds, device, 'tree-1', 'Oak', { title: 'Oak' });
    const r = await s.one(create);
    expect(r).toMatchObject({ changeId: create.id, outcome: 'APPLIED', version: 1, localId: 'tree-1', conflict: null, error: null });
    expect(r.entityId).toMatch(UUID);
    const id = r.entityId!;

    const e = (await d.entity(id))!;
    expect(e).toMatchObject({ id, label: 'Oak', version: 1, data: { title: 'Oak' }, dataset: { name: ds } });
    expect((await s.versions(id))[0]).toMatchObject({ version: 1, action: 'CREATE', deviceId: device, changeId: create.id });
    expect(await d.change(create.id)).toMatchObject({ outcome: 'APPLIED', entityId: id, version: 1, deviceId: device });

    // The device's next change names the entity by its local id only.
    const u = await s.one(localUpdate(ds, device, 'tree-1', 1, { note: 'tall' }));
    expect(u).toMatchObject({ outcome: 'APPLIED', entityId: id, localId: 'tree-1', version: 2, conflict: null });
    // Once it knows the UUID, the device may use it as well.
    expect(await s.one({ dataset: ds, deviceId: device, entityId: id, action: 'UPDATE', baseVersion: 2, data: { views: 1 } })).toMatchObject({ outcome: 'APPLIED', entityId: id, version: 3, localId: null });
    expect((await d.entity(id))!).toMatchObject({ version: 3, data: { title: 'Oak', note: 'tall', views: 1 } });
  });

  it('a resend of the create is a DUPLICATE naming the same entity, and makes no second one', async () => {
    const ds = await d.createDataset(PROPS);
    const device = `phone-${randomUUID()}`;
    const create = localCreate(ds, device, 'x', 'Elm');
    const first = await s.one(create);
    const again = await s.one(create);
    expect(again).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', entityId: first.entityId, version: 1, localId: 'x' });
    const page = await s.pull(ds, { deviceId: device });
    expect(page.versions.map((v) => v.entity.id)).toEqual([first.entityId]);
    expect(page.localIds).toEqual([{ localId: 'x', entityId: first.entityId }]);
  });

  it('any string is a local id (spaces, unicode, up to 200 characters); an empty or longer one is MALFORMED_ID', async () => {
    const ds = await d.createDataset(PROPS);
    const device = `phone-${randomUUID()}`;
    for (const localId of ['with spaces', 'ünïcödé 🌳', '0', 'x'.repeat(200)]) {
      const r = await s.one(localCreate(ds, device, localId, 'T'));
      expect(r, localId).toMatchObject({ outcome: 'APPLIED', version: 1, localId });
      expect(r.entityId).toMatch(UUID);
    }
    await d.expectRejected(await s.one(localCreate(ds, device, '', 'T')), 'MALFORMED_ID');
    await d.expectRejected(await s.one(localCreate(ds, device, 'x'.repeat(201), 'T')), 'MALFORMED_ID');
  });
});

describe('changes that overtake their local-id create', () => {
  it('an update arriving before the create is HELD, then released when the create lands', async () => {
    const ds = await d.createDataset(PROPS);
    const device = `phone-${randomUUID()}`;
    const u1 = localUpdate(ds, device, 'early', 1, { note: 'from u1' });
    const held = await s.one(u1);
    expect(held).toMatchObject({ outcome: 'HELD', waitsFor: 0, version: null, localId: 'early' });
    expect(held.entityId).toMatch(UUID);
    expect((await o.held({ entityId: held.entityId! })).map((h) => [h.changeId, h.waitsFor, h.deviceId])).toEqual([[u1.id, 0, device]]);
    expect(await d.entity(held.entityId!)).toBeNull();

    const create = localCreate(ds, device, 'early', 'Birch', { title: 'Birch' });
    const c = await s.one(create);
    expect(c).toMatchObject({ outcome: 'APPLIED', version: 1, entityId: held.entityId, localId: 'early' });
    expect(c.released.map((r) => [r.changeId, r.outcome, r.version, r.entityId])).toEqual([[u1.id, 'APPLIED', 2, held.entityId]]);
    expect((await d.entity(held.entityId!))!).toMatchObject({ version: 2, data: { title: 'Birch', note: 'from u1' }, conflict: null });
    expect(await o.held({ entityId: held.entityId! })).toEqual([]);
    expect(await d.change(u1.id)).toMatchObject({ outcome: 'APPLIED', version: 2 });
  });

  // The create is position 0 of the device's implicit run, its updates baseVersion 1, 2, …
  const orders: [string, ('c' | 'u1' | 'u2')[]][] = [
    ['create, u1, u2', ['c', 'u1', 'u2']],
    ['u1, create, u2', ['u1', 'c', 'u2']],
    ['u1, u2, create', ['u1', 'u2', 'c']],
    ['u2, u1, create', ['u2', 'u1', 'c']],
    ['u2, create, u1', ['u2', 'c', 'u1']],
    ['create, u2, u1', ['c', 'u2', 'u1']],
  ];
  for (const [name, order] of orders) {
    it(`a create and two updates arriving as ${name}: versions 1, 2, 3 in run order, final data in run order, nothing left held`, async () => {
      const ds = await d.createDataset(PROPS);
      const device = `phone-${randomUUID()}`;
      const localId = `rec-${name}`;
      const changes = {
        c: localCreate(ds, device, localId, 'Pine', { title: 'Pine', note: 'created' }),
        u1: localUpdate(ds, device, localId, 1, { note: 'first edit', views: 1 }),
        u2: localUpdate(ds, device, localId, 2, { note: 'second edit' }),
      };
      const results = [];
      for (const k of order) results.push(await s.one(changes[k]));
      expect(results.map((r) => r.outcome).every((x) => x === 'APPLIED' || x === 'HELD')).toBe(true);
      const ids = new Set(results.map((r) => r.entityId));
      expect(ids.size, 'every change names one entity').toBe(1);
      const id = [...ids][0]!;

      const e = (await d.entity(id))!;
      expect(e, name).toMatchObject({ label: 'Pine', version: 3, data: { title: 'Pine', note: 'second edit', views: 1 }, conflict: null });
      expect(e.versions.map((v) => [v.version, v.changeId]), name).toEqual([
        [1, changes.c.id],
        [2, changes.u1.id],
        [3, changes.u2.id],
      ]);
      expect(await o.held({ entityId: id }), name).toEqual([]);
      for (const k of ['c', 'u1', 'u2'] as const) expect(await d.change(changes[k].id), `${name}: ${k}`).toMatchObject({ outcome: 'APPLIED' });
    });
  }

  it('a batch holding updates 3, 1, 2 and then the create: all land in run order', async () => {
    const ds = await d.createDataset(PROPS);
    const device = `phone-${randomUUID()}`;
    const u = [1, 2, 3].map((n) => localUpdate(ds, device, 'b', n, { views: n, note: `n${n}` }));
    const c = localCreate(ds, device, 'b', 'Yew');
    const r = await s.submit(u[2]!, u[0]!, u[1]!, c);
    expect(r.map((x) => x.outcome)).toEqual(['HELD', 'HELD', 'HELD', 'APPLIED']);
    expect(r[3]!.released.map((x) => [x.changeId, x.version])).toEqual([[u[0]!.id, 2], [u[1]!.id, 3], [u[2]!.id, 4]]);
    expect((await d.entity(r[3]!.entityId!))!).toMatchObject({ version: 4, data: { views: 3, note: 'n3' } });
  });
});

describe('local ids are scoped to their device', () => {
  it('the same localId from two devices makes two entities; each device reaches its own', async () => {
    const ds = await d.createDataset(PROPS);
    const [a, b] = [`phone-a-${randomUUID()}`, `phone-b-${randomUUID()}`];
    const ra = await s.one(localCreate(ds, a, 'tree', 'A tree', { title: 'A' }));
    // B's update overtakes B's create: held for B's entity, not applied to A's.
    const ub = await s.one(localUpdate(ds, b, 'tree', 1, { note: 'b edit' }));
    expect(ub).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    expect(ub.entityId).not.toBe(ra.entityId);
    const rb = await s.one(localCreate(ds, b, 'tree', 'B tree', { title: 'B' }));
    expect(rb).toMatchObject({ outcome: 'APPLIED', version: 1, entityId: ub.entityId, localId: 'tree' });
    expect(rb.released.map((x) => x.version)).toEqual([2]);

    const ua = await s.one(localUpdate(ds, a, 'tree', 1, { note: 'a edit' }));
    expect(ua).toMatchObject({ outcome: 'APPLIED', entityId: ra.entityId, version: 2 });
    expect((await d.entity(ra.entityId!))!).toMatchObject({ label: 'A tree', version: 2, data: { title: 'A', note: 'a edit' } });
    expect((await d.entity(rb.entityId!))!).toMatchObject({ label: 'B tree', version: 2, data: { title: 'B', note: 'b edit' } });
  });

  it('MISSING_DEVICE_ID: a localId without deviceId (create or update) is rejected and recorded', async () => {
    const ds = await d.createDataset(PROPS);
    await d.expectRejected(await s.one({ dataset: ds, localId: 'orphan', action: 'CREATE', label: 'X' }), 'MISSING_DEVICE_ID');
    await d.expectRejected(await s.one({ dataset: ds, localId: 'orphan', deviceId: null, action: 'UPDATE', baseVersion: 1, data: { note: 'x' } }), 'MISSING_DEVICE_ID');
    await d.expectRejected(await s.one({ dataset: ds, localId: 'orphan', deviceId: '', action: 'CREATE', label: 'X' }), 'MISSING_DEVICE_ID');
    // Nothing was made for it.
    expect((await s.pull(ds)).versions).toEqual([]);
  });
});

describe('a client UUID that already belongs to an entity is rejected, never merged', () => {
  it('ENTITY_EXISTS: a create with the id of an entity in the same dataset, in another dataset, or minted for a local id', async () => {
    const ds = await d.createDataset(PROPS);
    const other = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Original', { title: 'original' });
    const before = await d.entity(id);

    const again = await s.one({ dataset: ds, entityId: id, action: 'CREATE', label: 'Imposter', data: { title: 'imposter', note: 'x' } });
    await d.expectRejected(again, 'ENTITY_EXISTS');
    expect(await d.entity(id)).toEqual(before);

    // Upper-case spelling of the same UUID.
    await d.expectRejected(await s.one({ dataset: ds, entityId: id.toUpperCase(), action: 'CREATE', label: 'Imposter' }), 'ENTITY_EXISTS');
    await d.expectRejected(await s.one({ dataset: other, entityId: id, action: 'CREATE', label: 'Imposter' }), 'ENTITY_EXISTS');
    expect(await d.entity(id)).toEqual(before);

    const minted = (await s.one(localCreate(ds, `phone-${randomUUID()}`, 'l', 'Local', { title: 'local' }))).entityId!;
    const mintedBefore = await d.entity(minted);
    await d.expectRejected(await s.one({ dataset: ds, entityId: minted, action: 'CREATE', label: 'Imposter', data: { title: 'imposter' } }), 'ENTITY_EXISTS');
    expect(await d.entity(minted)).toEqual(mintedBefore);
  });
});

describe('changesSince carries the calling device its own mappings', () => {
  it("a pull with deviceId lists that device's local ids among the page's entities, never another device's", async () => {
    const ds = await d.createDataset(PROPS);
    const [a, b, c] = [`dev-a-${randomUUID()}`, `dev-b-${randomUUID()}`, `dev-c-${randomUUID()}`];
    const a1 = (await s.one(localCreate(ds, a, 'shared', 'A shared'))).entityId!;
    const b1 = (await s.one(localCreate(ds, b, 'shared', 'B shared'))).entityId!;
    const a2 = (await s.one(localCreate(ds, a, 'only-a', 'A only'))).entityId!;
    const plain = await d.create(ds, 'No local id');

    const sortById = (xs: { localId: string; entityId: string }[]) => [...xs].sort((x, y) => x.localId.localeCompare(y.localId) || x.entityId.localeCompare(y.entityId));
    const pageA = await s.pull(ds, { deviceId: a });
    expect(pageA.versions.map((v) => v.entity.id)).toEqual([a1, b1, a2, plain]);
    expect(sortById(pageA.localIds)).toEqual(sortById([{ localId: 'shared', entityId: a1 }, { localId: 'only-a', entityId: a2 }]));
    const pageB = await s.pull(ds, { deviceId: b });
    expect(pageB.localIds).toEqual([{ localId: 'shared', entityId: b1 }]);
    expect((await s.pull(ds, { deviceId: c })).localIds).toEqual([]);
    expect((await s.pull(ds)).localIds).toEqual([]);

    // Only the mappings of the page's entities: a page holding B's entity alone carries none of A's.
    const first = await s.pull(ds, { deviceId: a, limit: 1 });
    expect(first.localIds).toEqual([{ localId: 'shared', entityId: a1 }]);
    const second = await s.pull(ds, { deviceId: a, limit: 1, cursor: first.cursor });
    expect(second.versions.map((v) => v.entity.id)).toEqual([b1]);
    expect(second.localIds).toEqual([]);
    const third = await s.pull(ds, { deviceId: b, limit: 1, cursor: first.cursor });
    expect(third.localIds).toEqual([{ localId: 'shared', entityId: b1 }]);
  });

  it('a mapping made by a held update shows up once its entity has a version in the page', async () => {
    const ds = await d.createDataset(PROPS);
    const dev = `dev-${randomUUID()}`;
    const held = await s.one(localUpdate(ds, dev, 'later', 1, { note: 'x' }));
    expect(held.outcome).toBe('HELD');
    const empty = await s.pull(ds, { deviceId: dev });
    expect(empty).toMatchObject({ versions: [], localIds: [], hasMore: false });
    await s.one(localCreate(ds, dev, 'later', 'Later'));
    const page = await s.pull(ds, { deviceId: dev, cursor: empty.cursor });
    expect(page.versions.map((v) => [v.entity.id, v.version])).toEqual([[held.entityId, 1], [held.entityId, 2]]);
    expect(page.localIds).toEqual([{ localId: 'later', entityId: held.entityId }]);
  });
});
