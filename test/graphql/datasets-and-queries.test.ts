import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, ok, uniqueName, type Domain } from '../helpers/domain.js';

const t = useApp();
const d = domain(t);

const ADD = `mutation($n: String!, $p: [String!]!) { addDatasetProperties(name: $n, properties: $p) {
  __typename ... on MutationAddDatasetPropertiesSuccess { data { name properties } } ... on DomainError { code } } }`;
const PAGE = `query($ds: String!, $first: Int, $after: String) { entities(dataset: $ds, first: $first, after: $after) {
  edges { cursor node { id label } } nodes { id } pageInfo { hasNextPage endCursor } } }`;

describe('datasets', () => {
  it('datasets lists them by name; dataset(name) finds one or null', async () => {
    const b = await d.createDataset(['y'], uniqueName('b'));
    const a = await d.createDataset(['x', 'z'], uniqueName('a'));
    const all = ok(await t.gql(`{ datasets { name properties createdAt } }`)).datasets as { name: string; properties: string[]; createdAt: string }[];
    const names = all.map((x) => x.name);
    expect(names).toEqual([...names].sort());
    expect(all.find((x) => x.name === a)).toMatchObject({ name: a, properties: ['x', 'z'] });
    expect(names.indexOf(a)).toBeLessThan(names.indexOf(b));
    expect(Number.isNaN(Date.parse(all[0]!.createdAt))).toBe(false);

    expect(ok(await t.gql(`query($n: String!) { dataset(name: $n) { name properties } }`, { n: b })).dataset).toEqual({ name: b, properties: ['y'] });
    expect(ok(await t.gql(`{ dataset(name: "no_such_dataset") { name } }`)).dataset).toBeNull();
  });

  it('addDatasetProperties appends new names, keeps the old, and lets changes use them', async () => {
    const ds = await d.createDataset(['height']);
    const id = await d.create(ds, 'Oak');
    await d.expectRejected(await d.update(ds, id, 1, { girth: 2 }), 'UNKNOWN_PROPERTY');

    const r = ok(await t.gql(ADD, { n: ds, p: ['girth', 'height', 'age'] })).addDatasetProperties;
    expect(r).toEqual({ __typename: 'MutationAddDatasetPropertiesSuccess', data: { name: ds, properties: ['height', 'girth', 'age'] } });
    expect(ok(await t.gql(ADD, { n: ds, p: [] })).addDatasetProperties.data.properties).toEqual(['height', 'girth', 'age']);

    expect(await d.update(ds, id, 1, { girth: 2, age: 40 })).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect((await d.entity(id))!.data).toEqual({ girth: 2, age: 40 });
  });
});

describe('entity and change queries', () => {
  it('entity(id) returns the history oldest first with data, changed, appliedOn and source', async () => {
    const ds = await d.createDataset(['height', 'species']);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    await d.update(ds, id, 1, { height: 2 });
    await d.update(ds, id, 1, { height: 3 }, { deviceId: 'tablet-7' });
    const res = ok(
      await t.gql(`query($id: ID!) { entity(id: $id) { id version dataset { name } versions { version data changed appliedOn source deviceId entity { id } } } }`, {
        id: id.toUpperCase(),
      }),
    );
    expect(res.entity).toEqual({
      id,
      version: 3,
      dataset: { name: ds },
      versions: [
        { version: 1, data: { species: 'oak' }, changed: { species: 'oak', label: 'Oak' }, appliedOn: null, source: 'ONLINE', deviceId: null, entity: { id } },
        { version: 2, data: { species: 'oak', height: 2 }, changed: { height: 2 }, appliedOn: 1, source: 'ONLINE', deviceId: null, entity: { id } },
        // Made on version 1, so applied against it, though version 2 came in between.
        { version: 3, data: { species: 'oak', height: 3 }, changed: { height: 3 }, appliedOn: 1, source: 'ONLINE', deviceId: 'tablet-7', entity: { id } },
      ],
    });
    expect(await d.entity(randomUUID())).toBeNull();
  });

  it('Entity.versions pages a long history: limit (default 100, 1 to 1000) versions after `after`, oldest first', async () => {
    const ds = await d.createDataset(['n']);
    const id = await d.create(ds, 'Counter', { n: 0 });
    for (let v = 1; v <= 104; v++) await d.update(ds, id, v, { n: v });
    const page = async (args: string) =>
      (ok(await t.gql(`query($id: ID!) { entity(id: $id) { versions${args} { version } } }`, { id })).entity.versions as { version: number }[]).map((v) => v.version);
    expect(await page('')).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(await page('(after: 100)')).toEqual([101, 102, 103, 104, 105]);
    expect(await page('(after: 3, limit: 2)')).toEqual([4, 5]);
    expect(await page('(limit: 0)')).toEqual([1]);
    expect(await page('(after: 105)')).toEqual([]);
  });

  it('change(id) returns what was sent and what it came to', async () => {
    const ds = await d.createDataset(['height']);
    const entityId = randomUUID();
    const id = randomUUID();
    await d.one({ id, dataset: ds, entityId, action: 'CREATE', label: 'Oak', data: { height: 1 }, deviceId: 'phone-2' });
    expect(await d.change(id)).toEqual({
      id,
      deviceId: 'phone-2',
      dataset: ds,
      entityId,
      outcome: 'APPLIED',
      errorCode: null,
      errorMessage: null,
      version: 1,
      payload: { id, deviceId: 'phone-2', dataset: ds, entityId, action: 'CREATE', label: 'Oak', data: { height: 1 }, baseVersion: null, trunkVersion: null, branchId: null },
    });
    expect(await d.change(randomUUID())).toBeNull();
  });

  it('entities(dataset) pages through 25 entities by id with first/after, no gaps or repeats', async () => {
    const ds = await d.createDataset(['n']);
    const batch = Array.from({ length: 25 }, (_, i) => ({ dataset: ds, entityId: randomUUID(), action: 'CREATE' as const, label: `e${i}`, data: { n: i } }));
    const results = await d.submit(...batch);
    expect(results.every((r) => r.outcome === 'APPLIED')).toBe(true);
    const expected = batch.map((c) => c.entityId).sort();

    const seen: string[] = [];
    const pages: number[] = [];
    let after: string | null = null;
    for (let i = 0; i < 10; i++) {
      const page: any = ok(await t.gql(PAGE, { ds, first: 10, after })).entities;
      pages.push(page.edges.length);
      expect(page.nodes.map((n: { id: string }) => n.id)).toEqual(page.edges.map((e: { node: { id: string } }) => e.node.id));
      seen.push(...page.edges.map((e: { node: { id: string } }) => e.node.id));
      if (page.edges.length > 0) expect(page.pageInfo.endCursor).toBe(page.edges.at(-1).cursor);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(pages).toEqual([10, 10, 5]);
    expect(seen).toEqual(expected);

    // Resuming after any edge's cursor gives exactly the rest.
    const all: any = ok(await t.gql(PAGE, { ds, first: 25 })).entities;
    expect(all.pageInfo.hasNextPage).toBe(false);
    const rest: any = ok(await t.gql(PAGE, { ds, first: 25, after: all.edges[12].cursor })).entities;
    expect(rest.nodes.map((n: { id: string }) => n.id)).toEqual(expected.slice(13));
    // An unknown dataset is an error, not an empty page that reads as "nothing there".
    const unknown = await t.gql(PAGE, { ds: 'no_such_dataset', first: 5 });
    expect(unknown.errors?.map((e) => [e.extensions?.code, e.message])).toEqual([['UNKNOWN_DATASET', 'no dataset named "no_such_dataset"']]);
  });
});
