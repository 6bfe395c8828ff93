import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, noInternalError, ok, postRaw, type ChangeInput, type Domain } from '../helpers/domain.js';

/**
 * Input that is valid JSON and valid GraphQL but that the database cannot take as it is: lone
 * UTF-16 surrogates, NUL characters in lookups, numbers JSON cannot round-trip, deep nesting,
 * tampered cursors. Each must come back as a coded rejection or a plain answer, recorded
 * where it is a change, never as an internal error.
 */
const t = useApp();
const d = domain(t);
let ds: string;
beforeAll(async () => {
  ds = await d.createDataset(['height', 'species']);
});

const SUBMIT_ONE = 'mutation($c: ChangeInput!) { submitChange(change: $c) { changeId outcome originalOutcome version error { code } } }';

/** Submits one change through a hand-written body; `dataJson` is spliced in verbatim. */
async function submitRawChange(change: ChangeInput, dataJson?: string) {
  const c = JSON.stringify({ id: randomUUID(), ...change });
  const withData = dataJson === undefined ? c : `${c.slice(0, -1)},"data":${dataJson}}`;
  const res = await postRaw(t, `{"query":${JSON.stringify(SUBMIT_ONE)},"variables":{"c":${withData}}}`);
  noInternalError(res);
  return ok(res).submitChange;
}

async function expectRecordedRejection(changeId: string, code: string) {
  expect(await d.change(changeId)).toMatchObject({ outcome: 'REJECTED', errorCode: code });
}

describe('changes the database cannot store as sent are rejected with a code and recorded', () => {
  it('a lone surrogate in a property value: INVALID_PROPERTY_VALUE', async () => {
    const r = await submitRawChange({ dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'Oak' }, '{"species":"oak\\ud800"}');
    expect(r).toMatchObject({ outcome: 'REJECTED', error: { code: 'INVALID_PROPERTY_VALUE' } });
    await expectRecordedRejection(r.changeId, 'INVALID_PROPERTY_VALUE');
  });

  it('a lone surrogate in a label: INVALID_LABEL', async () => {
    const r = await submitRawChange({ dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'Oak\udc00' });
    expect(r).toMatchObject({ outcome: 'REJECTED', error: { code: 'INVALID_LABEL' } });
    await expectRecordedRejection(r.changeId, 'INVALID_LABEL');
  });

  it('a lone surrogate in the dataset name: MALFORMED_CHANGE (checked before any lookup), recorded', async () => {
    const r = await submitRawChange({ dataset: `${ds}\ud800`, entityId: randomUUID(), action: 'CREATE', label: 'Oak' });
    expect(r).toMatchObject({ outcome: 'REJECTED', version: null, error: { code: 'MALFORMED_CHANGE' } });
    await expectRecordedRejection(r.changeId, 'MALFORMED_CHANGE');
  });

  it('nesting far deeper than allowed: INVALID_PROPERTY_VALUE', async () => {
    const depth = 5000;
    const r = await submitRawChange({ dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'Deep' }, `{"species":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    expect(r).toMatchObject({ outcome: 'REJECTED', error: { code: 'INVALID_PROPERTY_VALUE' } });
    await expectRecordedRejection(r.changeId, 'INVALID_PROPERTY_VALUE');
  });

  it('a number JSON cannot hold (1e400): rejected, and its resend is a DUPLICATE', async () => {
    const change: ChangeInput = { id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'Big' };
    const first = await submitRawChange(change, '{"height":1e400}');
    expect(first).toMatchObject({ outcome: 'REJECTED', error: { code: 'INVALID_PROPERTY_VALUE' } });
    await expectRecordedRejection(first.changeId, 'INVALID_PROPERTY_VALUE');
    const again = await submitRawChange(change, '{"height":1e400}');
    expect(again).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'REJECTED', error: { code: 'INVALID_PROPERTY_VALUE' } });
  });
});

describe('lookups with characters the database cannot compare answer plainly', () => {
  const nul = 'a\u0000b';

  it('change(id) with a NUL: null', async () => {
    const res = await t.gql(`query($id: String!) { change(id: $id) { id } }`, { id: nul });
    noInternalError(res);
    expect(ok(res).change).toBeNull();
  });

  it('dataset(name) with a NUL: null; entities(dataset), conflicts(dataset): UNKNOWN_DATASET', async () => {
    expect(ok(await t.gql(`query($n: String!) { dataset(name: $n) { name } }`, { n: nul })).dataset).toBeNull();
    for (const field of ['entities(dataset: $n) { nodes { id } }', 'conflicts(dataset: $n) { nodes { id } }']) {
      const res = await t.gql(`query($n: String!) { ${field} }`, { n: nul });
      noInternalError(res);
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['UNKNOWN_DATASET']);
    }
  });

  it('addDatasetProperties on a name with a NUL: UNKNOWN_DATASET', async () => {
    const res = await t.gql(`mutation($n: String!) { addDatasetProperties(name: $n, properties: ["x"]) { __typename ... on DomainError { code } } }`, { n: nul });
    noInternalError(res);
    expect(ok(res).addDatasetProperties).toEqual({ __typename: 'DomainError', code: 'UNKNOWN_DATASET' });
  });
});

describe('tampered pagination cursors', () => {
  it('are refused as invalid, not an internal error', async () => {
    await d.create(ds, 'one');
    const q = `query($ds: String!, $after: String) { entities(dataset: $ds, first: 5, after: $after) { nodes { id } } }`;
    // Well-formed base64 of a tampered payload, and a garbled one: the same plain refusal.
    for (const after of [...['DC:S:not-a-uuid', 'DC:N:5', 'DC:S:'].map((raw) => Buffer.from(raw).toString('base64')), 'garbage']) {
      const res = await t.gql(q, { ds, after });
      noInternalError(res);
      expect(res.data ?? null, after).toBeNull();
      expect(res.errors, after).toEqual([expect.objectContaining({ message: `Invalid cursor "${after}"`, path: ['entities'], extensions: { code: 'INVALID_CURSOR' } })]);
    }
  });
});
