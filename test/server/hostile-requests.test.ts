import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, useApp, type GqlResponse, type TestApp } from '../helpers/app.js';
import { domain, ok, postRaw, uniqueName, type ChangeInput, type Domain } from '../helpers/domain.js';
import { socketClient, spawnService, waitUntil, type Service, type SocketClient } from '../helpers/live.js';
import { DEFAULT_LIMITS } from '../../src/core/types.js';
import { CHANGES_SINCE, SUBMIT_CHANGES } from '../../packages/client/src/documents.js';

/**
 * Hostile requests (issue 7, "Hostile input"), table-driven over real HTTP and the socket: each
 * is refused with a status and an `extensions.code` that names the limit, and nothing of it is
 * stored. What the database cannot store as sent (lone surrogates in values, NUL lookups,
 * 1e400) is test/graphql/hostile-input.test.ts; one case per rejection code (201 properties,
 * 64 KiB + 1, 501 changes) is test/graphql/rejections.test.ts. Here: the document limits of
 * src/server/hardening.ts, the transport, and the same rejections at hostile sizes.
 */

const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
// Named now, so the changes of the tables below are complete changes of a real dataset.
const ds = uniqueName();
let ws: SocketClient;
let connects = 0;
beforeAll(async () => {
  await d.createDataset(['height', 'species'], ds);
  await d.create(ds, 'Anchor', { height: 1 });
  ws = socketClient(t.url);
  ws.client.on('connected', () => (connects += 1));
});
afterAll(async () => {
  await ws?.close();
});

/** Everything stored for the test dataset: entities with their versions, and the backlog. */
async function stored() {
  return ok(
    await t.gql(
      `query($ds: String!) { entities(dataset: $ds, includeDeleted: true) { nodes { id label data version versions { version changeId } } } heldChanges(dataset: $ds, first: 500) { nodes { changeId } } }`,
      { ds },
    ),
  );
}

const codes = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => (res.errors ?? []).map((e) => e.extensions?.code);

type NewChange = ChangeInput & { id: string; entityId: string };
/** A change that would be stored if its request ran. */
const newChange = (extra: Record<string, unknown> = {}): NewChange => ({ id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'Planted', data: { height: 1 }, ...extra });

/** A one-change mutation whose result selection carries `selection`. */
const mutationSelecting = (selection: string) => `mutation($c: ChangeInput!) { submitChange(change: $c) { outcome ${selection} } }`;

/** `levels` of entity → versions → entity … (each pair two levels), ending in `leaf`. */
function nested(levels: number, leaf = 'label'): string {
  let s = leaf;
  // One version per level: deep, but cheap (the complexity limit is tested on its own).
  for (let i = 0; i < levels; i++) s = i % 2 === 0 ? `versions(limit: 1) { ${s} }` : `entity { ${s} }`;
  return s;
}

async function post(body: string, headers: Record<string, string> = {}): Promise<GqlResponse> {
  const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { ...(JSON.parse(text) as object), status: res.status };
}

interface Hostile {
  name: string;
  /** The body: a document and its variables, or raw text. */
  body: { query: unknown; variables?: Record<string, unknown> } | string;
  status: number;
  /** The code of the first error; every other error must carry a code too. */
  code: string;
  message: RegExp;
  /** The change the request carried; `valid`: it applies once sent plainly (so its refusal stored nothing). */
  change: NewChange;
  valid: boolean;
}

function hostile(name: string, query: string, c: NewChange, code: string, message: RegExp, status = 200): Hostile {
  return { name, body: { query, variables: { c } }, status, code, message, change: c, valid: true };
}

// Every document below is a mutation that would store its change if it ran.
const deep = newChange();
const aliasFlood = newChange();
const aliases = newChange();
const tokens = newChange();
const cost = newChange();
const directives = newChange();
const unknownField = newChange();
const notString = newChange();
const truncated = newChange();
const wrongTypes = newChange();
const syntax = newChange();
const REQUESTS: Hostile[] = [
  hostile('a deeply nested selection (depth 14)', mutationSelecting(nested(12)), deep, 'QUERY_TOO_DEEP', /^query depth limit of 10 exceeded \(found 14\)$/),
  // 1,000 aliases are over 2,000 tokens: the parser stops them before any rule counts aliases.
  hostile(
    'an alias flood of 1,000 aliases',
    mutationSelecting(Array.from({ length: 1000 }, (_, i) => `a${i}: outcome`).join(' ')),
    aliasFlood,
    'TOO_MANY_TOKENS',
    /tokens limit of 2000 exceeded/,
  ),
  hostile('100 aliases', mutationSelecting(Array.from({ length: 100 }, (_, i) => `a${i}: version`).join(' ')), aliases, 'TOO_MANY_ALIASES', /aliases limit of 20 exceeded \(found 100\)/),
  hostile('a token flood (5,000 repeated fields)', mutationSelecting('version '.repeat(5000)), tokens, 'TOO_MANY_TOKENS', /tokens limit of 2000 exceeded/),
  // Shallow and short, but a history under a history: 10 × 1,000 × 1,000 fields estimated.
  hostile(
    'a costly selection (a history nested under a history)',
    mutationSelecting('entity { versions(limit: 1000) { entity { versions(limit: 1000) { version } } } }'),
    cost,
    'QUERY_TOO_COMPLEX',
    /^query cost limit of 100000 exceeded \(found \d+\)$/,
  ),
  hostile(
    'too many directives (30)',
    mutationSelecting(Array.from({ length: 30 }, () => '... @include(if: true) { version }').join(' ')),
    directives,
    'TOO_MANY_DIRECTIVES',
    /directives limit of 10 exceeded \(found 30\)/,
  ),
  hostile('an unknown field', mutationSelecting('outcom'), unknownField, 'GRAPHQL_VALIDATION_FAILED', /^Cannot query field "outcom" on type "ChangeResult"\. \[Suggestion hidden\]$/),
  hostile('a syntax error', mutationSelecting('version {'), syntax, 'GRAPHQL_PARSE_FAILED', /^Syntax Error: Expected Name, found "}"\.$/),
  {
    ...hostile('variables of the wrong type', mutationSelecting(''), newChange({ ...wrongTypes, baseVersion: 'one', action: 'PLANT' }), 'BAD_USER_INPUT', /^Variable "\$c" got invalid value/, 400),
    valid: false,
  },
  { ...hostile('a query that is not a string', '', notString, 'BAD_REQUEST', /"query" param to be a string/, 400), body: { query: { mutation: 'submitChange' }, variables: { c: notString } } },
  {
    ...hostile('a malformed JSON body (cut short)', '', truncated, 'BAD_REQUEST', /invalid JSON/, 400),
    body: JSON.stringify({ query: mutationSelecting(''), variables: { c: truncated } }).slice(0, -3),
  },
];

describe('hostile requests are refused with a status and a code, and store nothing', () => {
  it.each(REQUESTS.map((r) => [r.name, r] as const))('%s', async (_name, r) => {
    const before = await stored();
    const res = await post(typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
    expect(res.status).toBe(r.status);
    expect(res.data ?? null).toBeNull();
    expect(res.errors?.length, JSON.stringify(res.errors)).toBeGreaterThan(0);
    expect(res.errors![0]!.extensions?.code).toBe(r.code);
    expect(res.errors![0]!.message).toMatch(r.message);
    for (const e of res.errors!) expect(typeof e.extensions?.code, e.message).toBe('string');
    // Nothing ran: no change recorded, no entity, no version, nothing held.
    expect(await d.change(r.change.id)).toBeNull();
    expect(await stored()).toEqual(before);
    // What was refused was the request, not the change: sent plainly it applies, as new.
    if (r.valid) expect(await d.one(r.change)).toMatchObject({ changeId: r.change.id, outcome: 'APPLIED', version: 1 });
  });

  it('each limit is a limit: a document at it answers, one past it is refused', async () => {
    const entity = await d.create(ds, 'Boundary');
    const aliased = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: datasets { name }`).join(' ')} }`;
    const directed = (n: number) => `{ datasets { ${Array.from({ length: n }, () => '... @include(if: true) { name }').join(' ')} } }`;
    const cases = [
      // depth 10: entities > nodes > versions > entity … > label; depth 11: entity > versions > … > label
      [`query($ds: String!) { entities(dataset: $ds) { nodes { ${nested(7)} } } }`, `query($id: ID!) { entity(id: $id) { ${nested(9)} } }`, 'QUERY_TOO_DEEP'],
      [aliased(20), aliased(21), 'TOO_MANY_ALIASES'],
      [directed(10), directed(11), 'TOO_MANY_DIRECTIVES'],
    ] as const;
    for (const [at, past, code] of cases) {
      expect(ok(await t.gql(at, at.includes('$ds') ? { ds } : {})), at.slice(0, 40)).toBeTruthy();
      const refused = await t.gql(past, past.includes('$id') ? { id: entity } : {});
      expect(codes(refused), past.slice(0, 40)).toEqual([code]);
      const limit = refused.errors![0]!.extensions?.limit as { max: number; found: number };
      expect(limit.found).toBe(limit.max + 1);
    }
  });

  it('a history nested under a page is refused before it runs (QUERY_TOO_COMPLEX), page sizes in variables included', async () => {
    const cubic = `query($ds: String!, $n: Int) { changesSince(dataset: $ds, limit: $n) { __typename ... on QueryChangesSinceSuccess { data { versions { entity { versions { entity { versions { version } } } } } } } } }`;
    const refused = await t.gql(cubic, { ds, n: 1000 });
    expect(codes(refused)).toEqual(['QUERY_TOO_COMPLEX']);
    const limit = refused.errors![0]!.extensions?.limit as { max: number; found: number };
    expect(limit.max).toBe(DEFAULT_LIMITS.maxQueryComplexity);
    expect(limit.found).toBeGreaterThan(limit.max);
    expect(refused.data ?? null).toBeNull();
    // The same shape over a small page and short histories is fine.
    const small = cubic.replaceAll('entity { versions {', 'entity { versions(limit: 2) {');
    expect(ok(await t.gql(small, { ds, n: 5 })).changesSince.__typename).toBe('QueryChangesSinceSuccess');
  });

  it("our own clients' documents pass: the client library's SubmitChanges and ChangesSince, a literal full page", async () => {
    const c = newChange();
    const submitted = ok(await t.gql(SUBMIT_CHANGES, { changes: [c] })).submitChanges;
    expect(submitted.data).toEqual([expect.objectContaining({ changeId: c.id, outcome: 'APPLIED', released: [] })]);
    const pulled = ok(await t.gql(CHANGES_SINCE, { dataset: ds, limit: 500 })).changesSince;
    expect(pulled.__typename).toBe('QueryChangesSinceSuccess');
    // A full page of entities, each with the start of its history: 500 × (2 + 10 × 10) fields.
    const page = `query($ds: String!) { entities(dataset: $ds, first: 500) { nodes { id versions(limit: 10) { version label data changed action conflict source changeId deleted resolved } } } }`;
    expect(ok(await t.gql(page, { ds })).entities.nodes).toContainEqual(expect.objectContaining({ id: c.entityId }));
  });

  it('an unknown field names no field of the schema (suggestions hidden)', async () => {
    const res = await post(JSON.stringify({ query: '{ datasetz { name } entitie(id: "x") { id } }' }));
    expect(codes(res)).toEqual(['GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_VALIDATION_FAILED']);
    const text = JSON.stringify(res.errors);
    expect(text).not.toMatch(/Did you mean/);
    expect(text).not.toMatch(/"datasets"|"dataset"|"entity"|"entities"/);
  });

  it('a pagination of 10,000 nested under each entity is refused by its cost, before it runs', async () => {
    const res = await post(JSON.stringify({ query: `query($ds: String!) { entities(dataset: $ds, first: 10000) { nodes { versions { entity { versions { label data } } } } } }`, variables: { ds } }));
    expect(res.status).toBe(200);
    expect(res.data ?? null).toBeNull();
    expect(codes(res)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(res.errors![0]!.extensions).toMatchObject({ limit: { name: 'maxCost', max: DEFAULT_LIMITS.maxQueryComplexity } });
  });

  it('the same document limits hold in the spec media type, with a 400', async () => {
    const res = await post(JSON.stringify({ query: mutationSelecting(nested(30)), variables: { c: newChange() } }), { accept: 'application/graphql-response+json' });
    expect(res.status).toBe(400);
    expect(codes(res)).toContain('QUERY_TOO_DEEP');
  });

  it('a body over the limit that carries a valid batch: 413 TOO_LARGE, none of the batch stored', async () => {
    const batch = Array.from({ length: 3 }, () => newChange());
    const body = JSON.stringify({
      query: 'mutation($cs: [ChangeInput!]!, $pad: String) { submitChanges(changes: $cs) { __typename } }',
      variables: { cs: batch, pad: 'x'.repeat(500 * 64 * 1024) },
    });
    const before = await stored();
    const res = await post(body);
    expect(res.status).toBe(413);
    expect(codes(res)).toEqual(['TOO_LARGE']);
    expect(res.errors![0]!.message).toMatch(/exceeds \d+/);
    for (const c of batch) expect(await d.change(c.id)).toBeNull();
    expect(await stored()).toEqual(before);
  });

  it('a 10,000-change batch: BATCH_TOO_LARGE naming the limit, not one change of it recorded', async () => {
    const batch = Array.from({ length: 10_000 }, () => newChange());
    const before = await stored();
    const res = await t.gql(`mutation($cs: [ChangeInput!]!) { submitChanges(changes: $cs) { __typename ... on DomainError { code message } } }`, { cs: batch });
    expect(ok(res).submitChanges).toEqual({ __typename: 'DomainError', code: 'BATCH_TOO_LARGE', message: expect.stringMatching(/500/) });
    for (const c of [batch[0]!, batch[4999]!, batch[9999]!]) expect(await d.change(c.id)).toBeNull();
    expect(await stored()).toEqual(before);
  });
});

/* ---- What a change carries: names, labels, sizes. Each change is its own transaction, so a
   batch keeps its good changes and records the bad one as REJECTED without any entity. (Labels
   with a NUL or a lone surrogate: rejections.test.ts and hostile-input.test.ts.) ---- */

const RESULT = 'changeId outcome entityId version error { code message }';
const SUBMIT = `mutation($cs: [ChangeInput!]!) { submitChanges(changes: $cs) { __typename ... on MutationSubmitChangesSuccess { data { ${RESULT} } } ... on DomainError { code message } } }`;
const huge = 'x'.repeat(100_000);

interface BadChange {
  name: string;
  change: Record<string, unknown>;
  code: string;
  /** JSON spliced into the body verbatim as the change's `data` (for what JSON.stringify cannot write). */
  rawData?: string;
}

const BAD_CHANGES: BadChange[] = [
  { name: 'a property name with a NUL byte', change: { data: { 'hei\u0000ght': 2 } }, code: 'UNKNOWN_PROPERTY' },
  { name: 'a property name with a lone surrogate', change: {}, rawData: '{"height\\ud800":2}', code: 'UNKNOWN_PROPERTY' },
  { name: 'a property name of 100,000 characters', change: { data: { [huge]: 2 } }, code: 'TOO_LARGE' },
  { name: 'a property name in another script', change: { data: { 'höhe': 2, '高さ': 3 } }, code: 'UNKNOWN_PROPERTY' },
  { name: 'a label of 100,000 characters', change: { label: huge }, code: 'TOO_LARGE' },
  { name: '10,000 properties', change: { data: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`p${i}`, i])) }, code: 'TOO_LARGE' },
  { name: 'a value of 1 MB', change: { data: { species: 'x'.repeat(1 << 20) } }, code: 'TOO_LARGE' },
];

describe('hostile names, labels and sizes in a change: REJECTED with a code, no entity, the rest of the batch applies', () => {
  it.each(BAD_CHANGES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const bad = newChange(c.change);
    const good = newChange({ label: 'Beside it' });
    const body = JSON.stringify({ query: SUBMIT, variables: { cs: [good, bad] } });
    const res = c.rawData === undefined ? await post(body) : await postRaw(t, body.replace('"data":{"height":1}}]', `"data":${c.rawData}}]`));
    const [g, b] = ok(res).submitChanges.data;
    expect(g).toMatchObject({ changeId: good.id, outcome: 'APPLIED', version: 1 });
    expect(b).toMatchObject({ changeId: bad.id, outcome: 'REJECTED', version: null, error: { code: c.code } });
    expect(b.error.message.length).toBeGreaterThan(0);
    expect(b.error.message.length).toBeLessThan(1000); // the message does not echo a 100 kB name back
    expect(await d.change(bad.id)).toMatchObject({ outcome: 'REJECTED', errorCode: c.code, version: null });
    expect(await d.entity(bad.entityId)).toBeNull();
  });

  it('unicode that is well formed is kept exactly: emoji, combining marks, right-to-left, CJK', async () => {
    const label = 'Chêne 🌳 e\u0301 שלום 樫の木 \u{1F469}\u200D\u{1F52C}';
    const c = newChange({ label, data: { species: 'Quercus 🌳 ρομπούρ', height: 3 } });
    expect((await d.one(c)).outcome).toBe('APPLIED');
    expect(await d.entity(c.entityId)).toMatchObject({ label, data: { species: 'Quercus 🌳 ρομπούρ', height: 3 }, version: 1 });
  });

  it('dataset property names with a NUL, a lone surrogate, another script or 10,000 characters: INVALID_NAME, no dataset', async () => {
    const create = `mutation($n: String!, $p: [String!]!) { createDataset(name: $n, properties: $p) { __typename ... on DomainError { code message } } }`;
    for (const property of ['spe\u0000cies', 'species\ud800', 'höhe', 'p'.repeat(10_000)]) {
      const name = uniqueName();
      const r = ok(await t.gql(create, { n: name, p: ['height', property] })).createDataset;
      expect(r, JSON.stringify(property.slice(0, 20))).toMatchObject({ __typename: 'DomainError', code: 'INVALID_NAME' });
      expect(ok(await t.gql(`query($n: String!) { dataset(name: $n) { name } }`, { n: name })).dataset).toBeNull();
    }
  });
});

/* ---- The socket runs the same envelop: the same refusals, and it stays open. ---- */

interface SocketAnswer {
  data?: any;
  errors?: readonly { message: string }[];
  /** A refusal: graphql-ws sends an `error` message, a list of GraphQL errors. */
  refused?: { message: string; extensions?: Record<string, unknown> }[];
}

/** A request over the socket, its answer or its refusal. */
async function overSocket(query: string, variables: Record<string, unknown> = {}, client: SocketClient = ws): Promise<SocketAnswer> {
  try {
    return await client.request(query, variables);
  } catch (e) {
    if (!Array.isArray(e)) throw new Error(`the socket failed instead of refusing: ${String((e as { code?: number }).code ?? e)} ${String((e as { reason?: string }).reason ?? '')}`);
    return { refused: e };
  }
}

describe('over the WebSocket', () => {
  it('a deep query and an alias flood are refused with the same codes; the socket stays open and answers', async () => {
    const before = await stored();
    const deepChange = newChange();
    const deepR = await overSocket(mutationSelecting(nested(12)), { c: deepChange });
    expect(deepR.refused).toEqual([expect.objectContaining({ message: 'query depth limit of 10 exceeded (found 14)', extensions: expect.objectContaining({ code: 'QUERY_TOO_DEEP' }) })]);

    const aliasChange = newChange();
    const aliasR = await overSocket(mutationSelecting(Array.from({ length: 100 }, (_, i) => `a${i}: version`).join(' ')), { c: aliasChange });
    expect(aliasR.refused?.map((e) => e.extensions?.code)).toEqual(['TOO_MANY_ALIASES']);

    // The cost is estimated when the operation executes: an error result, before any resolver ran.
    const costR = await overSocket(`{ entities(dataset: "${ds}", first: 500) { nodes { versions(limit: 1000) { entity { versions(limit: 1000) { version } } } } } }`);
    expect('refused' in costR).toBe(false);
    const costAnswer = costR as { data?: unknown; errors?: readonly { extensions?: Record<string, unknown> }[] };
    expect(costAnswer.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(costAnswer.data ?? null).toBeNull();

    for (const c of [deepChange, aliasChange]) expect(await d.change(c.id)).toBeNull();
    expect(await stored()).toEqual(before);
    // The same socket, never reconnected, still serves queries and mutations.
    expect((await overSocket('{ datasets { name } }')).data?.datasets).toContainEqual({ name: ds });
    const fine = newChange();
    expect((await overSocket(mutationSelecting('version'), { c: fine })).data?.submitChange).toEqual({ outcome: 'APPLIED', version: 1 });
    expect(connects).toBe(1);
  });

  it('what the parser refuses (a token flood, a syntax error) is refused with its code and the socket stays open', async () => {
    // Its own socket: a failure here must not take the others' socket down with it.
    const own = socketClient(t.url);
    const closes: number[] = [];
    own.client.on('closed', (e) => closes.push((e as { code: number }).code));
    try {
      for (const [query, code] of [
        [mutationSelecting('version '.repeat(5000)), 'TOO_MANY_TOKENS'],
        [mutationSelecting('version {'), 'GRAPHQL_PARSE_FAILED'],
      ] as const) {
        const c = newChange();
        const r = await overSocket(query, { c }, own);
        expect(r.refused?.map((e) => e.extensions?.code)).toEqual([code]);
        expect(closes).toEqual([]);
        expect(await d.change(c.id)).toBeNull();
      }
      expect((await overSocket('{ datasets { name } }', {}, own)).data?.datasets).toContainEqual({ name: ds });
      expect(closes).toEqual([]);
    } finally {
      await own.close();
    }
  });
});

/* ---- Introspection and GraphiQL, as configured through the environment of src/main.ts. ---- */

describe('introspection and GraphiQL switched off (INTROSPECTION=false, GRAPHIQL=false)', () => {
  let service: Service;
  beforeAll(async () => {
    service = await spawnService({ DATABASE_URL: t.databaseUrl ?? '', DATA_DIR: 'memory://', INTROSPECTION: 'false', GRAPHIQL: 'false', ANONYMOUS_ROLE: 'admin', LOG_LEVEL: 'warn' });
  });
  afterAll(async () => {
    await service?.stop();
  });

  const INTROSPECT = ['{ __schema { queryType { name } } }', '{ __type(name: "Entity") { fields { name } } }'];

  it('by default (the test app) introspection answers and GET with Accept text/html serves GraphiQL', async () => {
    expect(ok(await t.gql(INTROSPECT[0]!)).__schema).toEqual({ queryType: { name: 'Query' } });
    const page = await fetch(t.url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/graphiql/i);
  });

  it('__schema and __type are refused with INTROSPECTION_DISABLED over HTTP and over the socket', async () => {
    const socket = socketClient(service.url);
    try {
      for (const query of INTROSPECT) {
        const res = await fetch(service.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
        const body = (await res.json()) as GqlResponse;
        expect(res.status, query).toBe(200);
        expect(body.data ?? null).toBeNull();
        expect(codes(body)[0], query).toBe('INTROSPECTION_DISABLED');
        expect(body.errors![0]!.message).toMatch(/introspection has been disabled/);
        const refused = await socket.request(query).then(
          () => null,
          (e: { extensions?: Record<string, unknown> }[]) => e,
        );
        expect(refused?.[0]?.extensions?.code, `socket: ${query}`).toBe('INTROSPECTION_DISABLED');
      }
      // Ordinary queries still answer, on both.
      const plain = await fetch(service.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ datasets { name } }' }) });
      expect(((await plain.json()) as GqlResponse).data?.datasets).toEqual(expect.any(Array));
      expect((await socket.request<{ datasets: unknown[] }>('{ datasets { name } }')).data?.datasets).toEqual(expect.any(Array));
    } finally {
      await socket.close();
    }
  });

  it('GET with Accept text/html gives no GraphiQL page', async () => {
    const res = await fetch(service.url, { headers: { accept: 'text/html' } });
    const text = await res.text();
    expect(res.status).toBe(406);
    expect(res.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    expect(text).not.toMatch(/graphiql/i);
  });
});

describe('after all of it', () => {
  it('the server still answers over HTTP and the socket (nothing crashed)', async () => {
    expect(ok(await t.gql('{ datasets { name } }')).datasets).toContainEqual({ name: ds });
    expect((await overSocket('{ datasets { name } }')).data?.datasets).toContainEqual({ name: ds });
  });
});

describe('a socket message larger than an HTTP body may be', () => {
  let small: TestApp;
  beforeAll(async () => {
    // maxBatch × maxChangeBytes = 4 KiB: the HTTP body limit, and the socket message limit with it.
    small = await startTestApp({ flushIntervalSeconds: 0, limits: { ...DEFAULT_LIMITS, maxBatch: 2, maxChangeBytes: 2048 } });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('closes that socket with 1009 (message too big) and nothing else; a message under it is served', async () => {
    const under = socketClient(small.url);
    const over = socketClient(small.url);
    try {
      expect((await under.request('{ viewer { role } }')).data).toEqual({ viewer: { role: 'ADMIN' } });
      const padding = 'x'.repeat(5000);
      await over.request(`{ viewer { role } } # ${padding}`).catch(() => {});
      await waitUntil(() => over.closed.code, 'the oversized socket to close');
      expect(over.closed.code).toBe(1009);
      expect((await under.request('{ viewer { role } }')).data).toEqual({ viewer: { role: 'ADMIN' } });
      const viaHttp = await small.gql(`{ viewer { role } } # ${padding}`);
      expect(viaHttp.status).toBe(413);
    } finally {
      await under.close();
      await over.close();
    }
  });
});
