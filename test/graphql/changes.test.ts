import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, ok, type ChangeInput, type Domain } from '../helpers/domain.js';

const t = useApp();
const d = domain(t);

const ENTITIES = `query($ds: String!, $del: Boolean) { entities(dataset: $ds, includeDeleted: $del) { nodes { id deleted version } } }`;

describe('create, update, delete', () => {
  it('keeps every step as a version and the current state on the entity', async () => {
    const ds = await d.createDataset(['height', 'species']);
    const id = randomUUID();
    const created = await d.one({ dataset: ds, entityId: id, action: 'CREATE', label: ' Oak ', data: { species: 'oak' }, deviceId: 'phone-1' });
    expect(created).toEqual({
      changeId: created.changeId,
      outcome: 'APPLIED',
      originalOutcome: null,
      entityId: id,
      version: 1,
      conflict: null,
      conflictingProperties: [],
      error: null,
    });

    expect(await d.update(ds, id, 1, { height: 3 })).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null, conflictingProperties: [] });
    expect(await d.update(ds, id, 2, { height: 4 }, { label: 'Big oak' })).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: null });
    expect((await d.entity(id))!).toMatchObject({ label: 'Big oak', data: { species: 'oak', height: 4 }, version: 3, deleted: false, conflict: null });

    const deleted = await d.remove(ds, id, 3);
    expect(deleted).toMatchObject({ outcome: 'APPLIED', version: 4, entityId: id, conflict: null, error: null });

    const e = (await d.entity(id))!;
    expect(e).toMatchObject({ id, label: 'Big oak', data: { species: 'oak', height: 4 }, version: 4, deleted: true, conflict: null, dataset: { name: ds } });
    expect(e.versions.map(({ version, appliedOn, baseVersion, action, label, data, changed, deleted, source }) => ({ version, appliedOn, baseVersion, action, label, data, changed, deleted, source }))).toEqual([
      { version: 1, appliedOn: null, baseVersion: null, action: 'CREATE', label: 'Oak', data: { species: 'oak' }, changed: { species: 'oak', label: 'Oak' }, deleted: false, source: 'ONLINE' },
      { version: 2, appliedOn: 1, baseVersion: 1, action: 'UPDATE', label: 'Oak', data: { species: 'oak', height: 3 }, changed: { height: 3 }, deleted: false, source: 'ONLINE' },
      { version: 3, appliedOn: 2, baseVersion: 2, action: 'UPDATE', label: 'Big oak', data: { species: 'oak', height: 4 }, changed: { height: 4, label: 'Big oak' }, deleted: false, source: 'ONLINE' },
      { version: 4, appliedOn: 3, baseVersion: 3, action: 'DELETE', label: 'Big oak', data: { species: 'oak', height: 4 }, changed: {}, deleted: true, source: 'ONLINE' },
    ]);
    expect(e.versions[0]!.changeId).toBe(created.changeId);
    expect(e.versions[3]!.changeId).toBe(deleted.changeId);
  });

  it('rejects any later change to a deleted entity with ENTITY_DELETED and keeps it as it was', async () => {
    const ds = await d.createDataset(['height']);
    const id = await d.create(ds, 'Elm', { height: 1 });
    expect(await d.remove(ds, id, 1)).toMatchObject({ outcome: 'APPLIED', version: 2 });

    await d.expectRejected(await d.update(ds, id, 2, { height: 9 }), 'ENTITY_DELETED');
    await d.expectRejected(await d.update(ds, id, 1, { height: 9 }), 'ENTITY_DELETED');
    await d.expectRejected(await d.remove(ds, id, 2), 'ENTITY_DELETED');
    // Re-creating a deleted id is not a way around it.
    await d.expectRejected(await d.one({ dataset: ds, entityId: id, action: 'CREATE', label: 'Elm again' }), 'ENTITY_EXISTS');

    const e = (await d.entity(id))!;
    expect(e).toMatchObject({ version: 2, deleted: true, data: { height: 1 }, label: 'Elm' });
    expect(e.versions).toHaveLength(2);
  });

  it('lists deleted entities only when asked', async () => {
    const ds = await d.createDataset(['height']);
    const kept = await d.create(ds, 'kept');
    const gone = await d.create(ds, 'gone');
    await d.remove(ds, gone, 1);
    const live = ok(await t.gql(ENTITIES, { ds })).entities.nodes;
    expect(live).toEqual([{ id: kept, deleted: false, version: 1 }]);
    const all = ok(await t.gql(ENTITIES, { ds, del: true })).entities.nodes;
    expect(all).toEqual([...[{ id: kept, deleted: false, version: 1 }, { id: gone, deleted: true, version: 2 }]].sort((a, b) => a.id.localeCompare(b.id)));
  });

  it('processes a batch in input order: a create and its updates in one request', async () => {
    const ds = await d.createDataset(['n']);
    const id = randomUUID();
    const results = await d.submit(
      { dataset: ds, entityId: id, action: 'CREATE', label: 'counter', data: { n: 0 } },
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { n: 1 } },
      { dataset: ds, entityId: randomUUID(), action: 'UPDATE', baseVersion: 1, data: { n: 5 } },
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 2, data: { n: 2 } },
    );
    expect(results.map((r) => [r.outcome, r.version, r.error?.code ?? null])).toEqual([
      ['APPLIED', 1, null],
      ['APPLIED', 2, null],
      ['REJECTED', null, 'ENTITY_NOT_FOUND'],
      ['APPLIED', 3, null],
    ]);
    expect((await d.entity(id))!).toMatchObject({ version: 3, data: { n: 2 } });
  });

  it('submitChange returns the entity and the version it made', async () => {
    const ds = await d.createDataset(['height']);
    const id = randomUUID();
    const res = ok(
      await t.gql(
        `mutation($c: ChangeInput!) { submitChange(change: $c) { outcome version entity { id label data version } entityVersion { version action changed } } }`,
        { c: { id: randomUUID(), dataset: ds, entityId: id, action: 'CREATE', label: 'Ash', data: { height: 2 } } },
      ),
    );
    expect(res.submitChange).toEqual({
      outcome: 'APPLIED',
      version: 1,
      entity: { id, label: 'Ash', data: { height: 2 }, version: 1 },
      entityVersion: { version: 1, action: 'CREATE', changed: { height: 2, label: 'Ash' } },
    });
  });
});

describe('duplicates', () => {
  it('same id and payload: DUPLICATE with the original outcome and version, nothing changes', async () => {
    const ds = await d.createDataset(['height']);
    const id = randomUUID();
    const createChange: ChangeInput = { id: randomUUID(), dataset: ds, entityId: id, action: 'CREATE', label: 'Pine', data: { height: 1 } };
    const updateChange: ChangeInput = { id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 2 } };
    expect(await d.one(createChange)).toMatchObject({ outcome: 'APPLIED', version: 1 });
    expect(await d.one(updateChange)).toMatchObject({ outcome: 'APPLIED', version: 2 });

    expect(await d.one(createChange)).toEqual({
      changeId: createChange.id,
      outcome: 'DUPLICATE',
      originalOutcome: 'APPLIED',
      entityId: id,
      version: 1,
      conflict: null,
      conflictingProperties: [],
      error: null,
    });
    expect(await d.one(updateChange)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', entityId: id, version: 2, error: null });
    // The whole batch resent, as a client that got no answer does.
    const again = await d.submit(createChange, updateChange);
    expect(again.map((r) => [r.outcome, r.originalOutcome, r.version])).toEqual([
      ['DUPLICATE', 'APPLIED', 1],
      ['DUPLICATE', 'APPLIED', 2],
    ]);

    const e = (await d.entity(id))!;
    expect(e).toMatchObject({ version: 2, data: { height: 2 } });
    expect(e.versions).toHaveLength(2);
    expect(await d.change(updateChange.id!)).toMatchObject({ outcome: 'APPLIED', version: 2, errorCode: null });
  });

  it('a change repeated inside one batch applies once', async () => {
    const ds = await d.createDataset(['height']);
    const id = await d.create(ds, 'Fir');
    const c: ChangeInput = { id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 3 } };
    const [first, second] = await d.submit(c, c);
    expect(first).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(second).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 2 });
    expect((await d.entity(id))!.versions).toHaveLength(2);
  });

  it('a duplicate of a conflicting change reports the same conflict', async () => {
    const ds = await d.createDataset(['height']);
    const id = await d.create(ds, 'Yew');
    await d.update(ds, id, 1, { height: 1 });
    const c: ChangeInput = { id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 2 } };
    expect(await d.one(c)).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['height'] });
    expect(await d.one(c)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['height'] });
    expect((await d.entity(id))!.versions).toHaveLength(3);
  });

  it('same id with another payload: REJECTED CHANGE_ID_REUSED, the original stands', async () => {
    const ds = await d.createDataset(['height']);
    const id = await d.create(ds, 'Birch');
    const c: ChangeInput = { id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 2 } };
    expect(await d.one(c)).toMatchObject({ outcome: 'APPLIED', version: 2 });

    const reused = await d.one({ ...c, data: { height: 3 } });
    expect(reused).toMatchObject({ changeId: c.id, outcome: 'REJECTED', version: null, error: { code: 'CHANGE_ID_REUSED' } });
    expect(await d.one({ ...c, deviceId: 'other-device' })).toMatchObject({ outcome: 'REJECTED', error: { code: 'CHANGE_ID_REUSED' } });
    // Reusing an id for another entity altogether.
    const other = await d.create(ds, 'Other');
    expect(await d.one({ ...c, entityId: other })).toMatchObject({ outcome: 'REJECTED', error: { code: 'CHANGE_ID_REUSED' } });

    expect(await d.change(c.id!)).toMatchObject({ outcome: 'APPLIED', version: 2, errorCode: null, payload: { data: { height: 2 } } });
    expect((await d.entity(id))!).toMatchObject({ version: 2, data: { height: 2 } });
    expect((await d.entity(other))!.versions).toHaveLength(1);
    // The original, resent, is still a plain duplicate.
    expect(await d.one(c)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 2 });
  });

  it('a rejected change resent: DUPLICATE with originalOutcome REJECTED and its error, even once it could apply', async () => {
    const ds = await d.createDataset(['height']);
    const id = randomUUID();
    const early: ChangeInput = { id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 5 } };
    await d.expectRejected(await d.one(early), 'ENTITY_NOT_FOUND');

    const dup = await d.one(early);
    expect(dup).toMatchObject({ changeId: early.id, outcome: 'DUPLICATE', originalOutcome: 'REJECTED', version: null, error: { code: 'ENTITY_NOT_FOUND' } });

    await d.create(ds, 'Late', {}, id);
    expect(await d.one(early)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'REJECTED', error: { code: 'ENTITY_NOT_FOUND' } });
    expect((await d.entity(id))!).toMatchObject({ version: 1, data: {} });
  });

  it('a resend whose properties come in another order is the same change', async () => {
    const ds = await d.createDataset(['height', 'species']);
    const id = await d.create(ds, 'Order');
    const c: ChangeInput = { id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 2, species: 'oak' } };
    expect(await d.one(c)).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(await d.one({ ...c, data: { species: 'oak', height: 2 } })).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 2 });
  });

  it('change ids are UUIDs in any case: an upper-case resend is the same change', async () => {
    const ds = await d.createDataset(['height']);
    const upper = randomUUID().toUpperCase();
    const c: ChangeInput = { id: upper, dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'Case' };
    expect(await d.one(c)).toMatchObject({ changeId: upper.toLowerCase(), outcome: 'APPLIED', version: 1 });
    expect(await d.one(c)).toMatchObject({ changeId: upper.toLowerCase(), outcome: 'DUPLICATE', originalOutcome: 'APPLIED' });
    expect(await d.change(upper.toLowerCase())).toMatchObject({ id: upper.toLowerCase(), outcome: 'APPLIED' });
    expect(await d.change(upper)).toMatchObject({ id: upper.toLowerCase(), outcome: 'APPLIED' });
    // Entity ids too: an update naming it in upper case reaches the same entity.
    expect(await d.update(ds, c.entityId!.toUpperCase(), 1, { height: 1 })).toMatchObject({ outcome: 'APPLIED', version: 2, entityId: c.entityId });
  });
});
