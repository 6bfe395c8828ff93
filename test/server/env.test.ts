import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GqlResponse } from '../helpers/app.js';
import { offlineRun, uniqueName } from '../helpers/domain.js';
import { spawnService, waitUntil, type Service } from '../helpers/live.js';

/**
 * What src/main.ts reads from the environment reaches the service (issue 12: the periodic
 * flusher, HOLD_TIMEOUT_SECONDS, MAX_QUERY_*, METRICS_TOKEN were each set only in process by the
 * tests). The real entry point runs as a process with each variable set away from its default,
 * and each shows in an answer the default would not give.
 */

async function post<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResponse<T>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { ...((await res.json()) as Omit<GqlResponse<T>, 'status'>), status: res.status };
}

function data<T = any>(res: GqlResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  expect(res.status).toBe(200);
  return res.data as T;
}

const refusal = (res: GqlResponse) => res.errors?.map((e) => ({ code: e.extensions?.code, message: e.message }));

const SUBMIT = 'mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome version } } } }';

/** A dataset, an entity at version 1 and the second update of an offline run on it (its first never sent): held. */
async function heldChange(url: string): Promise<{ dataset: string; entityId: string; changeId: string }> {
  const dataset = uniqueName('env');
  data(await post(url, 'mutation($n: String!) { createDataset(name: $n, properties: ["n"]) { __typename } }', { n: dataset }));
  const entityId = randomUUID();
  const create = { id: randomUUID(), dataset, entityId, action: 'CREATE', label: 'Env', data: { n: 1 } };
  expect(data(await post(url, SUBMIT, { c: [create] })).submitChanges.data).toEqual([{ outcome: 'APPLIED', version: 1 }]);
  const update = offlineRun(dataset, entityId, 1).update(2, { n: 2 });
  expect(data(await post(url, SUBMIT, { c: [update] })).submitChanges.data).toEqual([{ outcome: 'HELD', version: null }]);
  return { dataset, entityId, changeId: update.id };
}

const HELD = 'query($ds: String) { heldChanges(dataset: $ds, first: 1) { nodes { changeId heldSince forceAfter } } }';

describe('limits, the hold timeout and the metrics token from the environment', () => {
  let service: Service;
  beforeAll(async () => {
    service = await spawnService({
      DATABASE_URL: '',
      DATA_DIR: 'memory://',
      MAX_QUERY_DEPTH: '4',
      MAX_QUERY_ALIASES: '2',
      MAX_QUERY_TOKENS: '60',
      MAX_QUERY_DIRECTIVES: '2',
      MAX_QUERY_COST: '40',
      METRICS_TOKEN: 'scrape-me',
      HOLD_TIMEOUT_SECONDS: '7200',
    });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('MAX_QUERY_DEPTH, MAX_QUERY_ALIASES, MAX_QUERY_DIRECTIVES: a document at the limit answers, one past it is refused naming the limit', async () => {
    const id = randomUUID();
    const deep = (inner: string) => `query($id: ID!) { entity(id: $id) { versions(limit: 1) { entity { ${inner} } } } }`;
    const aliased = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: viewer { role }`).join(' ')} }`;
    const directed = (n: number) => `{ viewer { ${Array.from({ length: n }, () => '... @include(if: true) { role }').join(' ')} } }`;
    expect(data(await post(service.url, deep('label'), { id }))).toEqual({ entity: null });
    expect(refusal(await post(service.url, deep('versions(limit: 1) { version }'), { id }))).toEqual([{ code: 'QUERY_TOO_DEEP', message: 'query depth limit of 4 exceeded (found 5)' }]);
    expect(data(await post(service.url, aliased(2)))).toEqual({ a0: { role: 'ADMIN' }, a1: { role: 'ADMIN' } });
    expect(refusal(await post(service.url, aliased(3)))).toEqual([{ code: 'TOO_MANY_ALIASES', message: 'aliases limit of 2 exceeded (found 3)' }]);
    expect(data(await post(service.url, directed(2)))).toEqual({ viewer: { role: 'ADMIN' } });
    expect(refusal(await post(service.url, directed(3)))).toEqual([{ code: 'TOO_MANY_DIRECTIVES', message: 'directives limit of 2 exceeded (found 3)' }]);
  });

  it('MAX_QUERY_TOKENS and MAX_QUERY_COST: documents far inside the defaults are refused', async () => {
    // 65 tokens (the default allows 2000).
    expect(refusal(await post(service.url, `{ viewer { ${'role '.repeat(60)}} }`))).toEqual([{ code: 'TOO_MANY_TOKENS', message: 'tokens limit of 60 exceeded' }]);
    // A page of 6: the connection 6 × (its nodes, 3 fields + 1) + 1 = 25; twice of it costs 50 (the default allows 100,000).
    const held = '(dataset: "none_here", first: 6) { nodes { changeId heldSince forceAfter } }';
    // Priced under the limit, so it runs (and answers that the dataset does not exist).
    expect(refusal(await post(service.url, `{ heldChanges${held} }`))).toEqual([{ code: 'UNKNOWN_DATASET', message: 'no dataset named "none_here"' }]);
    expect(refusal(await post(service.url, `{ a: heldChanges${held} b: heldChanges${held} }`))).toEqual([{ code: 'QUERY_TOO_COMPLEX', message: 'query cost limit of 40 exceeded (found 50)' }]);
  });

  it('HOLD_TIMEOUT_SECONDS: a held change is due two hours after it was held', async () => {
    const { dataset, changeId } = await heldChange(service.url);
    const [row] = data(await post(service.url, HELD, { ds: dataset })).heldChanges.nodes;
    expect(row.changeId).toBe(changeId);
    expect(Date.parse(row.forceAfter) - Date.parse(row.heldSince)).toBe(7200 * 1000);
  });

  it('METRICS_TOKEN: /metrics answers only a scraper that sends it', async () => {
    const without = await fetch(service.url.replace('/graphql', '/metrics'));
    expect([without.status, without.headers.get('www-authenticate'), await without.text()]).toEqual([401, 'Bearer', 'metrics need the metrics token\n']);
    const wrong = await fetch(service.url.replace('/graphql', '/metrics'), { headers: { authorization: 'Bearer scrape-you' } });
    expect(wrong.status).toBe(401);
    await wrong.text();
    const right = await fetch(service.url.replace('/graphql', '/metrics'), { headers: { authorization: 'Bearer scrape-me' } });
    expect(right.status).toBe(200);
    expect(await right.text()).toMatch(/^entity_sync_held_changes \d+$/m);
  });
});

describe('the periodic flusher of the real service (FLUSH_INTERVAL_SECONDS, HOLD_TIMEOUT_SECONDS)', () => {
  let service: Service;
  beforeAll(async () => {
    service = await spawnService({ DATABASE_URL: '', DATA_DIR: 'memory://', FLUSH_INTERVAL_SECONDS: '0.2', HOLD_TIMEOUT_SECONDS: '1' });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('forces a held change once it has waited the hold timeout, with no one asking', async () => {
    const { dataset, entityId, changeId } = await heldChange(service.url);
    const [row] = data(await post(service.url, HELD, { ds: dataset })).heldChanges.nodes;
    expect(Date.parse(row.forceAfter) - Date.parse(row.heldSince)).toBe(1000);
    // The defaults (every 30 s, after 300 s) would not get here within the wait.
    const ENTITY = 'query($e: ID!) { entity(id: $e) { version data versions { version changeId source createdAt } } }';
    const entity = await waitUntil(async () => {
      const e = data(await post(service.url, ENTITY, { e: entityId })).entity;
      return e.version === 2 ? e : null;
    }, 'the periodic flush to force the held change', 15_000, 100);
    expect(entity.data).toEqual({ n: 2 });
    const forced = entity.versions.find((v: { version: number }) => v.version === 2);
    expect([forced.changeId, forced.source]).toEqual([changeId, 'FORCED']);
    // Not before it was due.
    expect(Date.parse(forced.createdAt)).toBeGreaterThanOrEqual(Date.parse(row.forceAfter));
    expect(data(await post(service.url, HELD, { ds: dataset })).heldChanges.nodes).toEqual([]);
    const metrics = await (await fetch(service.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).toMatch(/^entity_sync_backlog_forced_changes_total\{trigger="periodic"\} 1$/m);
  });
});
