import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';

const t = useApp();

describe('a dataset and a change over HTTP', () => {
  it('creates a dataset, an entity, and reads it back', async () => {
    const ds = await t.gql(`mutation { createDataset(name: "trees", properties: ["species"]) { ... on MutationCreateDatasetSuccess { data { name properties } } } }`);
    expect(ds.data.createDataset.data).toEqual({ name: 'trees', properties: ['species'] });
    const entityId = randomUUID();
    const res = await t.gql(
      `mutation($c: ChangeInput!) { submitChange(change: $c) { outcome version entity { label data version } } }`,
      { c: { id: randomUUID(), dataset: 'trees', entityId, action: 'CREATE', label: 'Oak', data: { species: 'oak' } } },
    );
    expect(res.data.submitChange).toEqual({ outcome: 'APPLIED', version: 1, entity: { label: 'Oak', data: { species: 'oak' }, version: 1 } });
  });
});
