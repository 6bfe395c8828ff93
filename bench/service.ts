/**
 * The entity-sync side of the benchmark: GraphQL calls to the real server over HTTP, and (for
 * the long-history phase) the sync use-case called in process, without HTTP.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../src/db/client.js';
import { submitChanges } from '../src/sync/submit-changes.js';
import { concurrentLoad, gql, updateData, type TimedRun } from './lib.js';

export const DATASET = 'bench';
export const DEVICE = 'bench-device';

const RESULT_FIELDS = 'changeId outcome version conflict error { code message }';
const SUBMIT_CHANGES = `mutation Submit($changes: [ChangeInput!]!) {
  submitChanges(changes: $changes) {
    __typename
    ... on MutationSubmitChangesSuccess { data { ${RESULT_FIELDS} } }
    ... on DomainError { code message }
  }
}`;
const SUBMIT_CHANGE = `mutation SubmitOne($change: ChangeInput!) { submitChange(change: $change) { ${RESULT_FIELDS} } }`;
const CREATE_DATASET = 'mutation CreateDataset($n: String!, $p: [String!]!) { createDataset(name: $n, properties: $p) { __typename } }';

interface Result {
  changeId: string;
  outcome: string;
  version: number | null;
  conflict: string | null;
  error: { code: string; message: string } | null;
}

function checkApplied(r: Result | undefined, expectedVersion: number): void {
  if (!r || r.outcome !== 'APPLIED' || r.version !== expectedVersion || r.conflict !== null) {
    throw new Error(`expected APPLIED at version ${expectedVersion}, got ${JSON.stringify(r)}`);
  }
}

export function updateChange(entityId: string, baseVersion: number, n: number): Record<string, unknown> {
  return { id: randomUUID(), deviceId: DEVICE, dataset: DATASET, entityId, action: 'UPDATE', baseVersion, data: updateData(n) };
}

async function submitBatch(url: string, changes: readonly object[]): Promise<Result[]> {
  const data = await gql<{ submitChanges: { __typename: string; data?: Result[]; code?: string; message?: string } }>(url, SUBMIT_CHANGES, { changes });
  const r = data.submitChanges;
  if (!r.data || r.data.length !== changes.length) throw new Error(`submitChanges failed: ${r.code}: ${r.message}`);
  return r.data;
}

export async function createDataset(url: string, properties: readonly string[], name = DATASET): Promise<void> {
  const data = await gql<{ createDataset: { __typename: string } }>(url, CREATE_DATASET, { n: name, p: [...properties] });
  if (data.createDataset.__typename !== 'MutationCreateDatasetSuccess') throw new Error(`createDataset: ${data.createDataset.__typename}`);
}

/** Creates `count` entities through the API, `batchSize` per submitChanges; all end at version 1. */
export async function createEntities(url: string, count: number, batchSize: number, prefix: string, dataset = DATASET): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  for (let i = 0; i < ids.length; i += batchSize) {
    const slice = ids.slice(i, i + batchSize);
    const results = await submitBatch(
      url,
      slice.map((entityId, j) => ({ id: randomUUID(), deviceId: DEVICE, dataset, entityId, action: 'CREATE', label: `${prefix} ${i + j}`, data: updateData(0) })),
    );
    results.forEach((r) => checkApplied(r, 1));
  }
  return ids;
}

/** `clients` concurrent clients, each sending single submitChange updates to its own entities in turn. */
export class SingleClients {
  private versions: Map<string, number>;
  private turn: number[];
  private n = 0;
  constructor(
    private url: string,
    private ids: string[],
    private clients: number,
  ) {
    this.versions = new Map(ids.map((id) => [id, 1]));
    this.turn = new Array<number>(clients).fill(0);
  }

  run(count: number): Promise<TimedRun> {
    const perClient = this.ids.length / this.clients;
    return concurrentLoad(this.clients, count, async (worker) => {
      const id = this.ids[worker * perClient + (this.turn[worker]!++ % perClient)]!;
      const base = this.versions.get(id)!;
      const data = await gql<{ submitChange: Result }>(this.url, SUBMIT_CHANGE, { change: updateChange(id, base, this.n++) });
      checkApplied(data.submitChange, base + 1);
      this.versions.set(id, base + 1);
    });
  }
}

/**
 * In-order single updates of one entity through src/sync/submit-changes.ts in this process
 * (one change per call, one at a time), each timed and checked: the cost of the sync layer
 * and the database, without HTTP and GraphQL.
 */
export class InProcessUpdater {
  private n = 0;
  constructor(
    private db: Db,
    private entityId: string,
    public version: number,
  ) {}

  run(count: number): Promise<TimedRun> {
    return concurrentLoad(1, count, async () => {
      const { results } = await submitChanges(this.db, [updateChange(this.entityId, this.version, this.n++) as never]);
      checkApplied(results[0] as Result | undefined, this.version + 1);
      this.version += 1;
    });
  }
}
