import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import type { GqlResponse } from '../helpers/app.js';
import { domain, ok } from '../helpers/domain.js';
import { pullable } from '../helpers/subset-device.js';

/**
 * Subsets through the public API over HTTP (issue 20): tokens made and reassigned with rules and
 * every refusal; a device's pull with entered and left; answers that never show an entity outside
 * the share; which tokens' subsets include an entity, for reviewers.
 */

const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
const PROPS = ['district', 'status', 'n'];
const district = (...values: string[]) => [{ property: 'district', values }];

const TOKEN = 'id name role deviceId datasets subset { property values }';
const CREATE = `mutation($n: String!, $r: Role!, $d: String, $ds: [String!], $s: [SubsetRuleInput!]) { createApiToken(name: $n, role: $r, deviceId: $d, datasets: $ds, subset: $s) {
  __typename ... on MutationCreateApiTokenSuccess { data { secret token { ${TOKEN} } } } ... on DomainError { code message } } }`;
const REASSIGN = `mutation($id: ID!, $s: [SubsetRuleInput!]!) { setTokenSubset(tokenId: $id, subset: $s) {
  __typename ... on MutationSetTokenSubsetSuccess { data { ${TOKEN} } } ... on DomainError { code message } } }`;
const VERSION = 'entityId version data entity { id data } entity2: entity { versions { version data } }';
const PULL = `query($ds: String!, $c: String, $l: Int) { changesSince(dataset: $ds, cursor: $c, limit: $l) {
  __typename ... on QueryChangesSinceSuccess { data { cursor hasMore left versions { ${VERSION} } entered { ${VERSION} } } } ... on DomainError { code message } } }`;

async function tokenFor(ds: string, subset: unknown, name = 'tablet'): Promise<{ secret: string; id: string; deviceId: string }> {
  const deviceId = `dev-${randomUUID().slice(0, 6)}`;
  const r = ok(await t.gql(CREATE, { n: name, r: 'COLLECTOR', d: deviceId, ds: [ds], s: subset })).createApiToken;
  expect(r.__typename, JSON.stringify(r)).toBe('MutationCreateApiTokenSuccess');
  return { secret: r.data.secret, id: r.data.token.id, deviceId };
}

/** Every token, over the pages of apiTokens. */
async function allTokens(fields = 'id'): Promise<{ id: string }[]> {
  const all: { id: string }[] = [];
  for (let after: string | null = null; ; ) {
    const page: { nodes: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } = ok(
      await t.gql(`query($a: String) { apiTokens(first: 500, after: $a) { nodes { ${fields} } pageInfo { hasNextPage endCursor } } }`, { a: after }),
    ).apiTokens;
    all.push(...page.nodes);
    if (!page.pageInfo.hasNextPage) return all;
    after = page.pageInfo.endCursor;
  }
}

async function pullAs(secret: string, ds: string, cursor: string | null = null, limit: number | null = null) {
  await pullable(t.database.db);
  const r = ok(await t.gqlAs(secret, PULL, { ds, c: cursor, l: limit })).changesSince;
  expect(r.__typename, JSON.stringify(r)).toBe('QueryChangesSinceSuccess');
  return r.data;
}

describe('tokens with a subset', () => {
  it('createApiToken takes rules; apiTokens and viewer show them; setTokenSubset changes them at once', async () => {
    const ds = await d.createDataset(PROPS);
    const r = ok(await t.gql(CREATE, { n: 'Tablet 7', r: 'COLLECTOR', d: 'tab-7', ds: [ds], s: [{ property: 'district', values: ['d2', 'd2', 'd3'] }, { property: 'status', values: ['open'] }] })).createApiToken;
    expect(r.data.token).toEqual({
      id: expect.any(String),
      name: 'Tablet 7',
      role: 'COLLECTOR',
      deviceId: 'tab-7',
      datasets: [ds],
      subset: [
        { property: 'district', values: ['d2', 'd3'] },
        { property: 'status', values: ['open'] },
      ],
    });
    const listed = (await allTokens(TOKEN)).find((x) => x.id === r.data.token.id);
    expect(listed).toEqual(r.data.token);
    expect(ok(await t.gqlAs(r.data.secret, '{ viewer { subset { property values } } }')).viewer.subset).toEqual(r.data.token.subset);

    const moved = ok(await t.gql(REASSIGN, { id: r.data.token.id, s: district('d9') })).setTokenSubset;
    expect(moved).toEqual({ __typename: 'MutationSetTokenSubsetSuccess', data: { ...r.data.token, subset: district('d9') } });
    // At once, though the token's lookup was cached a moment ago.
    expect(ok(await t.gqlAs(r.data.secret, '{ viewer { subset { property values } } }')).viewer.subset).toEqual(district('d9'));
    // Empty: the whole datasets.
    expect(ok(await t.gql(REASSIGN, { id: r.data.token.id, s: [] })).setTokenSubset.data.subset).toBeNull();
    // A token without a subset shows null.
    const plain = ok(await t.gql(CREATE, { n: 'plain', r: 'COLLECTOR', ds: [ds] })).createApiToken;
    expect(plain.data.token.subset).toBeNull();
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['a property the dataset does not declare', { s: [{ property: 'colour', values: ['red'] }] }, 'UNKNOWN_PROPERTY', 'a property is not declared by the dataset: colour'],
    ['a reviewer token', { r: 'REVIEWER', s: district('d1') }, 'INVALID_SUBSET', 'only a collector token bound to a list of datasets takes a subset (reviewers and admins see whole datasets)'],
    ['a token of every dataset', { ds: null, s: district('d1') }, 'INVALID_SUBSET', 'only a collector token bound to a list of datasets takes a subset (reviewers and admins see whole datasets)'],
    ['an admin token', { r: 'ADMIN', ds: null, s: district('d1') }, 'ADMIN_TOKEN_RESTRICTED', 'an admin token applies to every dataset and device: it takes no datasets or device id'],
    ['nine rules', { s: Array.from({ length: 9 }, () => ({ property: 'district', values: ['x'] })) }, 'INVALID_SUBSET', 'the subset is not acceptable: 9 rules; at most 8'],
    ['a rule with no values', { s: district() }, 'INVALID_SUBSET', 'the subset is not acceptable: the rule on "district" has no values (it would match nothing)'],
    ['a dataset that does not exist', { ds: ['nowhere_1'], s: district('d1') }, 'UNKNOWN_DATASET', 'no dataset named "nowhere_1": a token with a subset names existing datasets'],
  ])('createApiToken refuses %s, and makes no token', async (_name, vars, code, message) => {
    const ds = await d.createDataset(PROPS);
    const before = (await allTokens()).length;
    const r = ok(await t.gql(CREATE, { n: 'refused', r: 'COLLECTOR', ds: [ds], ...vars })).createApiToken;
    expect(r).toEqual({ __typename: 'DomainError', code, message });
    expect((await allTokens()).length).toBe(before);
  });

  it('a rule must name a property every dataset of the token declares', async () => {
    const trees = await d.createDataset(['district', 'height']);
    const birds = await d.createDataset(['district', 'wingspan']);
    const both = { n: 'two', r: 'COLLECTOR', ds: [trees, birds] };
    expect(ok(await t.gql(CREATE, { ...both, s: [{ property: 'height', values: ['1'] }] })).createApiToken).toMatchObject({ code: 'UNKNOWN_PROPERTY' });
    expect(ok(await t.gql(CREATE, { ...both, s: district('d1') })).createApiToken.data.token.subset).toEqual(district('d1'));
  });

  it('setTokenSubset refuses an unknown, malformed or revoked token and bad rules, changing nothing', async () => {
    const ds = await d.createDataset(PROPS);
    const tablet = await tokenFor(ds, district('d1'));
    const reassign = async (id: string, s: unknown) => ok(await t.gql(REASSIGN, { id, s })).setTokenSubset;
    expect(await reassign(randomUUID(), district('d2'))).toMatchObject({ __typename: 'DomainError', code: 'TOKEN_NOT_FOUND' });
    expect(await reassign('not-a-uuid', district('d2'))).toMatchObject({ __typename: 'DomainError', code: 'TOKEN_NOT_FOUND' });
    expect(await reassign(tablet.id, [{ property: 'colour', values: ['x'] }])).toEqual({ __typename: 'DomainError', code: 'UNKNOWN_PROPERTY', message: 'a property is not declared by the dataset: colour' });
    expect(ok(await t.gqlAs(tablet.secret, '{ viewer { subset { values } } }')).viewer.subset).toEqual([{ values: ['d1'] }]);
    ok(await t.gql('mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }', { id: tablet.id }));
    expect(await reassign(tablet.id, district('d2'))).toEqual({ __typename: 'DomainError', code: 'TOKEN_NOT_FOUND', message: `the API token "${tablet.id}" is revoked` });
  });
});

describe('a device pulls its share over HTTP', () => {
  it('versions of its share; after a reassignment entered and left; never an entity outside it', async () => {
    const ds = await d.createDataset(PROPS);
    const a = await d.create(ds, 'A', { district: 'd1' });
    const b = await d.create(ds, 'B', { district: 'd2' });
    const tablet = await tokenFor(ds, district('d1'));
    // Its share as it stood when the token was made, then what changed since.
    await d.update(ds, b, 1, { n: 1 });
    const first = await pullAs(tablet.secret, ds);
    expect(first.entered).toEqual([{ entityId: a, version: 1, data: { district: 'd1' }, entity: { id: a, data: { district: 'd1' } }, entity2: { versions: [{ version: 1, data: { district: 'd1' } }] } }]);
    expect([first.versions, first.left]).toEqual([[], []]);

    // A moves out and back in; its history seen from the tablet holds only the states inside.
    await d.update(ds, a, 1, { district: 'd3' });
    await d.update(ds, a, 2, { district: 'd1', n: 1 });
    const again = await pullAs(tablet.secret, ds, first.cursor);
    expect(again.versions.map((v: { version: number }) => v.version)).toEqual([3]);
    expect(again.versions[0].entity2.versions).toEqual([
      { version: 1, data: { district: 'd1' } },
      { version: 3, data: { district: 'd1', n: 1 } },
    ]);

    // A device pulling from the start now: A's version 1 and 3 were in the share; A is now out.
    await d.update(ds, a, 3, { district: 'd3' });
    const fresh = await pullAs(tablet.secret, ds);
    expect([...fresh.entered, ...fresh.versions].map((v: { version: number; entity: unknown }) => [v.version, v.entity])).toEqual([
      [1, null],
      [3, null],
    ]);
    expect(fresh.left).toEqual([a]);

    ok(await t.gql(REASSIGN, { id: tablet.id, s: district('d2') }));
    const moved = await pullAs(tablet.secret, ds, again.cursor);
    expect(moved.versions).toEqual([]);
    expect(moved.entered).toEqual([{ entityId: b, version: 2, data: { district: 'd2', n: 1 }, entity: { id: b, data: { district: 'd2', n: 1 } }, entity2: { versions: [{ version: 1, data: { district: 'd2' } }, { version: 2, data: { district: 'd2', n: 1 } }] } }]);
    expect(moved.left).toEqual([a]);
  });

  it('a token of the whole dataset given a subset while its device is part way through: the share it has not pulled enters, what it has does not come again', async () => {
    const ds = await d.createDataset(PROPS);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await d.create(ds, `E${i}`, { district: i % 2 === 0 ? 'd1' : 'd2' }));
    const tablet = await tokenFor(ds, null);
    // The device has E0 and E1 at version 1 (its cursor is past them); then E0 changes.
    const first = await pullAs(tablet.secret, ds, null, 2);
    expect(first.versions.map((v: { entityId: string }) => v.entityId)).toEqual([ids[0], ids[1]]);
    await d.update(ds, ids[0]!, 1, { n: 2 });
    ok(await t.gql(REASSIGN, { id: tablet.id, s: district('d1') }));
    // One row a page, so the cursor is part way through the moves between pages.
    const pages = [];
    for (let cursor = first.cursor, more = true; more; ) {
      const page = await pullAs(tablet.secret, ds, cursor, 1);
      pages.push(page);
      cursor = page.cursor;
      more = page.hasMore;
    }
    const entered = pages.flatMap((p) => p.entered.map((v: { entityId: string; version: number }) => [v.entityId, v.version]));
    // E0 at its version now (the device has version 1), E2 and E4: never pulled. Not E0 at 1 again.
    expect([...entered].sort()).toEqual(
      [
        [ids[0], 2],
        [ids[2], 1],
        [ids[4], 1],
      ].sort(),
    );
    expect(pages.flatMap((p) => p.versions)).toEqual([]);
    expect(pages.flatMap((p) => p.left).sort()).toEqual([ids[1], ids[3], ids[5]].sort());
    // A device starting now with this token gets the whole share.
    const fresh = await pullAs(tablet.secret, ds);
    expect(fresh.entered.map((v: { entityId: string; version: number }) => [v.entityId, v.version]).sort()).toEqual(
      [
        [ids[0], 2],
        [ids[2], 1],
        [ids[4], 1],
      ].sort(),
    );
  });

  it('from the whole dataset, a subset and another before the device pulls: an entity made after its cursor, out and back in, still comes', async () => {
    const ds = await d.createDataset(PROPS);
    const a = await d.create(ds, 'A', { district: 'd1' });
    const tablet = await tokenFor(ds, null);
    const first = await pullAs(tablet.secret, ds);
    const y = await d.create(ds, 'Y', { district: 'd2' });
    ok(await t.gql(REASSIGN, { id: tablet.id, s: district('d1') }));
    ok(await t.gql(REASSIGN, { id: tablet.id, s: district('d1', 'd2') }));
    const rest = await pullAs(tablet.secret, ds, first.cursor);
    // Y left (the device never had it) and entered again: it is handed out; A it has.
    expect(rest.entered.map((v: { entityId: string }) => v.entityId)).toEqual([y]);
    expect(rest.left).toEqual([]);
    expect(rest.versions).toEqual([]);
    expect(a).not.toBe(y);
  });

  it('from the whole dataset, an entity deleted after the device pulled it leaves, though its rules match', async () => {
    const ds = await d.createDataset(PROPS);
    const x = await d.create(ds, 'X', { district: 'd1' });
    const keep = await d.create(ds, 'K', { district: 'd1' });
    const tablet = await tokenFor(ds, null);
    const first = await pullAs(tablet.secret, ds);
    expect(first.versions).toHaveLength(2);
    await d.remove(ds, x, 1);
    ok(await t.gql(REASSIGN, { id: tablet.id, s: district('d1') }));
    const rest = await pullAs(tablet.secret, ds, first.cursor);
    expect(rest.left).toEqual([x]);
    expect([rest.entered, rest.versions]).toEqual([[], []]);
    expect(keep).not.toBe(x);
  });
});

describe('answers never show an entity outside the share', () => {
  const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { __typename ... on MutationSubmitChangesSuccess { data {
    outcome version error { code message } entity { id data } entityVersion { version data } } } } }`;

  it('an update that moves an entity out is accepted, and its answer shows nothing of it; a refusal is OUTSIDE_SUBSET', async () => {
    const ds = await d.createDataset(PROPS);
    const mine = await d.create(ds, 'Mine', { district: 'd1' });
    const theirs = await d.create(ds, 'Theirs', { district: 'd2' });
    const tablet = await tokenFor(ds, district('d1'));
    const submit = async (c: Record<string, unknown>) => ok(await t.gqlAs(tablet.secret, SUBMIT, { c: [{ id: randomUUID(), dataset: ds, deviceId: tablet.deviceId, ...c }] })).submitChanges.data[0];
    expect(await submit({ entityId: mine, action: 'UPDATE', baseVersion: 1, data: { n: 1 } })).toEqual({
      outcome: 'APPLIED',
      version: 2,
      error: null,
      entity: { id: mine, data: { district: 'd1', n: 1 } },
      entityVersion: { version: 2, data: { district: 'd1', n: 1 } },
    });
    expect(await submit({ entityId: mine, action: 'UPDATE', baseVersion: 2, data: { district: 'd2' } })).toEqual({ outcome: 'APPLIED', version: 3, error: null, entity: null, entityVersion: null });
    expect(await submit({ entityId: theirs, action: 'UPDATE', baseVersion: 1, data: { n: 1 } })).toEqual({
      outcome: 'REJECTED',
      version: null,
      error: { code: 'OUTSIDE_SUBSET', message: `the entity is not in the token's subset: ${theirs}` },
      entity: null,
      entityVersion: null,
    });
    // A missing entity gets the same answer.
    const missing = randomUUID();
    expect(await submit({ entityId: missing, action: 'UPDATE', baseVersion: 1, data: { n: 1 } })).toMatchObject({
      outcome: 'REJECTED',
      error: { code: 'OUTSIDE_SUBSET', message: `the entity is not in the token's subset: ${missing}` },
    });
  });
});

describe('which tokens see an entity', () => {
  it('Entity.subsetTokens lists the tokens whose subset includes it now, for reviewers and admins only', async () => {
    const ds = await d.createDataset(PROPS);
    const e = await d.create(ds, 'Tree', { district: 'd1', status: 'open' });
    const one = await tokenFor(ds, district('d1'), 'one');
    const two = await tokenFor(ds, [...district('d1', 'd2'), { property: 'status', values: ['open'] }], 'two');
    await tokenFor(ds, district('d2'), 'other');
    const plain = ok(await t.gql(CREATE, { n: 'plain', r: 'COLLECTOR', ds: [ds] })).createApiToken.data.token;
    const revoked = await tokenFor(ds, district('d1'), 'revoked');
    ok(await t.gql('mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }', { id: revoked.id }));
    const tokensOf = async () => (ok(await t.gql(`query($id: ID!) { entity(id: $id) { subsetTokens { nodes { id name subset { property values } } } } }`, { id: e })).entity.subsetTokens.nodes as { id: string }[]).map((x) => x.id);
    expect(await tokensOf()).toEqual([one.id, two.id]);
    expect(await tokensOf()).not.toContain(plain.id);
    await d.update(ds, e, 1, { status: 'closed' });
    expect(await tokensOf()).toEqual([one.id]);
    // A collector cannot ask.
    const res: GqlResponse = await t.gqlAs(one.secret, `query($ds: String!) { changesSince(dataset: $ds) { ... on QueryChangesSinceSuccess { data { versions { entity { subsetTokens { nodes { id } } } } } } } }`, { ds });
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
  it('Entity.subsetTokens is a page: first/after in creation order, each token once, a tampered cursor refused', async () => {
    const ds = await d.createDataset(PROPS);
    const e = await d.create(ds, 'Tree', { district: 'd1', status: 'open', n: 7 });
    // Matching on a string, a number written as an integer, and two rules; some not matching.
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      made.push((await tokenFor(ds, district('d1'), `a${i}`)).id);
      await tokenFor(ds, district('d2'), `x${i}`);
      made.push((await tokenFor(ds, [{ property: 'n', values: ['7'] }, { property: 'status', values: ['open', 'closed'] }], `b${i}`)).id);
      await tokenFor(ds, [{ property: 'n', values: ['7.0'] }], `y${i}`);
    }
    const PAGE = `query($id: ID!, $f: Int, $a: String) { entity(id: $id) { subsetTokens(first: $f, after: $a) {
      edges { cursor node { id } } nodes { id } pageInfo { hasNextPage hasPreviousPage endCursor } } } }`;
    const whole = ok(await t.gql(PAGE, { id: e })).entity.subsetTokens;
    expect(whole.nodes.map((x: { id: string }) => x.id)).toEqual(made);
    expect(whole.pageInfo.hasNextPage).toBe(false);
    const seen: string[] = [];
    const sizes: number[] = [];
    for (let after: string | null = null; ; ) {
      const page: { edges: { cursor: string; node: { id: string } }[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string } } = ok(await t.gql(PAGE, { id: e, f: 3, a: after })).entity.subsetTokens;
      sizes.push(page.edges.length);
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)!.cursor);
      seen.push(...page.edges.map((x) => x.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(made);
    expect(sizes).toEqual([3, 3, 3, 1]);
    // Beyond the maximum page: the maximum.
    expect(ok(await t.gql(PAGE, { id: e, f: 100_000 })).entity.subsetTokens.nodes).toHaveLength(10);
    for (const a of ['nonsense', 'DC:N:1', `DC:T:["N:1 or 1=1","S:${e}"]`, `DC:T:["N:1","S:x"]`].map((c) => Buffer.from(c).toString('base64'))) {
      expect((await t.gql(PAGE, { id: e, a })).errors?.map((x) => x.extensions?.code)).toEqual(['INVALID_CURSOR']);
    }
  });
});
