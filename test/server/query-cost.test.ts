import { randomUUID } from 'node:crypto';
import { complexityFromQuery } from '@pothos/plugin-complexity';
import { sql } from 'drizzle-orm';
import { getNamedType, isLeafType, isListType, isNonNullType, isInterfaceType, isObjectType, parse, TypeInfo, visit, visitWithTypeInfo, type GraphQLOutputType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/core/types.js';
import { schema } from '../../src/graphql/schema.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { ok } from '../helpers/domain.js';

/**
 * Issue 17 item 2: every list is priced by the most items it can hold and nested lists multiply,
 * so the most expensive document the cost limit lets through answers within a bound of time and
 * of the server's heap. Each document below is the widest its shape allows: its outer page is the
 * largest that still passes the limit (found with the server's own pricing), its inner lists at
 * their maximum. They run against a started server holding 1,000 held changes, each on an entity
 * with a history of 100 versions, 50 entities in HARD conflict, and 150 tokens whose subset holds
 * every entity. Every list field of the schema is in one of them (found by walking the schema), so
 * a list added later without a price fails here.
 */

const HISTORY = 100;
const HELD = 1000;
const CONFLICTED = 50;
const SUBSET_TOKENS = 150;
/** A request of the worst allowed document: answered within this, whatever else the machine does. */
const TIME_BOUND_MS = 60_000;
/** And the server's heap grows by less than this while it runs (in process: this process's heap). */
const HEAP_BOUND_BYTES = 256 * 1024 * 1024;

let t: TestApp;
let ds: string;
let branchId: string;

const BODY = 'version label data changed createdAt changeId deviceId source conflict conflictingProperties';

/** Worst documents: `$n` is the outer page, raised until the next one would be refused. */
const WORST: { name: string; query: string; max: number }[] = [
  { name: 'heldChanges → entity → versions', query: `query($ds: String!, $n: Int) { heldChanges(dataset: $ds, first: $n) { nodes { changeId entity { id versions(limit: 1000) { ${BODY} } } } } }`, max: 500 },
  { name: 'heldChanges (edges) → versions of one', query: `query($ds: String!, $n: Int) { heldChanges(dataset: $ds, first: $n) { edges { cursor node { change step waitsForStep entity { versions(limit: 1) { version } } } } } }`, max: 500 },
  {
    name: 'entities → versions → diffs, operations',
    query: `query($ds: String!, $n: Int) { entities(dataset: $ds, first: $n) { edges { cursor node { id versions(limit: 1000) { ${BODY} serverDiff { property old new } baseDiff { property old new } operations { op property value } resolution { id } } } } } }`,
    max: 500,
  },
  {
    name: 'conflicts → conflictDetails → writes',
    query: `query($ds: String!, $n: Int) { conflicts(dataset: $ds, first: $n) { edges { node { id conflictDetails { property now { value } writes { value } } } } nodes { id } } }`,
    max: 500,
  },
  {
    name: 'conflictInbox → resolutions → written version',
    query: `query($ds: String!, $n: Int) { conflictInbox(dataset: $ds, first: $n) { edges { node { id resolutions(first: 100) { edges { node { id note writtenVersion { version data } } } nodes { id } } } } nodes { id } } }`,
    max: 500,
  },
  {
    name: 'entities → branches → changes, missing',
    query: `query($ds: String!, $n: Int) { entities(dataset: $ds, first: $n) { nodes { branches(limit: 10) { id changes(limit: 1000) { position state } missing(limit: 100) { from to } } } } }`,
    max: 500,
  },
  {
    name: 'entities → subsetTokens',
    query: `query($ds: String!, $n: Int) { entities(dataset: $ds, first: $n) { nodes { subsetTokens(first: 100) { edges { cursor node { id name subset { property values } } } nodes { id } } } } }`,
    max: 500,
  },
  { name: 'rejectedChanges', query: `query($ds: String!, $n: Int) { rejectedChanges(dataset: $ds, first: $n) { edges { node { id payload errorCode } } nodes { id } } }`, max: 500 },
  {
    name: 'datasets → devices, activity, stats',
    query: `query($n: Int) { datasets { name stats { entities heldChanges } devices(first: $n) { nodes { deviceId } } activity(days: 30) { day } } }`,
    max: 1000,
  },
  {
    name: 'dataset → devices, activity',
    query: `query($ds: String!, $n: Int) { dataset(name: $ds) { devices(first: $n) { nodes { deviceId heldChanges lastPullAt } } activity(days: 90) { day backlog conflictsOpened } } }`,
    max: 1000,
  },
  {
    name: 'apiTokens, viewer',
    query: `query($n: Int) { viewer { subset { property values } } apiTokens(first: $n) { edges { cursor node { id name subset { property values } } } nodes { id } } }`,
    max: 500,
  },
  {
    name: 'changesSince → versions → entity → versions',
    query: `query($ds: String!, $n: Int) { changesSince(dataset: $ds, limit: $n) { ... on QueryChangesSinceSuccess { data { cursor versions { version entity { versions(limit: 1000) { version data } } } entered { version } left localIds { localId } } } } }`,
    max: 1000,
  },
  { name: 'branch → changes', query: `query($b: ID!, $n: Int) { branch(id: $b) { changes(limit: $n) { position state } missing(limit: $n) { from to } } }`, max: 1000 },
  { name: 'webhooks → deliveries', query: `query($n: Int) { webhooks { id url } webhookDeliveries(webhookId: "1", first: $n) { edges { node { id status } } nodes { id } } }`, max: 100 },
];

/** Lists answered from results in hand (a mutation's, an event's): priced, and exercised by their own tests. */
const IN_HAND_LISTS = ['BacklogFlush.changes', 'BacklogFlushedEvent.changes', 'ChangeResult.released', 'MutationResolveConflictsSuccess.data', 'MutationSubmitChangesSuccess.data'];

const limits = DEFAULT_LIMITS;
const price = (query: string, n: number) => complexityFromQuery(query, { schema, ctx: { limits }, variables: { ds: 'x', b: randomUUID(), n } }).complexity;

/** The largest outer page the cost limit lets through (1 if even that is refused: then the shape is). */
function widest(query: string, max: number): number {
  let lo = 1;
  let hi = max;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (price(query, mid) <= limits.maxQueryComplexity) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Runs a request while sampling this process's heap (the server runs in it): its time and the heap's peak growth. */
async function measured<T>(run: () => Promise<T>): Promise<{ result: T; ms: number; heapGrowth: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 10);
  const started = performance.now();
  try {
    const result = await run();
    return { result, ms: performance.now() - started, heapGrowth: Math.max(peak, process.memoryUsage().heapUsed) - base };
  } finally {
    clearInterval(sampler);
  }
}

beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0 });
  ds = `cost_${randomUUID().slice(0, 8)}`;
  ok(await t.gql(`mutation($n: String!) { createDataset(name: $n, properties: ["species", "height", "note"]) { __typename } }`, { n: ds }));
  const submit = async (changes: Record<string, unknown>[]) => {
    const r = ok(await t.gql(`mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome } } } }`, { c: changes }));
    return r.submitChanges.data.map((x: { outcome: string }) => x.outcome) as string[];
  };
  const ids = Array.from({ length: HELD }, () => randomUUID());
  const note = 'a field note of a realistic length, written on a tablet in the rain '.repeat(2);
  for (let i = 0; i < HELD; i += 500) {
    const outcomes = await submit(ids.slice(i, i + 500).map((id, j) => ({ id: randomUUID(), dataset: ds, entityId: id, action: 'CREATE', label: `Tree ${i + j}`, data: { species: 'oak', height: 12, note } })));
    expect(new Set(outcomes)).toEqual(new Set(['APPLIED']));
  }
  // A history of HISTORY versions each, written straight into the tables: through the API it
  // would take 99,000 changes, minutes on PGlite, for data the reads below only need to find.
  await t.database.db.execute(sql`insert into entity_versions (entity_id, dataset_id, version, applied_on, base_version, action, label, data, changed, source, change_id, device_id)
    select e.id, e.dataset_id, g, g - 1, g - 1, 'UPDATE', e.label, jsonb_set(e.data, '{height}', to_jsonb(g)), jsonb_build_object('height', g), 'ONLINE', gen_random_uuid()::text, 'tab-' || (g % 7)
    from entities e join datasets d on d.id = e.dataset_id, generate_series(2, ${HISTORY}) g where d.name = ${ds}`);
  await t.database.db.execute(sql`update entities e set version = ${HISTORY}, data = jsonb_set(e.data, '{height}', to_jsonb(${HISTORY}::int)) from datasets d where d.id = e.dataset_id and d.name = ${ds}`);
  // One held change on each: the second step of an offline run whose first never arrived.
  const runs = ids.map((id) => ({ id: randomUUID(), dataset: ds, deviceId: 'tab-1', entityId: id, action: 'UPDATE', branchId: randomUUID(), trunkVersion: HISTORY, baseVersion: HISTORY + 1, data: { note: 'later' } }));
  for (let i = 0; i < HELD; i += 500) expect(new Set(await submit(runs.slice(i, i + 500)))).toEqual(new Set(['HELD']));
  branchId = runs[0]!.branchId;
  // HARD conflicts: two edits of the same version setting the same property.
  const edits = ids.slice(0, CONFLICTED).flatMap((id) => [1, 2].map((k) => ({ id: randomUUID(), dataset: ds, deviceId: `tab-${k}`, entityId: id, action: 'UPDATE', baseVersion: HISTORY, data: { species: `k${k}` } })));
  expect(await submit(edits)).toHaveLength(2 * CONFLICTED);
  // Devices whose share holds every entity, more than a page of subsetTokens: written straight into
  // the table (their subset logs are not what the reads below load).
  await t.database.db.execute(sql`insert into api_tokens (name, secret_hash, role, device_id, datasets, subset)
    select 'Tablet ' || g, md5(random()::text || g), 'collector', 'tab-' || g, array[${ds}]::text[], ${JSON.stringify([{ property: 'height', values: [String(HISTORY)] }])}::jsonb
    from generate_series(1, ${SUBSET_TOKENS}) g`);
}, 600_000);
afterAll(() => t?.close());

describe('what a document costs is what it can load', () => {
  it('every list field of the schema is in a worst document below (or is a result in hand)', () => {
    const isList = (type: GraphQLOutputType): boolean => (isNonNullType(type) ? isList(type.ofType) : isListType(type));
    const lists = new Set<string>();
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__') || !(isObjectType(type) || isInterfaceType(type))) continue;
      for (const f of Object.values(type.getFields())) if (isList(f.type) && !isLeafType(getNamedType(f.type))) lists.add(`${type.name}.${f.name}`);
    }
    const covered = new Set<string>(IN_HAND_LISTS);
    for (const w of WORST) {
      const info = new TypeInfo(schema);
      visit(parse(w.query), visitWithTypeInfo(info, { Field: () => void (info.getParentType() && covered.add(`${info.getParentType()!.name}.${info.getFieldDef()?.name}`)) }));
    }
    expect([...lists].filter((l) => !covered.has(l)).sort(), [...covered].join(' ')).toEqual([]);
  });

  it('the issue’s document, heldChanges { entity { versions(limit: 1000) } }, is refused before it runs', async () => {
    const query = `query($ds: String) { heldChanges(dataset: $ds) { nodes { changeId entity { id label data versions(limit: 1000) { ${BODY} } } } } }`;
    const { result, ms } = await measured(() => t.gql(query, { ds }));
    expect(result.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(result.data ?? null).toBeNull();
    // Refused on its price alone: no held change was read.
    expect(ms).toBeLessThan(TIME_BOUND_MS);
  });

  it.each(WORST.map((w) => [w.name, w] as const))('%s: the widest allowed answers within the bounds', async (_name, w) => {
    const n = widest(w.query, w.max);
    expect(price(w.query, n)).toBeLessThanOrEqual(limits.maxQueryComplexity);
    if (n < w.max) expect(price(w.query, n + 1)).toBeGreaterThan(limits.maxQueryComplexity);
    const { result, ms, heapGrowth } = await measured(() => t.gql(w.query, { ds, b: branchId, n }));
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    expect(result.status).toBe(200);
    expect(ms).toBeLessThan(TIME_BOUND_MS);
    expect(heapGrowth).toBeLessThan(HEAP_BOUND_BYTES);
    // One past it is refused, unpriced work never starts.
    if (n < w.max) expect((await t.gql(w.query, { ds, b: branchId, n: n + 1 })).errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    // And the server answers others meanwhile and after.
    expect((await fetch(new URL('/health', t.url))).status).toBe(200);
  });
});
