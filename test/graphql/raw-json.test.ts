import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GraphQLObjectType } from 'graphql';
import { copiedColumns, RawJson, stringifyResult } from '../../src/graphql/raw-json.js';
import { schema } from '../../src/graphql/schema.js';
import { useApp } from '../helpers/app.js';
import { domain, ok } from '../helpers/domain.js';
import { socketClient } from '../helpers/live.js';
import { pullable } from '../helpers/subset-device.js';

/**
 * A pull whose rows select only stored columns gets its rows' JSON written by the database
 * (src/graphql/raw-json.ts). The answer must be the one the executor gives: here the same
 * selections go both ways (a field the database cannot write, `createdAt`, sends a pull the
 * executor's way) and the answers are compared, keys in order, over random rows and selections.
 *
 * Which way an answer went shows in its text: the database writes a JSON object with a space after
 * each colon (`{"key": 1}`, as jsonb writes a stored `{"n": 1}`), JSON.stringify never puts one
 * outside a string.
 */
const t = useApp({ flushIntervalSeconds: 0, webhooks: { deliver: false } });
const d = domain(t);

/** The EntityVersion fields a stored column answers as it is: the database may write them. */
const COPIED = ['action', 'appliedOn', 'authorViewUnavailable', 'baseVersion', 'changeId', 'changed', 'conflict', 'conflictingProperties', 'data', 'deleted', 'deviceId', 'entityId', 'label', 'resolved', 'source', 'trunkVersion', 'version'];
const WRITTEN_BY_DATABASE = /[^\\]" ?: /;

/** Property values as a device sends them: unicode, quotes, escapes, doubles at their edges, lists, nested objects. */
const text = fc.oneof(fc.string({ maxLength: 10 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.constantFrom('"', '\\', '\\"', '": ', '\n\t\b', '🌳', '\u007f\u2028'));
const number = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -0, 1.5, 1e21, 5e-324, Number.MAX_SAFE_INTEGER + 2, -1e308));
const value = fc.oneof(text, number, fc.boolean(), fc.constant(null), fc.array(fc.oneof(text, number), { maxLength: 3 }), fc.dictionary(fc.constantFrom('x', 'y', 'ü'), fc.oneof(text, number), { maxKeys: 2 }));
const state = fc.record({ n: value, note: value, tags: value }, { requiredKeys: ['n'] });

/** A selection of EntityVersion fields: in any order, some aliased, `__typename` maybe, maybe through a fragment. */
const selection = fc.record({
  fields: fc.uniqueArray(fc.constantFrom(...COPIED, '__typename'), { minLength: 1, maxLength: 8 }),
  aliases: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
  fragment: fc.boolean(),
  limit: fc.integer({ min: 1, max: 7 }),
});

function pullQuery(rows: string, fragment: boolean): string {
  const body = fragment ? '...Row' : rows;
  return `query($ds: String!, $c: String, $l: Int) { changesSince(dataset: $ds, cursor: $c, limit: $l) {
    __typename ... on QueryChangesSinceSuccess { data { cursor hasMore left versions { ${body} } entered { ${body} } } } ... on DomainError { code message } } }
    ${fragment ? `fragment Row on EntityVersion { ${rows} }` : ''}`;
}

/** The answer's text as it came over HTTP. */
async function rawPull(token: string | null, query: string, variables: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  expect(res.status).toBe(200);
  return res.text();
}

interface Page {
  cursor: string;
  hasMore: boolean;
  left: string[];
  versions: Record<string, unknown>[];
  entered: Record<string, unknown>[];
}

/** Every page of `ds` from the start, with their texts. */
async function pullAll(token: string | null, query: string, ds: string, limit: number): Promise<{ pages: Page[]; texts: string[] }> {
  const pages: Page[] = [];
  const texts: string[] = [];
  for (let cursor: string | null = null; ; ) {
    const body = await rawPull(token, query, { ds, c: cursor, l: limit });
    const answer = JSON.parse(body) as { data: { changesSince: { __typename: string; data: Page } } };
    expect(answer.data.changesSince.__typename, body).toBe('QueryChangesSinceSuccess');
    texts.push(body);
    pages.push(answer.data.changesSince.data);
    cursor = answer.data.changesSince.data.cursor;
    if (!answer.data.changesSince.data.hasMore) return { pages, texts };
  }
}

/** The same pull the executor's way: `createdAt` added last, then taken out of each row. */
async function pullByExecutor(token: string | null, rows: string, fragment: boolean, ds: string, limit: number): Promise<Page[]> {
  const { pages, texts } = await pullAll(token, pullQuery(`${rows} zzCreatedAt: createdAt`, fragment), ds, limit);
  for (const body of texts) expect(body).not.toMatch(WRITTEN_BY_DATABASE);
  for (const page of pages) for (const row of [...page.versions, ...page.entered]) delete row.zzCreatedAt;
  return pages;
}

/** The rows' fields as a client writes them: `fields` in order, each aliased or not. */
const rowsOf = (s: { fields: string[]; aliases: boolean[] }) => s.fields.map((f, i) => (s.aliases[i] && f !== '__typename' ? `a${i}_${f}: ${f}` : f)).join(' ');

/** A dataset holding versions of every kind: creates, updates, SOFT and HARD conflicts, an offline run, a resolved conflict, a delete. */
async function datasetOf(states: Record<string, unknown>[]): Promise<string> {
  const ds = await d.createDataset(['n', 'note', 'tags']);
  const ids: string[] = [];
  for (const [i, s] of states.entries()) ids.push(await d.create(ds, `Row ${i} "quoted" \\ ünï`, s));
  const [first, second] = ids;
  if (first) {
    await d.update(ds, first, 1, { note: states[1]?.n ?? 'x' });
    // On a stale base: HARD (the same property) and SOFT (another one).
    await d.update(ds, first, 1, { note: 'other' }, { deviceId: 'tablet-7' });
    await d.update(ds, first, 1, { tags: ['t'] });
  }
  if (second) {
    const branchId = randomUUID();
    await d.one({ dataset: ds, entityId: second, action: 'UPDATE', baseVersion: 1, trunkVersion: 1, branchId, deviceId: 'tablet-9', data: { n: 'offline' } });
    await d.remove(ds, second, 2);
  }
  return ds;
}

describe('a pull written by the database answers as the executor does', () => {
  it('random rows and selections, in pages of every size, keys in order (HTTP)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(state, { minLength: 1, maxLength: 4 }), selection, async (states, s) => {
        const ds = await datasetOf(states);
        await pullable(t.database.db);
        const rows = rowsOf(s);
        const fast = await pullAll(null, pullQuery(rows, s.fragment), ds, s.limit);
        for (const body of fast.texts) if (JSON.parse(body).data.changesSince.data.versions.length > 0) expect(body).toMatch(WRITTEN_BY_DATABASE);
        const general = await pullByExecutor(null, rows, s.fragment, ds, s.limit);
        // Cursors: the same positions either way.
        expect(JSON.stringify(fast.pages)).toBe(JSON.stringify(general));
      }),
      { numRuns: 12 },
    );
  });

  it('a device with a subset: its entered entities and versions, written by the database, as the executor writes them', async () => {
    const ds = await d.createDataset(['district', 'n']);
    for (let i = 0; i < 6; i++) await d.create(ds, `House ${i}`, { district: i % 2 === 0 ? 'd1' : 'd2', n: i + 0.25 });
    const made = ok(
      await t.gql(
        `mutation($ds: [String!]) { createApiToken(name: "tablet", role: COLLECTOR, deviceId: "tab-1", datasets: $ds, subset: [{ property: "district", values: ["d1"] }]) {
          __typename ... on MutationCreateApiTokenSuccess { data { secret } } } }`,
        { ds: [ds] },
      ),
    ).createApiToken;
    const moved = await d.create(ds, 'House 6', { district: 'd2', n: 6 });
    await d.update(ds, moved, 1, { district: 'd1' });
    await pullable(t.database.db);
    const rows = 'entityId version label data deleted changeId conflict conflictingProperties';
    const fast = await pullAll(made.data.secret, pullQuery(rows, false), ds, 2);
    const general = await pullByExecutor(made.data.secret, rows, false, ds, 2);
    expect(JSON.stringify(fast.pages)).toBe(JSON.stringify(general));
    const entered = fast.pages.flatMap((p) => p.entered);
    const byLabel = entered.sort((x, y) => String(x.label).localeCompare(String(y.label)));
    expect(byLabel.map((r) => [r.label, r.data])).toEqual([
      ['House 0', { district: 'd1', n: 0.25 }],
      ['House 2', { district: 'd1', n: 2.25 }],
      ['House 4', { district: 'd1', n: 4.25 }],
    ]);
    expect(fast.pages.flatMap((p) => p.versions).map((r) => [r.label, r.version])).toEqual([['House 6', 2]]);
    expect(fast.texts.some((b) => WRITTEN_BY_DATABASE.test(b))).toBe(true);
  });

  it('two pulls in one query (aliases) each get their own rows; an unknown dataset is still a DomainError', async () => {
    const a = await datasetOf([{ n: 'a' }]);
    const b = await datasetOf([{ n: 'b' }, { n: 'b2' }]);
    await pullable(t.database.db);
    const pull = (alias: string, v: string) => `${alias}: changesSince(dataset: ${v}, limit: 100) { __typename ... on QueryChangesSinceSuccess { data { versions { label data } } } ... on DomainError { code } }`;
    const body = await rawPull(null, `query($a: String!, $b: String!) { ${pull('one', '$a')} ${pull('two', '$b')} ${pull('none', '"nowhere_9"')} }`, { a, b });
    expect(body).toMatch(WRITTEN_BY_DATABASE);
    const answer = JSON.parse(body).data;
    expect(answer.one.data.versions.map((r: { label: string }) => r.label)).toEqual(['Row 0 "quoted" \\ ünï', 'Row 0 "quoted" \\ ünï', 'Row 0 "quoted" \\ ünï', 'Row 0 "quoted" \\ ünï']);
    expect(answer.two.data.versions.map((r: { data: unknown }) => r.data)).toEqual([
      { n: 'b' },
      { n: 'b2' },
      { n: 'b', note: 'b2' },
      { n: 'b', note: 'other' },
      { n: 'b', note: 'other', tags: ['t'] },
      { n: 'offline' },
      { n: 'offline' },
    ]);
    expect(answer.none).toEqual({ __typename: 'DomainError', code: 'UNKNOWN_DATASET' });
  });

  it.each([
    ['a directive', 'label data @include(if: true)', 'label data @include(if: true)'],
    ['versions and entered selecting differently', 'label data', 'data label'],
    ['a field with its own resolver (the run id is shown by role)', 'label data branchId', 'label data branchId'],
    ['a relation', 'label data entity { id }', 'label data entity { id }'],
  ])('%s: the executor writes the rows', async (_what, versions, entered) => {
    const ds = await datasetOf([{ n: 'e' }]);
    await pullable(t.database.db);
    const query = `query($ds: String!) { changesSince(dataset: $ds, limit: 100) { ... on QueryChangesSinceSuccess { data { versions { ${versions} } entered { ${entered} } } } } }`;
    const body = await rawPull(null, query, { ds });
    expect(body).not.toMatch(WRITTEN_BY_DATABASE);
    const rows = JSON.parse(body).data.changesSince.data.versions as { label: string; data: unknown }[];
    expect(rows.map((r) => r.data)).toEqual([{ n: 'e' }, { n: 'e', note: 'x' }, { n: 'e', note: 'other' }, { n: 'e', note: 'other', tags: ['t'] }]);
  });

  it('a second pull field merged in by @include(if: $v): its fields are written too, whichever request came first', async () => {
    const ds = await datasetOf([{ n: 'i' }]);
    await pullable(t.database.db);
    const query = `query($ds: String!, $full: Boolean!) {
      changesSince(dataset: $ds, limit: 100) { ... on QueryChangesSinceSuccess { data { versions { label } entered { label } } } }
      changesSince(dataset: $ds, limit: 100) @include(if: $full) { ... on QueryChangesSinceSuccess { data { versions { version } entered { version } } } } }`;
    const rowsOf = async (full: boolean) => JSON.parse(await rawPull(null, query, { ds, full })).data.changesSince.data.versions as unknown[];
    expect(await rowsOf(false)).toEqual([{ label: 'Row 0 "quoted" \\ ünï' }, { label: 'Row 0 "quoted" \\ ünï' }, { label: 'Row 0 "quoted" \\ ünï' }, { label: 'Row 0 "quoted" \\ ünï' }]);
    expect(await rowsOf(true)).toEqual([1, 2, 3, 4].map((version) => ({ label: 'Row 0 "quoted" \\ ünï', version })));
    expect(await rowsOf(false)).toHaveLength(4);
  });

  it('an alias longer than a Postgres identifier (63 bytes) comes back whole', async () => {
    const ds = await datasetOf([{ n: 'long' }]);
    await pullable(t.database.db);
    const alias = `a${'x'.repeat(70)}`;
    const twin = `a${'x'.repeat(70)}y`;
    const body = await rawPull(null, `query($ds: String!) { changesSince(dataset: $ds, limit: 1) { ... on QueryChangesSinceSuccess { data { versions { ${alias}: label ${twin}: version } } } } }`, { ds });
    expect(body).toMatch(WRITTEN_BY_DATABASE);
    expect(JSON.parse(body).data.changesSince.data.versions).toEqual([{ [alias]: 'Row 0 "quoted" \\ ünï', [twin]: 1 }]);
  });

  it('over graphql-ws the same pull answers the same rows (the socket encodes the result itself)', async () => {
    const ds = await datasetOf([{ n: 1.5, note: 'ü "q"' }, { n: [1, 'two'] }]);
    await pullable(t.database.db);
    const query = pullQuery('entityId version label data conflict conflictingProperties __typename', false);
    const overHttp = await pullAll(null, query, ds, 100);
    expect(overHttp.texts[0]).toMatch(WRITTEN_BY_DATABASE);
    const socket = socketClient(t.url);
    try {
      const answer = await socket.request<{ changesSince: unknown }>(query, { ds, l: 100 });
      expect(answer.errors).toBeUndefined();
      expect(JSON.stringify(answer.data!.changesSince)).toBe(JSON.stringify(JSON.parse(overHttp.texts[0]!).data.changesSince));
    } finally {
      await socket.close();
    }
  });
});

describe('which fields the database may write', () => {
  it('exactly the fields the random test above covers: a field added to EntityVersion that qualifies must join COPIED there', () => {
    // A new plain expose qualifies by its GraphQL type alone; whether the column's JSON is the
    // field's answer (an ID from a bigint column would not be: GraphQL sends it as a string) is
    // what the random test checks, so it must cover it.
    expect([...copiedColumns(schema.getType('EntityVersion') as GraphQLObjectType).keys()].sort()).toEqual([...COPIED].sort());
  });
});

describe('stringifyResult', () => {
  it('writes any JSON value as JSON.stringify does', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(stringifyResult(v)).toBe(JSON.stringify(v));
      }),
      { numRuns: 500 },
    );
  });

  it('skips undefined members and functions as JSON.stringify does; undefined in a list is null; toJSON is honoured', () => {
    const v = { a: undefined, b: [undefined, () => 1, 2], c: () => 3, d: new Date(0), e: { toJSON: () => 'x' } };
    expect(stringifyResult(v)).toBe(JSON.stringify(v));
    expect(stringifyResult(v)).toBe('{"b":[null,null,2],"d":"1970-01-01T00:00:00.000Z","e":"x"}');
  });

  it('writes a RawJson list as its rows, as they are; elsewhere it is the parsed list', () => {
    const raw = new RawJson(['{"a": 1}', '{"b":"x"}']);
    expect(stringifyResult({ data: { rows: raw, n: 1 } })).toBe('{"data":{"rows":[{"a": 1},{"b":"x"}],"n":1}}');
    expect(stringifyResult({ rows: new RawJson([]) })).toBe('{"rows":[]}');
    expect(JSON.stringify({ rows: raw })).toBe('{"rows":[{"a":1},{"b":"x"}]}');
  });
});
