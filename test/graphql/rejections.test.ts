import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, noInternalError, ok, uniqueName, type ChangeInput, type Domain } from '../helpers/domain.js';

const t = useApp();
const d = domain(t);
let ds: string;
let other: string;
beforeAll(async () => {
  ds = await d.createDataset(['height', 'species']);
  other = await d.createDataset(['height']);
});

const create = (extra: Partial<ChangeInput> = {}): ChangeInput => ({ dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'Tree', ...extra });
const update = (entityId: string, extra: Partial<ChangeInput> = {}): ChangeInput => ({ dataset: ds, entityId, action: 'UPDATE', baseVersion: 1, data: { height: 1 }, ...extra });

/** Submits one change, asserts the rejection (and its record), and that the entity did not move. */
async function rejects(change: ChangeInput, code: string, untouched?: string): Promise<void> {
  const before = untouched ? (await d.entity(untouched))! : null;
  await d.expectRejected(await d.one(change), code);
  if (untouched) expect(await d.entity(untouched)).toEqual(before);
}

describe('rejected changes carry a code and are still recorded', () => {
  it('UNKNOWN_DATASET', async () => {
    await rejects(create({ dataset: 'no_such_dataset' }), 'UNKNOWN_DATASET');
    const id = await d.create(ds, 'Oak');
    await rejects(update(id, { dataset: 'no_such_dataset' }), 'UNKNOWN_DATASET', id);
  });

  it('UNKNOWN_PROPERTY: undeclared, and the reserved name "label"', async () => {
    const id = await d.create(ds, 'Oak');
    await rejects(update(id, { data: { weight: 3 } }), 'UNKNOWN_PROPERTY', id);
    await rejects(update(id, { data: { height: 2, weight: 3 } }), 'UNKNOWN_PROPERTY', id);
    await rejects(update(id, { data: { label: 'x' } }), 'UNKNOWN_PROPERTY', id);
    await rejects(create({ data: { species: 'oak', colour: 'red' } }), 'UNKNOWN_PROPERTY');
    // Declared in another dataset is not declared here.
    await rejects(update(id, { dataset: other, data: { species: 'oak' } }), 'UNKNOWN_PROPERTY', id);
  });

  it('ENTITY_NOT_FOUND for an update or a delete of an unknown id', async () => {
    await rejects(update(randomUUID()), 'ENTITY_NOT_FOUND');
    await rejects({ dataset: ds, entityId: randomUUID(), action: 'DELETE', baseVersion: 1 }, 'ENTITY_NOT_FOUND');
  });

  it('ENTITY_EXISTS for a second create of one id, in its dataset or another', async () => {
    const id = await d.create(ds, 'Oak', { height: 1 });
    await rejects(create({ entityId: id, label: 'Again' }), 'ENTITY_EXISTS', id);
    await rejects(create({ entityId: id, dataset: other, label: 'Again' }), 'ENTITY_EXISTS', id);
  });

  it('ENTITY_DELETED', async () => {
    const id = await d.create(ds, 'Oak');
    await d.remove(ds, id, 1);
    await rejects(update(id, { baseVersion: 2 }), 'ENTITY_DELETED', id);
  });

  it('ENTITY_NOT_FOUND for an entity of another dataset: from this dataset it does not exist, so its id cannot be probed', async () => {
    const id = await d.create(ds, 'Oak');
    const unknown = randomUUID();
    await rejects(update(id, { dataset: other }), 'ENTITY_NOT_FOUND', id);
    await rejects({ dataset: other, entityId: id, action: 'DELETE', baseVersion: 1 }, 'ENTITY_NOT_FOUND', id);
    // Word for word what an id that exists nowhere gets.
    const [there, nowhere] = await d.submit(update(id, { dataset: other }), update(unknown, { dataset: other }));
    expect(there!.error!.message.replace(id, '<id>')).toBe(nowhere!.error!.message.replace(unknown, '<id>'));
    expect((await d.entity(id))!).toMatchObject({ version: 1, dataset: { name: ds } });
  });

  it('BASE_VERSION_AHEAD, BASE_VERSION_MISSING, BASE_VERSION_INVALID', async () => {
    const id = await d.create(ds, 'Oak');
    await rejects(update(id, { baseVersion: 2 }), 'BASE_VERSION_AHEAD', id);
    await rejects({ dataset: ds, entityId: id, action: 'DELETE', baseVersion: 7 }, 'BASE_VERSION_AHEAD', id);
    await rejects(update(id, { baseVersion: null }), 'BASE_VERSION_MISSING', id);
    await rejects({ dataset: ds, entityId: id, action: 'DELETE' }, 'BASE_VERSION_MISSING', id);
    await rejects(update(id, { baseVersion: 0 }), 'BASE_VERSION_INVALID', id);
    await rejects(update(id, { baseVersion: -1 }), 'BASE_VERSION_INVALID', id);
    await rejects(update(id, { branchId: randomUUID(), trunkVersion: 0 }), 'BASE_VERSION_INVALID', id);
  });

  it('TRUNK_VERSION_WITHOUT_BRANCH and BASE_BELOW_TRUNK', async () => {
    const id = await d.create(ds, 'Oak');
    await d.update(ds, id, 1, { height: 2 });
    await rejects(update(id, { trunkVersion: 1 }), 'TRUNK_VERSION_WITHOUT_BRANCH', id);
    await rejects(update(id, { branchId: randomUUID(), trunkVersion: 2, baseVersion: 1 }), 'BASE_BELOW_TRUNK', id);
  });

  it('MALFORMED_ID for the change id, the entityId and the branchId', async () => {
    const id = await d.create(ds, 'Oak');
    const bad = `not-a-uuid-${randomUUID().slice(0, 8)}`;
    await rejects(update(id, { id: bad }), 'MALFORMED_ID', id);
    expect(await d.change(bad)).toMatchObject({ id: bad, entityId: id, payload: { id: bad, entityId: id } });
    await rejects(update('abc'), 'MALFORMED_ID');
    await rejects(create({ entityId: `${randomUUID()}x` }), 'MALFORMED_ID');
    await rejects(update(id, { branchId: 'xyz', trunkVersion: 1 }), 'MALFORMED_ID', id);
    // An id too long to be a key is refused too (and recorded, though not under that id).
    const long = await d.one(update(id, { id: 'x'.repeat(300) }));
    expect(long).toMatchObject({ outcome: 'REJECTED', error: { code: 'MALFORMED_ID' } });
  });

  it('MISSING_ENTITY_ID', async () => {
    await rejects(create({ entityId: null }), 'MISSING_ENTITY_ID');
    await rejects(create({ entityId: '' }), 'MISSING_ENTITY_ID');
    const r = await d.one({ dataset: ds, action: 'UPDATE', baseVersion: 1 });
    await d.expectRejected(r, 'MISSING_ENTITY_ID');
  });

  it('MISSING_LABEL and INVALID_LABEL', async () => {
    await rejects(create({ label: null }), 'MISSING_LABEL');
    await rejects(create({ label: '   ' }), 'MISSING_LABEL');
    const id = await d.create(ds, 'Oak');
    await rejects(update(id, { label: '' }), 'INVALID_LABEL', id);
    await rejects(update(id, { label: 'bad\u0001label' }), 'INVALID_LABEL', id);
    await rejects(update(id, { label: 'nul\u0000label' }), 'INVALID_LABEL', id);
    await rejects(create({ label: 'x'.repeat(1001) }), 'INVALID_LABEL');
    expect(await d.one(create({ label: 'y'.repeat(1000) }))).toMatchObject({ outcome: 'APPLIED', version: 1 });
  });

  it('INVALID_PROPERTY_VALUE for a NUL character, however deep', async () => {
    const id = await d.create(ds, 'Oak');
    const c = update(id, { id: randomUUID(), data: { species: 'o\u0000k' } });
    await rejects(c, 'INVALID_PROPERTY_VALUE', id);
    expect((await d.change(c.id!)).payload.data).toEqual({ species: 'o\uFFFDk' });
    await rejects(update(id, { data: { species: { names: ['a', 'b\u0000'] } } }), 'INVALID_PROPERTY_VALUE', id);
    await rejects(create({ data: { species: 'o\u0000k' } }), 'INVALID_PROPERTY_VALUE');
  });

  it('MALFORMED_CHANGE for data that is not an object, or a NUL in the dataset name', async () => {
    const id = await d.create(ds, 'Oak');
    await rejects(update(id, { data: [1, 2] }), 'MALFORMED_CHANGE', id);
    await rejects(update(id, { data: 'tall' }), 'MALFORMED_CHANGE', id);
    await rejects(update(id, { dataset: `${ds}\u0000` }), 'MALFORMED_CHANGE', id);
  });

  it('TOO_LARGE for a change over 64 KiB or with too many properties; what is recorded says so', async () => {
    const id = await d.create(ds, 'Oak');
    const c = update(id, { id: randomUUID(), data: { species: 'x'.repeat(64 * 1024) } });
    await rejects(c, 'TOO_LARGE', id);
    expect((await d.change(c.id!)).payload).toMatchObject({ truncated: true, data: null, entityId: id });
    const many = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`p${i}`, i]));
    await rejects(update(id, { data: many }), 'TOO_LARGE', id);
    // Just under the limit is fine.
    expect(await d.update(ds, id, 1, { species: 'x'.repeat(60 * 1024) })).toMatchObject({ outcome: 'APPLIED', version: 2 });
  });
});

const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { __typename ... on DomainError { code message } ... on MutationSubmitChangesSuccess { data { outcome } } } }`;

describe('batch and mutation errors are typed results', () => {
  it('EMPTY_BATCH', async () => {
    const r = ok(await t.gql(SUBMIT, { c: [] })).submitChanges;
    expect(r).toMatchObject({ __typename: 'DomainError', code: 'EMPTY_BATCH' });
  });

  it('BATCH_TOO_LARGE over 500, and nothing of it is recorded; 500 is accepted', async () => {
    const batch = Array.from({ length: 501 }, () => ({ ...create(), id: randomUUID() }));
    const r = ok(await t.gql(SUBMIT, { c: batch })).submitChanges;
    expect(r).toMatchObject({ __typename: 'DomainError', code: 'BATCH_TOO_LARGE' });
    expect(await d.change(batch[0]!.id)).toBeNull();
    expect(await d.entity(batch[0]!.entityId!)).toBeNull();

    const full = ok(await t.gql(SUBMIT, { c: batch.slice(0, 500) })).submitChanges;
    expect(full.__typename).toBe('MutationSubmitChangesSuccess');
    expect(full.data).toHaveLength(500);
    expect(full.data.every((x: { outcome: string }) => x.outcome === 'APPLIED')).toBe(true);
  });

  const CREATE_DS = `mutation($n: String!, $p: [String!]!) { createDataset(name: $n, properties: $p) { __typename ... on DomainError { code message } } }`;
  const ADD = `mutation($n: String!, $p: [String!]!) { addDatasetProperties(name: $n, properties: $p) { __typename ... on DomainError { code message } } }`;

  it('createDataset: DATASET_EXISTS and INVALID_NAME', async () => {
    const code = async (q: string, n: string, p: string[]) => ok(await t.gql(q, { n, p }));
    expect((await code(CREATE_DS, ds, ['x'])).createDataset).toMatchObject({ __typename: 'DomainError', code: 'DATASET_EXISTS' });
    for (const name of ['', '1trees', 'has space', 'dash-name', 'x'.repeat(65), 'nul\u0000']) {
      expect((await code(CREATE_DS, name, ['a'])).createDataset, name).toMatchObject({ __typename: 'DomainError', code: 'INVALID_NAME' });
    }
    for (const props of [['label'], ['a', 'a'], ['bad-name'], ['']]) {
      expect((await code(CREATE_DS, uniqueName(), props)).createDataset, props.join()).toMatchObject({ __typename: 'DomainError', code: 'INVALID_NAME' });
    }
    expect((await code(ADD, ds, ['label'])).addDatasetProperties).toMatchObject({ __typename: 'DomainError', code: 'INVALID_NAME' });
    expect((await code(ADD, 'no_such_dataset', ['a'])).addDatasetProperties).toMatchObject({ __typename: 'DomainError', code: 'UNKNOWN_DATASET' });
  });
});

describe('HTTP and GraphQL-level errors are never a 500', () => {
  it('a request body over the limit gets 413', async () => {
    const body = JSON.stringify({ query: 'query { datasets { name } }', variables: { pad: 'x'.repeat(500 * 64 * 1024 + 1) } });
    const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(413);
    const json = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(json.errors[0]!.extensions.code).toBe('TOO_LARGE');
    // Without a content-length (chunked) it is refused too.
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += 1 << 20) c.enqueue(bytes.slice(i, i + (1 << 20)));
        c.close();
      },
    });
    const chunked = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    // The server still answers afterwards.
    expect(ok(await t.gql('{ datasets { name } }')).datasets.length).toBeGreaterThan(0);
  });

  it('wrong GraphQL types are validation errors, not 500s: each with its status, code and message', async () => {
    const q = `mutation($c: ChangeInput!) { submitChange(change: $c) { outcome } }`;
    const base = { id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'UPDATE' };
    const bad = (at: string, value: string, why: string) => [400, [['BAD_USER_INPUT', `Variable "$c" got invalid value ${value} at "c.${at}"; ${why}`]]] as const;
    const invalid = (...messages: string[]) => [200, messages.map((m) => ['GRAPHQL_VALIDATION_FAILED', m])] as const;
    const cases: [string, Record<string, unknown> | undefined, readonly [number, readonly (readonly string[])[]]][] = [
      [q, { c: { ...base, baseVersion: 'one' } }, bad('baseVersion', '"one"', 'Int cannot represent non-integer value: "one"')],
      [q, { c: { ...base, baseVersion: 2 ** 31 } }, bad('baseVersion', '2147483648', 'Int cannot represent non 32-bit signed integer value: 2147483648')],
      [q, { c: { ...base, baseVersion: 1.5 } }, bad('baseVersion', '1.5', 'Int cannot represent non-integer value: 1.5')],
      [q, { c: { ...base, action: 'MOVE' } }, bad('action', '"MOVE"', 'Value "MOVE" does not exist in "ChangeAction" enum.')],
      [q, { c: { ...base, id: null } }, bad('id', 'null', 'Expected non-nullable type "String!" not to be null.')],
      [
        q,
        { c: { ...base, unknownField: 1 } },
        [400, [['BAD_USER_INPUT', `Variable "$c" got invalid value { id: "${base.id}", dataset: "${ds}", entityId: "${base.entityId}", action: "UPDATE", unknownField: 1 }; Field "unknownField" is not defined by type "ChangeInput".`]]],
      ],
      [q, undefined, [400, [['BAD_USER_INPUT', 'Variable "$c" of required type "ChangeInput!" was not provided.']]]],
      [
        `mutation { submitChanges(changes: {}) { __typename } }`,
        undefined,
        invalid(
          'Field "ChangeInput.action" of required type "ChangeAction!" was not provided.',
          'Field "ChangeInput.dataset" of required type "String!" was not provided.',
          'Field "ChangeInput.id" of required type "String!" was not provided.',
        ),
      ],
      [`{ entity(id: 5) { nope } }`, undefined, invalid('Cannot query field "nope" on type "Entity".')],
      [`{ entities { nodes { id } } }`, undefined, invalid('Field "entities" argument "dataset" of type "String!" is required, but it was not provided.')],
      [`{ datasets { name `, undefined, [200, [['GRAPHQL_PARSE_FAILED', 'Syntax Error: Expected Name, found <EOF>.']]]],
    ];
    for (const [query, variables, expected] of cases) {
      const res = await t.gql(query, variables);
      noInternalError(res);
      expect([res.status, res.errors?.map((e) => [e.extensions?.code, e.message])], JSON.stringify(variables)).toEqual(expected);
      expect(res.data ?? null).toBeNull();
    }
  });

  it('a body that is not JSON is a 400 BAD_REQUEST saying why', async () => {
    const cases: [string, string][] = [
      ['{not json', 'POST body sent invalid JSON.'],
      ['[]', 'Batching is not supported.'],
      ['"a string"', 'POST body is expected to be object but received string'],
      ['', 'POST body sent invalid JSON.'],
    ];
    for (const [body, message] of cases) {
      const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status, body).toBe(400);
      const { errors } = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
      expect(errors.map((e) => [e.extensions.code, e.message]), body).toEqual([['BAD_REQUEST', message]]);
    }
  });

  it('lookups with malformed ids answer plainly', async () => {
    expect(ok(await t.gql(`{ entity(id: "nope") { id } }`)).entity).toBeNull();
    expect(ok(await t.gql(`{ change(id: "${'z'.repeat(300)}") { id } }`)).change).toBeNull();
    const r = ok(await t.gql(`mutation { resolveConflict(entityId: "nope", version: 1) { __typename ... on DomainError { code } } }`));
    expect(r.resolveConflict).toEqual({ __typename: 'DomainError', code: 'MALFORMED_ID' });
  });
});
