import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/core/types.js';
import { REFUSAL_MESSAGES } from '../../src/server/auth.js';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type GqlResponse, type TestApp } from '../helpers/app.js';
import { domain, offline, offlineRun, ok, sync, type ChangeInput } from '../helpers/domain.js';

/**
 * Who may do what (issue 7), over real HTTP with anonymous access off: every query and
 * mutation × every kind of token, allowed or refused (FORBIDDEN, nothing stored), then the
 * rules a collector must never get around, authentication failures (401) and token handling.
 */

type RoleKey = 'admin' | 'reviewerTrees' | 'collectorTab1' | 'collectorTrees' | 'reviewerAll';
const ROLE_KEYS: RoleKey[] = ['admin', 'reviewerTrees', 'collectorTab1', 'collectorTrees', 'reviewerAll'];
const TOKEN_SPECS: Record<RoleKey, { role: string; deviceId: string | null; datasets: string[] | null }> = {
  admin: { role: 'ADMIN', deviceId: null, datasets: null },
  reviewerTrees: { role: 'REVIEWER', deviceId: null, datasets: ['trees'] },
  collectorTab1: { role: 'COLLECTOR', deviceId: 'tab-1', datasets: ['trees'] },
  collectorTrees: { role: 'COLLECTOR', deviceId: null, datasets: ['trees'] },
  reviewerAll: { role: 'REVIEWER', deviceId: null, datasets: null },
};
const TREE_PROPS = ['height', 'species', 'note'];
const BIRD_PROPS = ['wingspan', 'species', 'note'];
const TOKEN_FIELDS = 'id name role deviceId datasets createdAt revokedAt';

let t: TestApp;
const tokens = {} as Record<RoleKey, { secret: string; id: string }>;
/** Every dataset that exists, and the properties of `trees` (an allowed addDatasetProperties grows them). */
const allDatasets = new Set(['trees', 'birds']);
let treesProps = [...TREE_PROPS];

/** The same test app, every request carrying this token: lets the domain helpers act as it. */
const as = (secret: string): TestApp => ({ ...t, gql: (q, v) => t.gqlAs(secret, q, v) });
const adminApp = () => as(tokens.admin.secret);
const gqlAs = (role: RoleKey, query: string, variables?: Record<string, unknown>) => t.gqlAs(tokens[role].secret, query, variables);
const asAdmin = (query: string, variables?: Record<string, unknown>) => gqlAs('admin', query, variables);

/** Fixtures, made by the admin in both datasets. */
const fx = {} as Record<'trees' | 'birds', { entity: string; change: string; otherDeviceChange: string; branch: string; held: string }>;

async function createDataset(name: string, properties: string[]) {
  const r = ok(await asAdmin(`mutation($n: String!, $p: [String!]!) { createDataset(name: $n, properties: $p) { __typename } }`, { n: name, p: properties }));
  expect(r.createDataset.__typename).toBe('MutationCreateDatasetSuccess');
}

/** An entity of `ds` with an unresolved HARD conflict on `note`. */
async function conflicted(ds: string): Promise<string> {
  const d = domain(adminApp());
  const id = await d.create(ds, 'Conflicted', { note: 'v1' });
  expect(await d.update(ds, id, 1, { note: 'a' })).toMatchObject({ outcome: 'APPLIED', conflict: null });
  expect(await d.update(ds, id, 1, { note: 'b' })).toMatchObject({ outcome: 'APPLIED', conflict: 'HARD' });
  return id;
}

/** Resolves every open conflict of both datasets, as the admin. */
async function resolveOpenConflicts(): Promise<void> {
  for (const ds of ['trees', 'birds']) {
    const open = ok(await asAdmin(`query($ds: String!) { conflicts(dataset: $ds, first: 500) { nodes { id version } } }`, { ds })).conflicts.nodes as { id: string; version: number }[];
    for (const { id, version } of open) {
      const r = ok(await asAdmin(`mutation($id: ID!, $v: Int!) { resolveConflict(entityId: $id, version: $v) { __typename } }`, { id, v: version }));
      expect(r.resolveConflict.__typename).toBe('MutationResolveConflictSuccess');
    }
  }
}

async function adminEntity(id: string) {
  return ok(await asAdmin(`query($id: ID!) { entity(id: $id) { id label version conflict } }`, { id })).entity;
}
async function adminChange(id: string) {
  return ok(await asAdmin(`query($id: String!) { change(id: $id) { id outcome dataset deviceId } }`, { id })).change;
}
/** Every token, over the pages of apiTokens. */
async function adminTokens(): Promise<{ id: string; name: string; revokedAt: string | null }[]> {
  const all: { id: string; name: string; revokedAt: string | null }[] = [];
  for (let after: string | null = null; ; ) {
    const page: { nodes: { id: string; name: string; revokedAt: string | null }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } = ok(await asAdmin(`query($a: String) { apiTokens(first: 500, after: $a) { nodes { ${TOKEN_FIELDS} } pageInfo { hasNextPage endCursor } } }`, { a: after })).apiTokens;
    all.push(...page.nodes);
    if (!page.pageInfo.hasNextPage) return all;
    after = page.pageInfo.endCursor;
  }
}
async function adminHeld(): Promise<string[]> {
  return ok(await asAdmin(`{ heldChanges(first: 500) { nodes { changeId } } }`)).heldChanges.nodes.map((h: { changeId: string }) => h.changeId);
}

/** Refused: one top-level FORBIDDEN error, the field's data withheld, nothing else. */
function expectForbidden(res: GqlResponse, field: string): void {
  expect(res.status).toBe(200);
  expect(res.errors, JSON.stringify(res)).toHaveLength(1);
  expect(res.errors![0]).toMatchObject({ message: ERROR_CODES.FORBIDDEN, extensions: { code: 'FORBIDDEN' }, path: [field] });
  expect(res.data?.[field] ?? null).toBeNull();
}

/** Refused with 401 UNAUTHENTICATED, the message saying why (`REFUSAL_MESSAGES` in src/server/auth.ts). */
function expect401(res: Response, body: GqlResponse, why: keyof typeof REFUSAL_MESSAGES): void {
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toBe('Bearer');
  expect(body.data ?? null).toBeNull();
  expect(body.errors).toEqual([expect.objectContaining({ message: REFUSAL_MESSAGES[why], extensions: expect.objectContaining({ code: 'UNAUTHENTICATED' }) })]);
}

async function raw(url: string, headers: Record<string, string>, query = '{ viewer { role } }', variables?: Record<string, unknown>): Promise<[Response, GqlResponse]> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
  return [res, (await res.json()) as GqlResponse];
}

const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) {
  __typename ... on MutationSubmitChangesSuccess { data { changeId outcome entityId localId version error { code } } } ... on DomainError { code } } }`;
const SUBMIT_ONE = `mutation($c: ChangeInput!) { submitChange(change: $c) { changeId outcome entityId version error { code } } }`;
type NewChange = ChangeInput & { id: string; entityId: string; localId?: string };
const create = (dataset: string, extra: Partial<NewChange> = {}): NewChange => ({
  id: randomUUID(),
  dataset,
  entityId: randomUUID(),
  action: 'CREATE',
  label: 'New',
  data: { note: 'x' },
  deviceId: 'tab-1',
  ...extra,
});

beforeAll(async () => {
  t = await startTestApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0 });
  // The first admin token straight through the use-case, the others over GraphQL with it.
  const { secret, token } = await createToken(t.database.db, { name: 'admin', role: 'admin' });
  tokens.admin = { secret, id: token.id };
  await createDataset('trees', TREE_PROPS);
  await createDataset('birds', BIRD_PROPS);
  for (const key of ROLE_KEYS.slice(1)) {
    const spec = TOKEN_SPECS[key];
    const r = ok(
      await asAdmin(
        `mutation($n: String!, $r: Role!, $d: String, $ds: [String!]) { createApiToken(name: $n, role: $r, deviceId: $d, datasets: $ds) {
          __typename ... on MutationCreateApiTokenSuccess { data { secret token { ${TOKEN_FIELDS} } } } ... on DomainError { code message } } }`,
        { n: key, r: spec.role, d: spec.deviceId, ds: spec.datasets },
      ),
    ).createApiToken;
    expect(r.__typename, JSON.stringify(r)).toBe('MutationCreateApiTokenSuccess');
    expect(r.data.token).toMatchObject({ name: key, role: spec.role, deviceId: spec.deviceId, datasets: spec.datasets, revokedAt: null });
    tokens[key] = { secret: r.data.secret, id: r.data.token.id };
  }

  const o = offline(adminApp());
  for (const ds of ['trees', 'birds'] as const) {
    const [made, other] = await o.submit(create(ds, { deviceId: 'tab-1' }), create(ds, { deviceId: 'tab-2' }));
    expect([made!.outcome, other!.outcome]).toEqual(['APPLIED', 'APPLIED']);
    const run = offlineRun(ds, made!.entityId!, 1, { deviceId: 'tab-1' });
    expect(await o.one(run.update(1, { note: 'run' }))).toMatchObject({ outcome: 'APPLIED', version: 2 });
    const gap = offlineRun(ds, made!.entityId!, 2, { deviceId: 'tab-1' });
    const held = gap.update(2, { note: 'waits' });
    expect(await o.one(held)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    fx[ds] = { entity: made!.entityId!, change: made!.changeId, otherDeviceChange: other!.changeId, branch: run.branchId, held: held.id };
  }
});
afterAll(() => t.close());

/* ---- The table: every operation × every token ---- */

interface Request {
  query: string;
  variables?: Record<string, unknown>;
  /** Checks the data of an allowed request. */
  allowed: (data: any, role: RoleKey) => void | Promise<void>;
  /** After a refusal: proves nothing was stored (checked with the admin token). */
  unchanged?: () => Promise<void>;
}
interface Row {
  op: string;
  field: string;
  allow: RoleKey[];
  /** Builds one request for one token; mutations get fresh inputs. */
  request: (role: RoleKey) => Request | Promise<Request>;
}

const ALL = ROLE_KEYS;
const UNRESTRICTED: RoleKey[] = ['admin', 'reviewerAll'];
const TREES_REVIEW: RoleKey[] = ['admin', 'reviewerTrees', 'reviewerAll'];
const TREES_SUBMIT: RoleKey[] = ['admin', 'collectorTab1', 'collectorTrees'];
const viewerOf = (role: RoleKey) => ({ tokenId: tokens[role].id, ...TOKEN_SPECS[role] });
const entityRead = (ds: 'trees' | 'birds'): Request => ({
  query: `query($id: ID!) { entity(id: $id) { id label dataset { name } } }`,
  variables: { id: fx[ds].entity },
  allowed: (d) => expect(d.entity).toEqual({ id: fx[ds].entity, label: 'New', dataset: { name: ds } }),
});
const pull = (ds: string, deviceId?: string): Request => ({
  query: `query($ds: String!, $d: String) { changesSince(dataset: $ds, deviceId: $d) { __typename ... on QueryChangesSinceSuccess { data { localIds { localId } versions { changeId entity { dataset { name } } } } } } }`,
  variables: { ds, d: deviceId },
  allowed: (d) => {
    expect(d.changesSince.__typename).toBe('QueryChangesSinceSuccess');
    const versions = d.changesSince.data.versions as { changeId: string; entity: { dataset: { name: string } } }[];
    expect(versions.map((v) => v.changeId)).toContain(fx[ds as 'trees'].change);
    expect(new Set(versions.map((v) => v.entity.dataset.name))).toEqual(new Set([ds]));
  },
});
const submitRow = (op: 'submitChanges' | 'submitChange', ds: 'trees' | 'birds', allow: RoleKey[]): Row => ({
  op: `${op}(${ds})`,
  field: op,
  allow,
  request: () => {
    const c = create(ds);
    return {
      query: op === 'submitChanges' ? SUBMIT : SUBMIT_ONE,
      variables: { c: op === 'submitChanges' ? [c] : c },
      allowed: (d) => {
        const r = op === 'submitChanges' ? d.submitChanges.data[0] : d.submitChange;
        expect(r).toMatchObject({ changeId: c.id, outcome: 'APPLIED', entityId: c.entityId, version: 1, error: null });
      },
      unchanged: async () => {
        expect(await adminChange(c.id)).toBeNull();
        expect(await adminEntity(c.entityId)).toBeNull();
      },
    };
  },
});
const resolveRow = (ds: 'trees' | 'birds', allow: RoleKey[]): Row => ({
  op: `resolveConflict(${ds})`,
  field: 'resolveConflict',
  allow,
  request: async () => {
    const id = await conflicted(ds);
    return {
      query: `mutation($id: ID!) { resolveConflict(entityId: $id, version: 3) { __typename ... on MutationResolveConflictSuccess { data { id conflict } } ... on DomainError { code } } }`,
      variables: { id },
      allowed: (d) => expect(d.resolveConflict).toEqual({ __typename: 'MutationResolveConflictSuccess', data: { id, conflict: null } }),
      unchanged: async () => expect(await adminEntity(id)).toMatchObject({ id, version: 3, conflict: 'HARD' }),
    };
  },
});

const resolveManyRow = (ds: 'trees' | 'birds'): Row => ({
  op: `resolveConflicts(${ds})`,
  field: 'resolveConflicts',
  // Any reviewer may ask; each item of a dataset the token may not use is answered FORBIDDEN on its own.
  allow: ['admin', 'reviewerTrees', 'reviewerAll'],
  request: async () => {
    const id = await conflicted(ds);
    return {
      query: `mutation($id: ID!) { resolveConflicts(items: [{ entityId: $id, version: 3 }], note: "bulk") { __typename ... on MutationResolveConflictsSuccess { data { entityId resolved error { code } } } } }`,
      variables: { id },
      allowed: async (d, role) => {
        const mayUse = TOKEN_SPECS[role].datasets?.includes(ds) ?? true;
        expect(d.resolveConflicts).toEqual({ __typename: 'MutationResolveConflictsSuccess', data: [{ entityId: id, resolved: mayUse, error: mayUse ? null : { code: 'FORBIDDEN' } }] });
        expect(await adminEntity(id)).toMatchObject({ conflict: mayUse ? null : 'HARD' });
      },
      unchanged: async () => expect(await adminEntity(id)).toMatchObject({ id, version: 3, conflict: 'HARD' }),
    };
  },
});
const restoreRow = (ds: 'trees' | 'birds', allow: RoleKey[]): Row => ({
  op: `restoreEntity(${ds})`,
  field: 'restoreEntity',
  allow,
  request: async () => {
    const d = domain(adminApp());
    const id = await d.create(ds, 'Deleted', { note: 'v1' });
    expect(await d.remove(ds, id, 1)).toMatchObject({ outcome: 'APPLIED', version: 2 });
    return {
      query: `mutation($id: ID!) { restoreEntity(entityId: $id, version: 2) { __typename ... on MutationRestoreEntitySuccess { data { id version deleted } } ... on DomainError { code } } }`,
      variables: { id },
      allowed: (d) => expect(d.restoreEntity).toEqual({ __typename: 'MutationRestoreEntitySuccess', data: { id, version: 3, deleted: false } }),
      unchanged: async () => expect(await adminEntity(id)).toMatchObject({ id, version: 2 }),
    };
  },
});
const rejectedRow = (ds: 'trees' | 'birds', allow: RoleKey[]): Row => ({
  op: `rejectedChanges(${ds})`,
  field: 'rejectedChanges',
  allow,
  request: async () => {
    const refused = create(ds, { data: { colour: 'red' } });
    expect(ok(await asAdmin(SUBMIT, { c: [refused] })).submitChanges.data[0]).toMatchObject({ outcome: 'REJECTED', error: { code: 'UNKNOWN_PROPERTY' } });
    return {
      query: `query($ds: String!) { rejectedChanges(dataset: $ds, first: 1) { nodes { id dataset errorCode } } }`,
      variables: { ds },
      allowed: (d) => expect(d.rejectedChanges.nodes).toEqual([{ id: refused.id, dataset: ds, errorCode: 'UNKNOWN_PROPERTY' }]),
    };
  },
});

const ROWS: Row[] = [
  {
    op: 'datasets',
    field: 'datasets',
    allow: ALL,
    request: () => ({
      query: '{ datasets { name } }',
      allowed: (d, role) =>
        expect(d.datasets.map((x: { name: string }) => x.name)).toEqual(TOKEN_SPECS[role].datasets ?? [...allDatasets].sort()),
    }),
  },
  {
    op: 'dataset(trees)',
    field: 'dataset',
    allow: ALL,
    request: () => ({ query: '{ dataset(name: "trees") { name properties } }', allowed: (d) => expect(d.dataset).toEqual({ name: 'trees', properties: treesProps }) }),
  },
  {
    op: 'dataset(birds)',
    field: 'dataset',
    allow: UNRESTRICTED,
    request: () => ({ query: '{ dataset(name: "birds") { name properties } }', allowed: (d) => expect(d.dataset).toEqual({ name: 'birds', properties: BIRD_PROPS }) }),
  },
  { op: 'entity(trees)', field: 'entity', allow: TREES_REVIEW, request: () => entityRead('trees') },
  { op: 'entity(birds)', field: 'entity', allow: UNRESTRICTED, request: () => entityRead('birds') },
  ...(['trees', 'birds'] as const).map(
    (ds): Row => ({
      op: `entities(${ds})`,
      field: 'entities',
      allow: ds === 'trees' ? TREES_REVIEW : UNRESTRICTED,
      request: () => ({
        query: `query($ds: String!) { entities(dataset: $ds, first: 100) { nodes { id dataset { name } } } }`,
        variables: { ds },
        allowed: (d) => {
          const nodes = d.entities.nodes as { id: string; dataset: { name: string } }[];
          expect(nodes.map((n) => n.id)).toContain(fx[ds].entity);
          expect(new Set(nodes.map((n) => n.dataset.name))).toEqual(new Set([ds]));
        },
      }),
    }),
  ),
  ...(['trees', 'birds'] as const).map(
    (ds): Row => ({
      op: `conflicts(${ds})`,
      field: 'conflicts',
      allow: ds === 'trees' ? TREES_REVIEW : UNRESTRICTED,
      // Conflicts of its own, made after every open one was resolved, so the exact list is known
      // whatever ran before: two in this dataset (in id order, as the list is paged) and one in the other.
      request: async () => {
        await resolveOpenConflicts();
        const first = await conflicted(ds);
        const second = await conflicted(ds);
        await conflicted(ds === 'trees' ? 'birds' : 'trees');
        return {
          query: `query($ds: String!) { conflicts(dataset: $ds) { nodes { id version conflict dataset { name } } } }`,
          variables: { ds },
          allowed: (d) =>
            expect(d.conflicts.nodes).toEqual([first, second].sort().map((id) => ({ id, version: 3, conflict: 'HARD', dataset: { name: ds } }))),
        };
      },
    }),
  ),
  ...(['trees', 'birds'] as const).map(
    (ds): Row => ({
      op: `conflictInbox(${ds})`,
      field: 'conflictInbox',
      allow: ds === 'trees' ? TREES_REVIEW : UNRESTRICTED,
      request: () => ({
        query: `query($ds: String!) { conflictInbox(dataset: $ds) { nodes { conflict conflictingProperties dataset { name } } } }`,
        variables: { ds },
        allowed: (d) => {
          for (const e of d.conflictInbox.nodes) expect(e).toMatchObject({ conflict: 'HARD', conflictingProperties: ['note'], dataset: { name: ds } });
        },
      }),
    }),
  ),
  ...(
    [
      ['change(trees, tab-1)', 'trees', 'change', 'tab-1', ALL],
      ['change(trees, tab-2)', 'trees', 'otherDeviceChange', 'tab-2', ['admin', 'reviewerTrees', 'collectorTrees', 'reviewerAll']],
      ['change(birds)', 'birds', 'change', 'tab-1', UNRESTRICTED],
    ] as const
  ).map(
    ([op, ds, which, device, allow]): Row => ({
      op,
      field: 'change',
      allow: [...allow],
      request: () => ({
        query: `query($id: String!) { change(id: $id) { id dataset deviceId outcome } }`,
        variables: { id: fx[ds][which] },
        allowed: (d) => expect(d.change).toEqual({ id: fx[ds][which], dataset: ds, deviceId: device, outcome: 'APPLIED' }),
      }),
    }),
  ),
  ...(['trees', 'birds'] as const).map(
    (ds): Row => ({
      op: `branch(${ds})`,
      field: 'branch',
      allow: ds === 'trees' ? TREES_REVIEW : UNRESTRICTED,
      request: () => ({
        query: `query($id: ID!) { branch(id: $id) { id entityId trunkVersion changes { position state version } } }`,
        variables: { id: fx[ds].branch },
        allowed: (d) =>
          expect(d.branch).toEqual({ id: fx[ds].branch, entityId: fx[ds].entity, trunkVersion: 1, changes: [{ position: 1, state: 'APPLIED', version: 2 }] }),
      }),
    }),
  ),
  ...([['trees', TREES_REVIEW], ['birds', UNRESTRICTED], [null, UNRESTRICTED]] as const).map(
    ([ds, allow]): Row => ({
      op: `heldChanges(${ds ?? 'every dataset'})`,
      field: 'heldChanges',
      allow: [...allow],
      request: async () => {
        const query = `query($ds: String) { heldChanges(dataset: $ds, first: 500) { nodes { changeId dataset deviceId } } }`;
        // Other tests may hold changes of their own (the suite also runs shuffled): an allowed
        // token sees what the admin sees for the same question, which is the fixtures' held
        // changes and others of the asked datasets only.
        const everything = ok(await asAdmin(query, { ds })).heldChanges.nodes as { changeId: string; dataset: string }[];
        const asked = ds ? [ds] : (['trees', 'birds'] as const);
        for (const n of asked) expect(everything).toContainEqual({ changeId: fx[n].held, dataset: n, deviceId: 'tab-1' });
        expect(everything.filter((h) => !(asked as readonly string[]).includes(h.dataset))).toEqual([]);
        return { query, variables: { ds }, allowed: (d) => expect(d.heldChanges.nodes).toEqual(everything) };
      },
    }),
  ),
  { op: 'changesSince(trees)', field: 'changesSince', allow: ALL, request: () => pull('trees') },
  { op: 'changesSince(trees, tab-1)', field: 'changesSince', allow: ALL, request: () => pull('trees', 'tab-1') },
  { op: 'changesSince(trees, tab-2)', field: 'changesSince', allow: ['admin', 'reviewerTrees', 'collectorTrees', 'reviewerAll'], request: () => pull('trees', 'tab-2') },
  { op: 'changesSince(birds)', field: 'changesSince', allow: UNRESTRICTED, request: () => pull('birds') },
  {
    op: 'viewer',
    field: 'viewer',
    allow: ALL,
    request: () => ({ query: '{ viewer { tokenId role deviceId datasets } }', allowed: (d, role) => expect(d.viewer).toEqual(viewerOf(role)) }),
  },
  {
    op: 'apiTokens',
    field: 'apiTokens',
    allow: ['admin'],
    request: () => ({
      // The newest page: the matrix's tokens were made in its setup.
      query: `{ apiTokens(last: 500) { nodes { ${TOKEN_FIELDS} } } }`,
      allowed: (d) => {
        for (const key of ROLE_KEYS) {
          const { role, deviceId, datasets } = TOKEN_SPECS[key];
          expect(d.apiTokens.nodes).toContainEqual(expect.objectContaining({ id: tokens[key].id, name: key, role, deviceId, datasets, revokedAt: null }));
        }
        const text = JSON.stringify(d);
        for (const key of ROLE_KEYS) expect(text).not.toContain(tokens[key].secret);
      },
    }),
  },
  {
    op: 'createDataset',
    field: 'createDataset',
    allow: ['admin'],
    request: () => {
      const name = `ds_${randomBytes(4).toString('hex')}`;
      return {
        query: `mutation($n: String!) { createDataset(name: $n, properties: ["a"]) { __typename ... on MutationCreateDatasetSuccess { data { name properties } } } }`,
        variables: { n: name },
        allowed: (d) => {
          expect(d.createDataset).toEqual({ __typename: 'MutationCreateDatasetSuccess', data: { name, properties: ['a'] } });
          allDatasets.add(name);
        },
        unchanged: async () => expect(ok(await asAdmin(`query($n: String!) { dataset(name: $n) { name } }`, { n: name })).dataset).toBeNull(),
      };
    },
  },
  {
    op: 'addDatasetProperties(trees)',
    field: 'addDatasetProperties',
    allow: ['admin'],
    request: (role) => {
      const before = [...treesProps];
      const prop = `extra_${role}`;
      return {
        query: `mutation($p: String!) { addDatasetProperties(name: "trees", properties: [$p]) { __typename ... on MutationAddDatasetPropertiesSuccess { data { properties } } } }`,
        variables: { p: prop },
        allowed: (d) => {
          treesProps = [...before, prop];
          expect(d.addDatasetProperties).toEqual({ __typename: 'MutationAddDatasetPropertiesSuccess', data: { properties: treesProps } });
        },
        unchanged: async () => expect(ok(await asAdmin('{ dataset(name: "trees") { properties } }')).dataset.properties).toEqual(before),
      };
    },
  },
  submitRow('submitChanges', 'trees', TREES_SUBMIT),
  submitRow('submitChanges', 'birds', ['admin']),
  submitRow('submitChange', 'trees', TREES_SUBMIT),
  submitRow('submitChange', 'birds', ['admin']),
  resolveRow('trees', TREES_REVIEW),
  resolveRow('birds', UNRESTRICTED),
  resolveManyRow('trees'),
  resolveManyRow('birds'),
  restoreRow('trees', TREES_REVIEW),
  restoreRow('birds', UNRESTRICTED),
  rejectedRow('trees', TREES_REVIEW),
  rejectedRow('birds', UNRESTRICTED),
  {
    op: 'flushBacklog',
    field: 'flushBacklog',
    allow: ['admin'],
    // Only changes held longer than an hour: none, so the held fixtures stay for the other rows.
    request: async () => {
      const before = await adminHeld();
      return {
        query: 'mutation { flushBacklog(olderThanSeconds: 3600) { forced released truncated changes { changeId } } }',
        allowed: (d) => expect(d.flushBacklog).toEqual({ forced: 0, released: 0, truncated: false, changes: [] }),
        unchanged: async () => expect(await adminHeld()).toEqual(before),
      };
    },
  },
  {
    op: 'createApiToken',
    field: 'createApiToken',
    allow: ['admin'],
    request: async (role) => {
      const before = await adminTokens();
      return {
        query: `mutation($n: String!) { createApiToken(name: $n, role: ADMIN) { __typename ... on MutationCreateApiTokenSuccess { data { secret token { name role revokedAt } } } } }`,
        variables: { n: `made by ${role}` },
        allowed: (d) => {
          expect(d.createApiToken).toMatchObject({ __typename: 'MutationCreateApiTokenSuccess', data: { token: { name: `made by ${role}`, role: 'ADMIN', revokedAt: null } } });
          expect(d.createApiToken.data.secret).toMatch(/^est_[A-Za-z0-9_-]{43}$/);
        },
        unchanged: async () => expect(await adminTokens()).toEqual(before),
      };
    },
  },
  {
    op: 'setTokenSubset',
    field: 'setTokenSubset',
    allow: ['admin'],
    request: async (role) => {
      const device = await createToken(t.database.db, { name: `reassigned by ${role}`, role: 'collector', datasets: ['trees'], subset: [{ property: 'species', values: ['oak'] }] });
      return {
        query: `mutation($id: ID!) { setTokenSubset(tokenId: $id, subset: [{ property: "species", values: ["elm"] }]) { __typename ... on MutationSetTokenSubsetSuccess { data { id subset { property values } } } } }`,
        variables: { id: device.token.id },
        allowed: (d) => expect(d.setTokenSubset).toEqual({ __typename: 'MutationSetTokenSubsetSuccess', data: { id: device.token.id, subset: [{ property: 'species', values: ['elm'] }] } }),
        unchanged: async () => expect(ok(await t.gqlAs(device.secret, '{ viewer { subset { values } } }')).viewer).toEqual({ subset: [{ values: ['oak'] }] }),
      };
    },
  },
  {
    op: 'revokeApiToken',
    field: 'revokeApiToken',
    allow: ['admin'],
    request: async (role) => {
      const victim = await createToken(t.database.db, { name: `victim of ${role}`, role: 'collector' });
      return {
        query: `mutation($id: ID!) { revokeApiToken(id: $id) { __typename ... on MutationRevokeApiTokenSuccess { data { id name revokedAt } } } }`,
        variables: { id: victim.token.id },
        allowed: async (d) => {
          expect(d.revokeApiToken).toMatchObject({ __typename: 'MutationRevokeApiTokenSuccess', data: { id: victim.token.id, name: `victim of ${role}` } });
          expect(Date.parse(d.revokeApiToken.data.revokedAt)).toBeGreaterThan(Date.now() - 60_000);
          expect((await t.gqlAs(victim.secret, '{ viewer { role } }')).status).toBe(401);
        },
        unchanged: async () => {
          expect((await adminTokens()).find((x) => x.id === victim.token.id)).toMatchObject({ revokedAt: null });
          expect(ok(await t.gqlAs(victim.secret, '{ viewer { tokenId } }')).viewer).toEqual({ tokenId: victim.token.id });
        },
      };
    },
  },
  {
    op: 'webhooks',
    field: 'webhooks',
    allow: ['admin'],
    request: () => ({ query: '{ webhooks { id url datasets events } }', allowed: (d) => expect(Array.isArray(d.webhooks)).toBe(true) }),
  },
  {
    op: 'webhookDeliveries',
    field: 'webhookDeliveries',
    allow: ['admin'],
    request: async () => {
      const id = await adminWebhook();
      return {
        query: 'query($id: ID!) { webhookDeliveries(webhookId: $id) { nodes { eventId status } } }',
        variables: { id },
        allowed: (d) => expect(d.webhookDeliveries.nodes).toEqual([]),
      };
    },
  },
  {
    op: 'createWebhook',
    field: 'createWebhook',
    allow: ['admin'],
    request: async (role) => {
      const url = `http://127.0.0.1:9/made-by-${role}`;
      return {
        query: `mutation($url: String!) { createWebhook(url: $url, datasets: ["trees"], events: [CONFLICT_DETECTED]) {
          __typename ... on MutationCreateWebhookSuccess { data { secret webhook { url datasets events } } } } }`,
        variables: { url },
        allowed: (d) => {
          expect(d.createWebhook).toMatchObject({ __typename: 'MutationCreateWebhookSuccess', data: { webhook: { url, datasets: ['trees'], events: ['CONFLICT_DETECTED'] } } });
          expect(d.createWebhook.data.secret).toMatch(/^whsec_/);
        },
        unchanged: async () => expect(await adminWebhookUrls()).not.toContain(url),
      };
    },
  },
  {
    op: 'deleteWebhook',
    field: 'deleteWebhook',
    allow: ['admin'],
    request: async () => {
      const id = await adminWebhook();
      return {
        query: 'mutation($id: ID!) { deleteWebhook(id: $id) { __typename ... on MutationDeleteWebhookSuccess { data { id } } } }',
        variables: { id },
        allowed: async (d) => {
          expect(d.deleteWebhook).toEqual({ __typename: 'MutationDeleteWebhookSuccess', data: { id } });
          expect(await adminWebhookIds()).not.toContain(id);
        },
        unchanged: async () => expect(await adminWebhookIds()).toContain(id),
      };
    },
  },
];

/** A webhook made by the admin (to a port nothing listens on: its deliveries are never needed). */
async function adminWebhook(): Promise<string> {
  const r = ok(await asAdmin(`mutation { createWebhook(url: "http://127.0.0.1:9/admin", events: [CONFLICT_RESOLVED]) { ... on MutationCreateWebhookSuccess { data { webhook { id } } } } }`));
  return r.createWebhook.data.webhook.id;
}
const adminWebhookList = async () => ok(await asAdmin('{ webhooks { id url } }')).webhooks as { id: string; url: string }[];
const adminWebhookIds = async () => (await adminWebhookList()).map((w) => w.id);
const adminWebhookUrls = async () => (await adminWebhookList()).map((w) => w.url);

describe('every operation × every token', () => {
  const cases = ROWS.flatMap((row) => ROLE_KEYS.map((role) => ({ row, role, allowed: row.allow.includes(role) })));
  it.each(cases.map((c) => [`${c.row.op} as ${c.role}: ${c.allowed ? 'allowed' : 'FORBIDDEN'}`, c] as const))('%s', async (_name, { row, role, allowed }) => {
    // Pulls hand out versions once older transactions of this database ended.
    if (row.field === 'changesSince') await sync(adminApp()).pull('trees');
    const req = await row.request(role);
    const res = await gqlAs(role, req.query, req.variables);
    if (allowed) {
      await req.allowed(ok(res), role);
    } else {
      expectForbidden(res, row.field);
      await req.unchanged?.();
    }
  });

  it('the table covers every root field of the schema', async () => {
    const r = ok(await asAdmin('{ q: __type(name: "Query") { fields { name } } m: __type(name: "Mutation") { fields { name } } }'));
    const fields = [...r.q.fields, ...r.m.fields].map((f: { name: string }) => f.name).sort();
    expect([...new Set(ROWS.map((row) => row.field))].sort()).toEqual(fields);
  });
});

/* ---- What a collector must never get around ---- */

describe('a collector stays in its datasets and on its device', () => {
  const submitAs = (role: RoleKey, changes: unknown[]) => gqlAs(role, SUBMIT, { c: changes });
  async function nothingRecorded(...changes: NewChange[]): Promise<void> {
    for (const c of changes) {
      expect(await adminChange(c.id)).toBeNull();
      expect(await adminEntity(c.entityId)).toBeNull();
    }
  }

  it.each(['collectorTab1', 'collectorTrees'] as const)('%s submitting to birds is FORBIDDEN, one change or a batch, and nothing is recorded', async (role) => {
    const one = create('birds');
    expectForbidden(await gqlAs(role, SUBMIT_ONE, { c: one }), 'submitChange');
    const batch = [create('birds'), create('birds')];
    expectForbidden(await submitAs(role, batch), 'submitChanges');
    await nothingRecorded(one, ...batch);
  });

  it('a batch mixing trees and birds is refused whole: not even the trees change is recorded', async () => {
    const trees = create('trees');
    const birds = create('birds');
    expectForbidden(await submitAs('collectorTrees', [trees, birds]), 'submitChanges');
    expectForbidden(await submitAs('collectorTrees', [birds, trees]), 'submitChanges');
    await nothingRecorded(trees, birds);
    // The trees change alone goes through.
    expect(ok(await submitAs('collectorTrees', [trees])).submitChanges.data[0]).toMatchObject({ changeId: trees.id, outcome: 'APPLIED', version: 1 });
  });

  it('a device-bound collector cannot submit as another device, nor without its device id, nor mix them in a batch', async () => {
    const spoofed = create('trees', { deviceId: 'tab-2' });
    const anonymous = create('trees', { deviceId: null });
    const own = create('trees', { deviceId: 'tab-1' });
    expectForbidden(await submitAs('collectorTab1', [spoofed]), 'submitChanges');
    expectForbidden(await gqlAs('collectorTab1', SUBMIT_ONE, { c: anonymous }), 'submitChange');
    expectForbidden(await submitAs('collectorTab1', [own, spoofed]), 'submitChanges');
    await nothingRecorded(spoofed, anonymous, own);
    expect(ok(await submitAs('collectorTab1', [own])).submitChanges.data[0]).toMatchObject({ changeId: own.id, outcome: 'APPLIED' });
    expect(await adminChange(own.id)).toEqual({ id: own.id, outcome: 'APPLIED', dataset: 'trees', deviceId: 'tab-1' });
  });

  it("local-id mappings: each device sees its own only, and a device-bound token cannot pull another device's", async () => {
    const localCreate = (deviceId: string) => ({ id: randomUUID(), dataset: 'trees', deviceId, localId: 'tree-7', action: 'CREATE', label: `Tree of ${deviceId}`, data: {} });
    const mine = ok(await submitAs('collectorTab1', [localCreate('tab-1')])).submitChanges.data[0];
    const theirs = ok(await submitAs('collectorTrees', [localCreate('tab-9')])).submitChanges.data[0];
    expect(mine).toMatchObject({ outcome: 'APPLIED', localId: 'tree-7', version: 1 });
    expect(theirs).toMatchObject({ outcome: 'APPLIED', localId: 'tree-7', version: 1 });
    expect(mine.entityId).not.toBe(theirs.entityId);

    // Same local id, other device: the device-bound token may not name it, in a pull or in a change.
    for (const deviceId of ['tab-9', 'other']) {
      expectForbidden(await gqlAs('collectorTab1', pull('trees', deviceId).query, { ds: 'trees', d: deviceId }), 'changesSince');
    }
    const spoof = { id: randomUUID(), dataset: 'trees', deviceId: 'tab-9', localId: 'tree-7', action: 'UPDATE', baseVersion: 1, data: { note: 'spoofed' } };
    expectForbidden(await submitAs('collectorTab1', [spoof]), 'submitChanges');
    expect(await adminChange(spoof.id)).toBeNull();
    expect(await adminEntity(theirs.entityId)).toMatchObject({ version: 1 });

    // The whole dataset in one page, whatever the other rows of this file wrote to it before.
    const tab1 = await sync(as(tokens.collectorTab1.secret)).pull('trees', { deviceId: 'tab-1', limit: 1000 });
    expect(tab1.localIds).toEqual([{ localId: 'tree-7', entityId: mine.entityId }]);
    expect(tab1.versions.map((v) => v.entity.id)).toEqual(expect.arrayContaining([mine.entityId, theirs.entityId]));
    const tab9 = await sync(as(tokens.collectorTrees.secret)).pull('trees', { deviceId: 'tab-9', limit: 1000 });
    expect(tab9.localIds).toEqual([{ localId: 'tree-7', entityId: theirs.entityId }]);
    // No device named: no mappings at all.
    expect((await sync(as(tokens.collectorTab1.secret)).pull('trees')).localIds).toEqual([]);

    // The device's own local id still reaches its own entity.
    const next = { id: randomUUID(), dataset: 'trees', deviceId: 'tab-1', localId: 'tree-7', action: 'UPDATE', baseVersion: 1, data: { note: 'mine' } };
    expect(ok(await submitAs('collectorTab1', [next])).submitChanges.data[0]).toMatchObject({ outcome: 'APPLIED', entityId: mine.entityId, version: 2 });
    expect(await adminEntity(theirs.entityId)).toMatchObject({ version: 1 });
  });

  it('a rejected change never shows an entity of another dataset (by UUID, by a reused change id, by another device’s local id)', async () => {
    const birdsLocal = { id: randomUUID(), dataset: 'birds', deviceId: 'bird-phone', localId: 'b1', action: 'CREATE', label: 'Hidden bird', data: { note: 'secret' } };
    const bird = ok(await asAdmin(SUBMIT, { c: [birdsLocal] })).submitChanges.data[0];
    expect(bird).toMatchObject({ outcome: 'APPLIED' });
    const RESULT_ENTITY = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome error { code } entity { id label data } } } } }`;
    const probes = [
      [{ id: randomUUID(), dataset: 'trees', entityId: fx.birds.entity, action: 'UPDATE', baseVersion: 1, data: { note: 'x' } }, 'ENTITY_NOT_FOUND'],
      [{ id: randomUUID(), dataset: 'trees', entityId: fx.birds.entity, action: 'CREATE', label: 'x' }, 'ENTITY_EXISTS'],
      [{ id: fx.birds.change, dataset: 'trees', entityId: randomUUID(), action: 'CREATE', label: 'x' }, 'CHANGE_ID_REUSED'],
    ] as const;
    for (const [change, code] of probes) {
      const res = await gqlAs('collectorTrees', RESULT_ENTITY, { c: [change] });
      expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
      expect(res.data.submitChanges.data).toEqual([{ outcome: 'REJECTED', error: { code }, entity: null }]);
    }
    // Local ids are scoped by dataset: b1 in trees is an id of its own, not the bird's. Its update
    // waits for its create, as an update of any local id not yet created does.
    const viaLocalId = { id: randomUUID(), dataset: 'trees', deviceId: 'bird-phone', localId: 'b1', action: 'UPDATE', baseVersion: 1, data: { note: 'x' } };
    const RESULT_ENTITY_ID = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome entityId error { code } entity { id } } } } }`;
    const [held] = ok(await gqlAs('collectorTrees', RESULT_ENTITY_ID, { c: [viaLocalId] })).submitChanges.data;
    expect(held).toMatchObject({ outcome: 'HELD', error: null, entity: null });
    expect(held.entityId).not.toBe(bird.entityId);
    expect(await adminEntity(bird.entityId)).toMatchObject({ label: 'Hidden bird', version: 1 });
    // The same field still shows the collector's own entity.
    const own = create('trees', { deviceId: null });
    expect((await gqlAs('collectorTrees', RESULT_ENTITY, { c: [own] })).data.submitChanges.data).toEqual([
      { outcome: 'APPLIED', error: null, entity: { id: own.entityId, label: 'New', data: { note: 'x' } } },
    ]);
  });
});

describe('reading by id: another dataset and an unknown id look the same', () => {
  const unknown = [randomUUID(), 'not-an-id'];
  const BY_ID = {
    entity: `query($id: ID!) { entity(id: $id) { id } }`,
    change: `query($id: String!) { change(id: $id) { id } }`,
    branch: `query($id: ID!) { branch(id: $id) { id } }`,
  };
  it.each(Object.keys(BY_ID) as (keyof typeof BY_ID)[])('%s: a trees reviewer gets FORBIDDEN for birds and for ids that do not exist; an unrestricted one gets null', async (field) => {
    const birdsId = field === 'entity' ? fx.birds.entity : field === 'change' ? fx.birds.change : fx.birds.branch;
    for (const id of [birdsId, ...unknown]) expectForbidden(await gqlAs('reviewerTrees', BY_ID[field], { id }), field);
    for (const id of unknown) expect(ok(await gqlAs('reviewerAll', BY_ID[field], { id }))).toEqual({ [field]: null });
    expect(ok(await gqlAs('reviewerAll', BY_ID[field], { id: birdsId }))).toEqual({ [field]: { id: birdsId } });
  });

  it('resolveConflict: a trees reviewer may in trees, not in birds nor on an unknown id', async () => {
    const MUT = `mutation($id: ID!) { resolveConflict(entityId: $id, version: 3) { __typename ... on MutationResolveConflictSuccess { data { conflict } } } }`;
    const trees = await conflicted('trees');
    const birds = await conflicted('birds');
    expect(ok(await gqlAs('reviewerTrees', MUT, { id: trees })).resolveConflict).toEqual({ __typename: 'MutationResolveConflictSuccess', data: { conflict: null } });
    expectForbidden(await gqlAs('reviewerTrees', MUT, { id: birds }), 'resolveConflict');
    expectForbidden(await gqlAs('reviewerTrees', MUT, { id: randomUUID() }), 'resolveConflict');
    expect(await adminEntity(birds)).toMatchObject({ conflict: 'HARD' });
    expect(await adminEntity(trees)).toMatchObject({ conflict: null });
  });
});

/* ---- Authentication ---- */

describe('authentication (anonymous access off)', () => {
  it('no token: 401 UNAUTHENTICATED with www-authenticate: Bearer, for queries and mutations, and nothing stored', async () => {
    expect401(...(await raw(t.url, {})), 'no-token');
    const c = create('trees');
    expect401(...(await raw(t.url, {}, SUBMIT, { c: [c] })), 'no-token');
    expect401(...(await raw(t.url, {}, 'mutation { createDataset(name: "sneaky", properties: []) { __typename } }')), 'no-token');
    expect(await adminChange(c.id)).toBeNull();
    expect(ok(await asAdmin('{ dataset(name: "sneaky") { name } }')).dataset).toBeNull();
  });

  it('a missing, a malformed, a wrong and a revoked token are each told apart, in words that say what to do', async () => {
    const { secret, token } = await createToken(t.database.db, { name: 'told apart', role: 'collector', datasets: ['trees'] });
    const said = async (headers: Record<string, string>) => {
      const [res, body] = await raw(t.url, headers);
      return [res.status, body.errors?.map((e) => [e.extensions?.code, e.message])];
    };
    const before = await said({ authorization: `Bearer ${secret}x` });
    await t.database.db.execute(sql`update api_tokens set revoked_at = now() where id = ${token.id}`);
    expect([await said({}), await said({ authorization: secret }), before, await said({ authorization: `Bearer ${secret}` })]).toEqual([
      [401, [['UNAUTHENTICATED', 'no API token came with the request: send one as "Authorization: Bearer <token>"']]],
      [401, [['UNAUTHENTICATED', 'the Authorization header is not "Bearer <token>": send the token after the word Bearer and one space']]],
      [401, [['UNAUTHENTICATED', 'the API token is not one this service issued: check that it was copied whole, or ask an administrator for one']]],
      [401, [['UNAUTHENTICATED', 'the API token was revoked: ask an administrator for a new one']]],
    ]);
  });

  it.each(['Basic x', 'Bearer', 'Bearer ', 'Bearer a b', 'Token est_abc', ''])('a malformed Authorization header %j: 401 saying it is not a bearer token', async (header) => {
    expect401(...(await raw(t.url, { authorization: header })), 'malformed');
  });

  it('a wrong token: 401, also one that looks right', async () => {
    const admin = tokens.admin.secret;
    const flipped = admin.slice(0, -1) + (admin.endsWith('A') ? 'B' : 'A');
    for (const secret of ['nope', `est_${randomBytes(32).toString('base64url')}`, flipped, `${admin}x`, `est_${'a'.repeat(300)}`]) {
      expect401(...(await raw(t.url, { authorization: `Bearer ${secret}` })), 'unknown');
    }
    // The real one, any case of the scheme, works.
    expect((await raw(t.url, { authorization: `bearer ${admin}` }))[0].status).toBe(200);
  });

  it('a revoked token: 401 on the very next request', async () => {
    const made = ok(await asAdmin(`mutation { createApiToken(name: "short-lived", role: COLLECTOR, datasets: ["trees"]) { ... on MutationCreateApiTokenSuccess { data { secret token { id } } } } }`))
      .createApiToken.data;
    expect(ok(await t.gqlAs(made.secret, '{ viewer { tokenId role } }')).viewer).toEqual({ tokenId: made.token.id, role: 'COLLECTOR' });
    const revoked = ok(await asAdmin(`mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }`, { id: made.token.id })).revokeApiToken;
    expect(revoked).toEqual({ __typename: 'MutationRevokeApiTokenSuccess' });
    expect401(...(await raw(t.url, { authorization: `Bearer ${made.secret}` })), 'revoked');
    const c = create('trees', { deviceId: null });
    const res = await t.gqlAs(made.secret, SUBMIT, { c: [c] });
    expect(res.status).toBe(401);
    expect(await adminChange(c.id)).toBeNull();
    // Revoking again is no error and keeps the first revocation time.
    const [first, again] = await Promise.all([adminTokens(), asAdmin(`mutation($id: ID!) { revokeApiToken(id: $id) { ... on MutationRevokeApiTokenSuccess { data { revokedAt } } } }`, { id: made.token.id })]);
    expect(ok(again).revokeApiToken.data.revokedAt).toBe(first.find((x) => x.id === made.token.id)!.revokedAt);
  });
});

/* ---- Token management ---- */

describe('API tokens', () => {
  const CREATE = `mutation($n: String!, $r: Role!, $d: String, $ds: [String!]) { createApiToken(name: $n, role: $r, deviceId: $d, datasets: $ds) {
    __typename ... on MutationCreateApiTokenSuccess { data { secret token { id name deviceId } } } ... on DomainError { code message } } }`;
  async function tokenRows(): Promise<Record<string, unknown>[]> {
    const r = (await t.database.db.execute(sql`select * from api_tokens order by created_at, id`)) as unknown;
    return (Array.isArray(r) ? r : (r as { rows: Record<string, unknown>[] }).rows) as Record<string, unknown>[];
  }

  it.each([
    ['an unknown id', () => randomUUID()],
    ['a malformed id', () => 'not-a-uuid'],
  ])('revoking %s is the typed error TOKEN_NOT_FOUND', async (_name, id) => {
    const before = await adminTokens();
    const given = id();
    const r = ok(await asAdmin(`mutation($id: ID!) { revokeApiToken(id: $id) { __typename ... on DomainError { code message } } }`, { id: given })).revokeApiToken;
    expect(r).toEqual({ __typename: 'DomainError', code: 'TOKEN_NOT_FOUND', message: `no API token has the id "${given}"` });
    expect(await adminTokens()).toEqual(before);
  });

  const BAD_NAME = 'a token name has 1 to 200 characters and no NUL';
  const BAD_DEVICE = 'a device id has 1 to 200 characters and no NUL';
  it.each([
    ['an empty name', { n: '' }, 'INVALID_NAME', BAD_NAME],
    ['a blank name', { n: '   ' }, 'INVALID_NAME', BAD_NAME],
    ['a name with NUL', { n: 'tab\u0000let' }, 'INVALID_NAME', BAD_NAME],
    ['a 201-char name', { n: 'n'.repeat(201) }, 'INVALID_NAME', BAD_NAME],
    ['a 201-char deviceId', { d: 'd'.repeat(201) }, 'INVALID_DEVICE_ID', BAD_DEVICE],
    ['an empty deviceId', { d: '' }, 'INVALID_DEVICE_ID', BAD_DEVICE],
    ['a deviceId with NUL', { d: 'tab\u00001' }, 'INVALID_DEVICE_ID', BAD_DEVICE],
    [
      'a malformed dataset name',
      { ds: ['trees', 'bad\u0000name'] },
      'INVALID_NAME',
      'dataset "bad\u0000name": the name is not acceptable: "bad\uFFFDname" must be 1-64 letters, digits or _ and not start with a digit',
    ],
    ['an admin token restricted to datasets', { r: 'ADMIN', ds: ['trees'] }, 'ADMIN_TOKEN_RESTRICTED', ERROR_CODES.ADMIN_TOKEN_RESTRICTED],
    ['an admin token bound to a device', { r: 'ADMIN', d: 'tab-1' }, 'ADMIN_TOKEN_RESTRICTED', ERROR_CODES.ADMIN_TOKEN_RESTRICTED],
  ])('createApiToken with %s: typed error %s, nothing stored', async (_name, vars, code, message) => {
    const before = await tokenRows();
    const r = ok(await asAdmin(CREATE, { n: 'ok name', r: 'COLLECTOR', ...vars })).createApiToken;
    expect(r).toEqual({ __typename: 'DomainError', code, message });
    expect(await tokenRows()).toEqual(before);
  });

  it('roles are upper case; the old lower-case spelling is still accepted as input, deprecated, and answered in upper case', async () => {
    for (const [given, answered] of [
      ['reviewer', 'REVIEWER'],
      ['COLLECTOR', 'COLLECTOR'],
    ]) {
      const r = ok(await asAdmin(`mutation { createApiToken(name: "spelt ${given}", role: ${given}) { ... on MutationCreateApiTokenSuccess { data { secret token { role } } } } }`)).createApiToken;
      expect(r.data.token.role).toBe(answered);
      expect(ok(await t.gqlAs(r.data.secret, '{ viewer { role } }')).viewer.role).toBe(answered);
    }
    const values = ok(await asAdmin('{ __type(name: "Role") { enumValues(includeDeprecated: true) { name isDeprecated deprecationReason } } }')).__type.enumValues;
    expect(values).toEqual([
      { name: 'ADMIN', isDeprecated: false, deprecationReason: null },
      { name: 'COLLECTOR', isDeprecated: false, deprecationReason: null },
      { name: 'REVIEWER', isDeprecated: false, deprecationReason: null },
      ...['ADMIN', 'COLLECTOR', 'REVIEWER'].map((name) => ({
        name: name.toLowerCase(),
        isDeprecated: true,
        deprecationReason: `Use ${name}: roles are spelt in upper case like every enum, and the lower-case spelling goes in the next release.`,
      })),
    ]);
    expect((await asAdmin('mutation { createApiToken(name: "shouting", role: Admin) { __typename } }')).errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('the limits are inclusive: a 200-char name and deviceId are accepted', async () => {
    const r = ok(await asAdmin(CREATE, { n: 'n'.repeat(200), r: 'COLLECTOR', d: 'd'.repeat(200) })).createApiToken;
    expect(r).toMatchObject({ __typename: 'MutationCreateApiTokenSuccess', data: { token: { name: 'n'.repeat(200), deviceId: 'd'.repeat(200) } } });
  });

  it('the secret is shown once: never listed, and the table holds only its SHA-256', async () => {
    const r = ok(await asAdmin(CREATE, { n: 'shown once', r: 'REVIEWER', ds: ['trees'] })).createApiToken;
    expect(r.__typename).toBe('MutationCreateApiTokenSuccess');
    const { secret, token } = r.data as { secret: string; token: { id: string } };
    expect(secret).toMatch(/^est_[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(await adminTokens())).not.toContain(secret);
    // There is no field to ask for it.
    const asked = await asAdmin('{ apiTokens { nodes { secret } } }');
    expect(asked.data ?? null).toBeNull();
    // (GraphQL would suggest the field `subset`, a near spelling: hidden, as every suggestion.)
    expect(asked.errors?.map((e) => [e.extensions?.code, e.message])).toEqual([['GRAPHQL_VALIDATION_FAILED', 'Cannot query field "secret" on type "ApiToken". [Suggestion hidden]']]);

    const rows = await tokenRows();
    expect(JSON.stringify(rows)).not.toContain(secret);
    expect(JSON.stringify(rows)).not.toContain(secret.slice(4));
    const row = rows.find((x) => x.id === token.id)!;
    expect(row).toMatchObject({ name: 'shown once', role: 'reviewer', datasets: ['trees'], device_id: null, revoked_at: null });
    expect(row.secret_hash).toBe(createHash('sha256').update(secret).digest('hex'));
    // Each of the other tokens too: no column of any row holds any secret.
    for (const key of ROLE_KEYS) expect(JSON.stringify(rows)).not.toContain(tokens[key].secret);
    expect(ok(await t.gqlAs(secret, '{ viewer { tokenId role datasets } }')).viewer).toEqual({ tokenId: token.id, role: 'REVIEWER', datasets: ['trees'] });
  });
});

/* ---- Configured anonymous access ---- */

describe('anonymous access configured as collector', () => {
  let anon: TestApp;
  let admin: string;
  beforeAll(async () => {
    anon = await startTestApp({ auth: { anonymousRole: 'collector' }, flushIntervalSeconds: 0 });
    admin = (await createToken(anon.database.db, { name: 'admin', role: 'admin' })).secret;
  });
  afterAll(() => anon.close());

  it('a request without a token acts as an unrestricted collector: it may submit, not create datasets', async () => {
    expect(ok(await anon.gql('{ viewer { tokenId role deviceId datasets } }')).viewer).toEqual({ tokenId: null, role: 'COLLECTOR', deviceId: null, datasets: null });
    const name = `anon_${randomBytes(4).toString('hex')}`;
    expectForbidden(await anon.gql(`mutation { createDataset(name: "${name}", properties: ["a"]) { __typename } }`), 'createDataset');
    expectForbidden(await anon.gql('{ apiTokens { nodes { id } } }'), 'apiTokens');
    expectForbidden(await anon.gql(`{ entities(dataset: "${name}") { nodes { id } } }`), 'entities');
    expect(ok(await anon.gqlAs(admin, `{ dataset(name: "${name}") { name } }`)).dataset).toBeNull();
    // A token still counts as itself.
    expect(ok(await anon.gqlAs(admin, '{ viewer { role } }')).viewer).toEqual({ role: 'ADMIN' });
  });

  it('a wrong or malformed token is still 401', async () => {
    for (const [header, why] of [
      [`Bearer est_${randomBytes(32).toString('base64url')}`, 'unknown'],
      ['Bearer nope', 'unknown'],
      ['Basic x', 'malformed'],
      ['Bearer a b', 'malformed'],
    ] as const) {
      expect401(...(await raw(anon.url, { authorization: header })), why);
    }
  });
});
