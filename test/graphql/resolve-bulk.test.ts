import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { domain, ok, uniqueName } from '../helpers/domain.js';

/**
 * Issue 19 item 3: resolveConflicts marks many entities resolved in one request, each item
 * answered on its own, bounded like a batch of changes; a restricted reviewer's items of other
 * datasets are FORBIDDEN and it learns nothing else. Over real HTTP, both back ends.
 */
const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);

const PROPS = ['height', 'note'];
const tokens = { trees: '', collector: '' };
let trees = '';
let birds = '';
beforeAll(async () => {
  trees = await d.createDataset(PROPS, uniqueName('trees'));
  birds = await d.createDataset(PROPS, uniqueName('birds'));
  tokens.trees = (await createToken(t.database.db, { name: 'Trees reviewer', role: 'reviewer', datasets: [trees] })).secret;
  tokens.collector = (await createToken(t.database.db, { name: 'tablet', role: 'collector' })).secret;
});

const BULK = `mutation($items: [ResolveItemInput!]!, $note: String) { resolveConflicts(items: $items, note: $note) {
  __typename ... on MutationResolveConflictsSuccess { data { entityId version resolved resolutionId error { code message } } } ... on DomainError { code message } } }`;
const ENTITY = `query($id: ID!) { entity(id: $id) { version conflict resolutions { nodes { id atVersion note by conflictsResolved } } } }`;

/** An entity of `ds` with a HARD conflict at version 3. */
async function conflicted(ds: string): Promise<string> {
  const id = await d.create(ds, 'X', { height: 1 });
  await d.update(ds, id, 1, { height: 2 });
  expect(await d.update(ds, id, 1, { height: 3 })).toMatchObject({ version: 3, conflict: 'HARD' });
  return id;
}
const entity = async (id: string) => ok(await t.gql(ENTITY, { id })).entity;

describe('resolveConflicts', () => {
  it('answers each item on its own, in input order: resolved, STALE_VERSION, VERSION_AHEAD, NOT_IN_CONFLICT, ENTITY_NOT_FOUND, MALFORMED_ID, and a repeat', async () => {
    const [a, b, c] = [await conflicted(trees), await conflicted(trees), await conflicted(trees)];
    const calm = await d.create(trees, 'Calm');
    const unknown = randomUUID();
    const items = [
      { entityId: a, version: 3 },
      { entityId: b, version: 2 },
      { entityId: c.toUpperCase(), version: 9 },
      { entityId: calm, version: 1 },
      { entityId: unknown, version: 1 },
      { entityId: 'nope', version: 1 },
      { entityId: a, version: 3 },
    ];
    const r = ok(await t.gql(BULK, { items, note: 'checked on site' })).resolveConflicts;
    expect(r.__typename).toBe('MutationResolveConflictsSuccess');
    const answers = r.data.map((x: any) => [x.entityId, x.version, x.resolved, x.error?.code ?? null]);
    expect(answers).toEqual([
      [a, 3, true, null],
      [b, 2, false, 'STALE_VERSION'],
      [c, 9, false, 'VERSION_AHEAD'],
      [calm, 1, false, 'NOT_IN_CONFLICT'],
      [unknown, 1, false, 'ENTITY_NOT_FOUND'],
      ['nope', 1, false, 'MALFORMED_ID'],
      // The same entity again: the first item resolved it.
      [a, 3, false, 'NOT_IN_CONFLICT'],
    ]);
    expect(r.data[1].error.message).toBe('the entity has moved past the version the reviewer looked at (reload it and decide again): it is at version 3, not 2');
    expect(r.data[0].resolutionId).toMatch(/^\d+$/);
    expect(r.data.slice(1).map((x: any) => x.resolutionId)).toEqual([null, null, null, null, null, null]);
    expect(await entity(a)).toEqual({ version: 3, conflict: null, resolutions: { nodes: [{ id: r.data[0].resolutionId, atVersion: 3, note: 'checked on site', by: 'anonymous', conflictsResolved: 1 }] } });
    for (const id of [b, c]) expect(await entity(id)).toMatchObject({ conflict: 'HARD', resolutions: { nodes: [] } });
  });

  it("a restricted reviewer: its own dataset's items resolve; another dataset's, and ids that name nothing, are FORBIDDEN and nothing else", async () => {
    const [mine, theirs] = [await conflicted(trees), await conflicted(birds)];
    const items = [
      { entityId: theirs, version: 3 },
      { entityId: mine, version: 3 },
      { entityId: theirs, version: 1 },
      { entityId: randomUUID(), version: 1 },
      { entityId: 'nope', version: 1 },
    ];
    const r = ok(await t.gqlAs(tokens.trees, BULK, { items })).resolveConflicts;
    expect(r.data.map((x: any) => [x.resolved, x.error?.code ?? null, x.error?.message ?? null])).toEqual([
      [false, 'FORBIDDEN', "the token's role, datasets or device do not allow this"],
      [true, null, null],
      // Stale or not, in conflict or not: the answer says nothing about another dataset's entity.
      [false, 'FORBIDDEN', "the token's role, datasets or device do not allow this"],
      [false, 'FORBIDDEN', "the token's role, datasets or device do not allow this"],
      [false, 'FORBIDDEN', "the token's role, datasets or device do not allow this"],
    ]);
    expect(await entity(theirs)).toMatchObject({ conflict: 'HARD', resolutions: { nodes: [] } });
    expect(await entity(mine)).toMatchObject({ conflict: null, resolutions: { nodes: [{ by: 'Trees reviewer' }] } });
  });

  it('bounded like a batch: EMPTY_BATCH, BATCH_TOO_LARGE over 500 items (aliases counted together), INVALID_NOTE; nothing resolved', async () => {
    const id = await conflicted(trees);
    expect(ok(await t.gql(BULK, { items: [] })).resolveConflicts).toEqual({ __typename: 'DomainError', code: 'EMPTY_BATCH', message: 'no items to resolve' });
    const many = [{ entityId: id, version: 3 }, ...Array.from({ length: 500 }, () => ({ entityId: randomUUID(), version: 1 }))];
    expect(ok(await t.gql(BULK, { items: many })).resolveConflicts).toMatchObject({ __typename: 'DomainError', code: 'BATCH_TOO_LARGE' });
    const half = many.slice(0, 300);
    const aliased = ok(
      await t.gql(
        `mutation($a: [ResolveItemInput!]!, $b: [ResolveItemInput!]!) {
          a: resolveConflicts(items: $a) { __typename ... on DomainError { code message } }
          b: resolveConflicts(items: $b) { __typename ... on DomainError { code message } } }`,
        { a: half, b: half },
      ),
    );
    expect(aliased.a).toEqual({ __typename: 'DomainError', code: 'BATCH_TOO_LARGE', message: 'this request resolves 600 items over its fields; the limit for one request is 500' });
    expect(aliased.b).toMatchObject({ code: 'BATCH_TOO_LARGE' });
    expect(ok(await t.gql(BULK, { items: [{ entityId: id, version: 3 }], note: 'n'.repeat(2001) })).resolveConflicts).toMatchObject({ code: 'INVALID_NOTE' });
    expect(await entity(id)).toMatchObject({ conflict: 'HARD', resolutions: { nodes: [] } });
    // 500 is the bound itself: accepted.
    const ok500 = ok(await t.gql(BULK, { items: many.slice(0, 500) })).resolveConflicts;
    expect(ok500.data).toHaveLength(500);
    expect(ok500.data[0]).toMatchObject({ entityId: id, resolved: true });
  });

  it('a collector is FORBIDDEN, and nothing is resolved', async () => {
    const id = await conflicted(trees);
    const res = await t.gqlAs(tokens.collector, BULK, { items: [{ entityId: id, version: 3 }] });
    expect(res.errors?.map((e) => [e.extensions?.code, (e as { path?: unknown }).path])).toEqual([['FORBIDDEN', ['resolveConflicts']]]);
    expect(await entity(id)).toMatchObject({ conflict: 'HARD' });
  });
});
