import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, ok, type Domain } from '../helpers/domain.js';

const t = useApp();
const d = domain(t);

const PROPS = ['height', 'species', 'note'];
const CONFLICTS = `query($ds: String!) { conflicts(dataset: $ds) { nodes { id conflict version } } }`;
const FILTERED = `query($ds: String!, $c: ConflictType) { entities(dataset: $ds, conflict: $c) { nodes { id conflict } } }`;
const RESOLVE = `mutation($id: ID!, $v: Int!) { resolveConflict(entityId: $id, version: $v) {
  __typename ... on MutationResolveConflictSuccess { data { id conflict version versions { version conflict resolved } } } ... on DomainError { code message } } }`;

describe('SOFT and HARD conflicts', () => {
  it('two updates on baseVersion 1 setting different properties: the second is SOFT', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 1, species: 'oak' });
    expect(await d.update(ds, id, 1, { height: 5 })).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null, conflictingProperties: [] });
    expect(await d.update(ds, id, 1, { species: 'elm' })).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'SOFT', conflictingProperties: [] });

    const e = (await d.entity(id))!;
    // Applied on top of the current state: the height written meanwhile is kept.
    expect(e).toMatchObject({ version: 3, conflict: 'SOFT', data: { height: 5, species: 'elm' } });
    // Applied against the version it was made on, not the previous one.
    expect(e.versions[2]).toMatchObject({ version: 3, appliedOn: 1, baseVersion: 1, conflict: 'SOFT', conflictingProperties: [], resolved: false, changed: { species: 'elm' } });
    expect(e.versions.slice(0, 2).map((v) => v.conflict)).toEqual([null, null]);
  });

  it('two updates on baseVersion 1 setting the same property: the second is HARD with ["height"]', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 1, species: 'oak' });
    await d.update(ds, id, 1, { height: 5 });
    expect(await d.update(ds, id, 1, { height: 7, note: 'measured' })).toMatchObject({
      outcome: 'APPLIED',
      version: 3,
      conflict: 'HARD',
      conflictingProperties: ['height'],
    });
    const e = (await d.entity(id))!;
    expect(e).toMatchObject({ version: 3, conflict: 'HARD', data: { height: 7, species: 'oak', note: 'measured' } });
    expect(e.versions[2]).toMatchObject({ conflict: 'HARD', conflictingProperties: ['height'], appliedOn: 1, baseVersion: 1 });
  });

  it('conflictingProperties lists every shared property, sorted, from all unseen versions', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    await d.update(ds, id, 1, { species: 'elm' });
    await d.update(ds, id, 2, { height: 2 });
    await d.update(ds, id, 3, { note: 'n' });
    // Only versions after baseVersion count: v2 set species, but the author of this change had seen it.
    expect(await d.update(ds, id, 2, { species: 'ash' })).toMatchObject({ version: 5, conflict: 'SOFT', conflictingProperties: [] });
    expect(await d.update(ds, id, 1, { species: 'fir', note: 'x', height: 9 })).toMatchObject({
      version: 6,
      conflict: 'HARD',
      conflictingProperties: ['height', 'note', 'species'],
    });
    // Made on the current version: no conflict for the change, the entity keeps its own.
    expect(await d.update(ds, id, 6, { note: 'z' })).toMatchObject({ version: 7, conflict: null, conflictingProperties: [] });
    expect((await d.entity(id))!).toMatchObject({ conflict: 'HARD', version: 7, data: { species: 'fir', height: 9, note: 'z' } });
  });

  it('the label counts as a property named "label"', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    await d.update(ds, id, 1, {}, { label: 'Old oak' });
    expect(await d.update(ds, id, 1, { height: 3 }, { label: 'Tall oak' })).toMatchObject({ version: 3, conflict: 'HARD', conflictingProperties: ['label'] });
    expect((await d.entity(id))!).toMatchObject({ label: 'Tall oak', data: { height: 3 } });

    const other = await d.create(ds, 'Elm');
    await d.update(ds, other, 1, { height: 1 });
    expect(await d.update(ds, other, 1, {}, { label: 'Big elm' })).toMatchObject({ version: 3, conflict: 'SOFT', conflictingProperties: [] });
    const versions = (await d.entity(other))!.versions;
    expect(versions[2]).toMatchObject({ changed: { label: 'Big elm' }, label: 'Big elm', data: { height: 1 } });
  });

  it('a delete on a stale version conflicts with everything changed meanwhile', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    await d.update(ds, id, 1, { height: 4, species: 'oak' });
    expect(await d.remove(ds, id, 1)).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['height', 'species'] });
    expect((await d.entity(id))!).toMatchObject({ deleted: true, conflict: 'HARD' });
  });

  it('an entity keeps the strongest unresolved conflict', async () => {
    const ds = await d.createDataset(PROPS);
    const hardFirst = await d.create(ds, 'A');
    await d.update(ds, hardFirst, 1, { height: 1 });
    expect(await d.update(ds, hardFirst, 1, { height: 2 })).toMatchObject({ conflict: 'HARD' });
    expect(await d.update(ds, hardFirst, 1, { note: 'n' })).toMatchObject({ conflict: 'SOFT' });
    expect((await d.entity(hardFirst))!.conflict).toBe('HARD');

    const softFirst = await d.create(ds, 'B');
    await d.update(ds, softFirst, 1, { height: 1 });
    expect(await d.update(ds, softFirst, 1, { note: 'n' })).toMatchObject({ conflict: 'SOFT' });
    expect((await d.entity(softFirst))!.conflict).toBe('SOFT');
    expect(await d.update(ds, softFirst, 1, { height: 3 })).toMatchObject({ conflict: 'HARD', conflictingProperties: ['height'] });
    expect((await d.entity(softFirst))!.conflict).toBe('HARD');
  });
});

describe('listing and resolving conflicts', () => {
  it('conflicts(dataset) and entities(dataset, conflict) list what is unresolved', async () => {
    const ds = await d.createDataset(PROPS);
    const calm = await d.create(ds, 'calm');
    const soft = await d.create(ds, 'soft');
    const hard = await d.create(ds, 'hard');
    await d.update(ds, calm, 1, { height: 1 });
    await d.update(ds, soft, 1, { height: 1 });
    await d.update(ds, soft, 1, { note: 'n' });
    await d.update(ds, hard, 1, { height: 1 });
    await d.update(ds, hard, 1, { height: 2 });

    const listed = ok(await t.gql(CONFLICTS, { ds })).conflicts.nodes;
    expect(listed).toHaveLength(2);
    expect(new Set(listed.map((e: { id: string }) => e.id))).toEqual(new Set([soft, hard]));
    expect(listed.find((e: { id: string }) => e.id === hard)).toEqual({ id: hard, conflict: 'HARD', version: 3 });

    expect(ok(await t.gql(FILTERED, { ds, c: 'HARD' })).entities.nodes).toEqual([{ id: hard, conflict: 'HARD' }]);
    expect(ok(await t.gql(FILTERED, { ds, c: 'SOFT' })).entities.nodes).toEqual([{ id: soft, conflict: 'SOFT' }]);
    expect(ok(await t.gql(FILTERED, { ds })).entities.nodes).toHaveLength(3);
    // Another dataset's conflicts are not listed.
    const empty = await d.createDataset(PROPS);
    expect(ok(await t.gql(CONFLICTS, { ds: empty })).conflicts.nodes).toEqual([]);
  });

  it('resolveConflict clears the entity and marks its conflicting versions resolved', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    await d.update(ds, id, 1, { height: 1 });
    await d.update(ds, id, 1, { height: 2 });
    await d.update(ds, id, 1, { note: 'n' });

    const r = ok(await t.gql(RESOLVE, { id, v: 4 })).resolveConflict;
    expect(r).toEqual({
      __typename: 'MutationResolveConflictSuccess',
      data: {
        id,
        conflict: null,
        version: 4,
        versions: [
          { version: 1, conflict: null, resolved: false },
          { version: 2, conflict: null, resolved: false },
          { version: 3, conflict: 'HARD', resolved: true },
          { version: 4, conflict: 'SOFT', resolved: true },
        ],
      },
    });
    expect((await d.entity(id))!).toMatchObject({ conflict: null, version: 4, data: { height: 2, note: 'n' } });
    expect(ok(await t.gql(CONFLICTS, { ds })).conflicts.nodes).toEqual([]);
    expect(ok(await t.gql(FILTERED, { ds, c: 'HARD' })).entities.nodes).toEqual([]);

    // Resolving again: nothing to resolve.
    expect(ok(await t.gql(RESOLVE, { id, v: 4 })).resolveConflict).toMatchObject({ __typename: 'DomainError', code: 'NOT_IN_CONFLICT' });

    // A later conflict starts afresh: SOFT, not the HARD that was resolved.
    expect(await d.update(ds, id, 3, { species: 'elm' })).toMatchObject({ version: 5, conflict: 'SOFT' });
    const e = (await d.entity(id))!;
    expect(e.conflict).toBe('SOFT');
    expect(e.versions.map((v) => [v.version, v.conflict, v.resolved])).toEqual([
      [1, null, false],
      [2, null, false],
      [3, 'HARD', true],
      [4, 'SOFT', true],
      [5, 'SOFT', false],
    ]);
  });

  it('resolveConflict: NOT_IN_CONFLICT without a conflict, ENTITY_NOT_FOUND for an unknown id', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    expect(ok(await t.gql(RESOLVE, { id, v: 1 })).resolveConflict).toMatchObject({ __typename: 'DomainError', code: 'NOT_IN_CONFLICT' });
    const unknown = randomUUID();
    expect(ok(await t.gql(RESOLVE, { id: unknown, v: 1 })).resolveConflict).toMatchObject({ __typename: 'DomainError', code: 'ENTITY_NOT_FOUND' });
    expect((await d.entity(id))!).toMatchObject({ conflict: null, version: 1 });
  });
});
