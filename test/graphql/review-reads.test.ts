import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { useApp, type GqlResponse } from '../helpers/app.js';
import { domain, offline, offlineRun, ok, sync, uniqueName } from '../helpers/domain.js';
import { socketClient, waitUntil, type SocketClient } from '../helpers/live.js';

/**
 * Issue 19 items 5 and 6 and the reads the reviewer dashboard needs: refused changes, an unknown
 * dataset named by a read, the records view's filters, the competing values of a conflict,
 * devices, the daily series and a held change's step. Over real HTTP (and the socket for
 * subscriptions), both back ends.
 */
const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
const o = offline(t);
const s = sync(t);

const PROPS = ['height', 'species', 'note'];
const tokens = { trees: '', collector: '' };
let trees = '';
let ws: SocketClient;
beforeAll(async () => {
  trees = await d.createDataset(PROPS, uniqueName('trees'));
  tokens.trees = (await createToken(t.database.db, { name: 'Trees reviewer', role: 'reviewer', datasets: [trees] })).secret;
  tokens.collector = (await createToken(t.database.db, { name: 'tablet', role: 'collector' })).secret;
  ws = socketClient(t.url);
});
afterAll(() => ws?.close());

const codes = (res: GqlResponse) => res.errors?.map((e) => [e.extensions?.code, e.message]);
const rows = (r: unknown) => (Array.isArray(r) ? r : ((r as { rows: Record<string, unknown>[] }).rows ?? [])) as Record<string, unknown>[];

const REJECTED = `query($ds: String!, $d: String, $first: Int, $after: String) { rejectedChanges(dataset: $ds, deviceId: $d, first: $first, after: $after) {
  nodes { id deviceId dataset entityId outcome errorCode errorMessage payload receivedAt processedAt } pageInfo { hasNextPage endCursor } } }`;

describe('rejectedChanges', () => {
  it('lists what the change log refused, newest first, with code, message, device and the payload as sent; by device; paged', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 1 }, randomUUID());
    const first = await d.update(ds, id, 1, { colour: 'red' }, { deviceId: 'tab-1' });
    const second = await d.update(ds, randomUUID(), 1, { height: 2 }, { deviceId: 'tab-2' });
    const third = await d.one({ dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 9, data: { height: 3 }, deviceId: 'tab-1' });
    await d.update(ds, id, 1, { height: 4 }, { deviceId: 'tab-1' });
    const page = ok(await t.gql(REJECTED, { ds })).rejectedChanges;
    expect(page.nodes.map((n: any) => [n.id, n.deviceId, n.errorCode, n.outcome])).toEqual([
      [third.changeId, 'tab-1', 'BASE_VERSION_AHEAD', 'REJECTED'],
      [second.changeId, 'tab-2', 'ENTITY_NOT_FOUND', 'REJECTED'],
      [first.changeId, 'tab-1', 'UNKNOWN_PROPERTY', 'REJECTED'],
    ]);
    expect(page.nodes[2]).toMatchObject({
      dataset: ds, entityId: id, errorMessage: 'a property is not declared by the dataset: colour',
      payload: { id: first.changeId, deviceId: 'tab-1', dataset: ds, entityId: id, action: 'UPDATE', label: null, data: { colour: 'red' }, baseVersion: 1, trunkVersion: null, branchId: null },
    });
    expect(Date.parse(page.nodes[2].processedAt)).toBeGreaterThanOrEqual(Date.parse(page.nodes[2].receivedAt));
    expect(ok(await t.gql(REJECTED, { ds, d: 'tab-1' })).rejectedChanges.nodes.map((n: any) => n.id)).toEqual([third.changeId, first.changeId]);
    expect(ok(await t.gql(REJECTED, { ds, d: 'nobody' })).rejectedChanges.nodes).toEqual([]);

    const one = ok(await t.gql(REJECTED, { ds, first: 1 })).rejectedChanges;
    expect([one.nodes.map((n: any) => n.id), one.pageInfo.hasNextPage]).toEqual([[third.changeId], true]);
    const rest = ok(await t.gql(REJECTED, { ds, first: 5, after: one.pageInfo.endCursor })).rejectedChanges;
    expect([rest.nodes.map((n: any) => n.id), rest.pageInfo.hasNextPage]).toEqual([[second.changeId, first.changeId], false]);
    for (const after of ['bm9wZQ==', Buffer.from('DC:N:1; drop table changes').toString('base64'), Buffer.from('DC:S:x').toString('base64')]) {
      expect(codes(await t.gql(REJECTED, { ds, after }))).toEqual([['INVALID_CURSOR', `Invalid cursor "${after}"`]]);
    }
  });

  it('a held change refused when it was released or forced is listed too', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 1 });
    const run = offlineRun(ds, id, 1, { deviceId: 'tab-3' });
    const held = run.update(2, { height: 5 });
    expect(await o.one(held)).toMatchObject({ outcome: 'HELD' });
    expect(await d.remove(ds, id, 1)).toMatchObject({ version: 2 });
    ok(await t.gql(`mutation($c: String!) { flushBacklog(olderThanSeconds: 0, changeId: $c) { forced } }`, { c: held.id }));
    expect(ok(await t.gql(REJECTED, { ds })).rejectedChanges.nodes).toEqual([expect.objectContaining({ id: held.id, deviceId: 'tab-3', errorCode: 'ENTITY_DELETED' })]);
  });
});

describe('a read naming a dataset that does not exist', () => {
  const READS: [string, string][] = [
    ['conflicts', 'query($ds: String!) { conflicts(dataset: $ds) { nodes { id } } }'],
    ['conflictInbox', 'query($ds: String!) { conflictInbox(dataset: $ds) { nodes { id } } }'],
    ['entities', 'query($ds: String!) { entities(dataset: $ds) { nodes { id } } }'],
    ['heldChanges', 'query($ds: String!) { heldChanges(dataset: $ds) { nodes { changeId } } }'],
    ['rejectedChanges', 'query($ds: String!) { rejectedChanges(dataset: $ds) { nodes { id } } }'],
  ];
  it.each(READS)('%s: UNKNOWN_DATASET (a typo is not "nothing to do"); a restricted token still gets FORBIDDEN first', async (field, query) => {
    for (const ds of ['no_such_dataset', 'not a name']) {
      const res = await t.gql(query, { ds });
      expect(codes(res)).toEqual([['UNKNOWN_DATASET', `no dataset named "${ds}"`]]);
      expect(res.data?.[field] ?? null).toBeNull();
      // Restricted to other datasets: refused before anything is looked up, so no name can be probed.
      expect(codes(await t.gqlAs(tokens.trees, query, { ds }))).toEqual([['FORBIDDEN', "the token's role, datasets or device do not allow this"]]);
    }
    // The existing dataset answers.
    expect(codes(await t.gqlAs(tokens.trees, query, { ds: trees }))).toBeUndefined();
  });

  it('changesSince keeps its typed UNKNOWN_DATASET', async () => {
    expect((await s.pullRaw('no_such_dataset')).__typename).toBe('DomainError');
    expect(await s.pullRaw('no_such_dataset')).toMatchObject({ code: 'UNKNOWN_DATASET' });
  });

  it.each(['entityChanged', 'conflictDetected', 'changeHeld', 'backlogFlushed', 'conflictResolved'])('the %s subscription: UNKNOWN_DATASET over the socket; FORBIDDEN for a restricted token', async (field) => {
    const query = `subscription($ds: String!) { ${field}(dataset: $ds) { entityId } }`;
    const stream = ws.subscribe(query, { ds: 'no_such_dataset' });
    await waitUntil(() => stream.errors.length > 0 || stream.completed, 'the refusal', 3000);
    expect(JSON.stringify(stream.errors)).toContain('UNKNOWN_DATASET');
    expect(stream.values).toEqual([]);
    const restricted = socketClient(t.url, { token: tokens.trees });
    try {
      const refused = restricted.subscribe(query, { ds: 'no_such_dataset' });
      await waitUntil(() => refused.errors.length > 0 || refused.completed, 'the refusal', 3000);
      expect(JSON.stringify(refused.errors)).toContain('FORBIDDEN');
      expect(JSON.stringify(refused.errors)).not.toContain('UNKNOWN_DATASET');
    } finally {
      await restricted.close();
    }
  });
});

const RECORDS = `query($ds: String!, $search: String, $p: PropertyFilterInput, $inConflict: Boolean, $c: ConflictType, $first: Int, $after: String) {
  entities(dataset: $ds, search: $search, property: $p, inConflict: $inConflict, conflict: $c, first: $first, after: $after) { nodes { label } pageInfo { hasNextPage endCursor } } }`;

describe('the records view: entities searched and filtered', () => {
  it('by label (any case, % and _ literal), by a property value (null: unset), by conflict state; paged; UNKNOWN_PROPERTY', async () => {
    const ds = await d.createDataset(PROPS);
    const oak = await d.create(ds, 'Old Oak', { species: 'oak', height: 12 });
    await d.create(ds, 'oak sapling', { species: 'oak', height: 1 });
    await d.create(ds, 'Birch 100%', { species: 'birch', height: { m: 3 } });
    await d.create(ds, 'Birch_2', { species: 'birch' });
    await d.update(ds, oak, 1, { height: 13 });
    expect(await d.update(ds, oak, 1, { height: 14 })).toMatchObject({ conflict: 'HARD' });
    const labels = async (vars: Record<string, unknown>) => ok(await t.gql(RECORDS, { ds, ...vars })).entities.nodes.map((n: { label: string }) => n.label).sort();
    expect(await labels({ search: 'OAK' })).toEqual(['Old Oak', 'oak sapling']);
    expect(await labels({ search: '100%' })).toEqual(['Birch 100%']);
    expect(await labels({ search: '%' })).toEqual(['Birch 100%']);
    expect(await labels({ search: '_' })).toEqual(['Birch_2']);
    expect(await labels({ search: '   ' })).toHaveLength(4);
    expect(await labels({ p: { name: 'species', value: 'birch' } })).toEqual(['Birch 100%', 'Birch_2']);
    expect(await labels({ p: { name: 'height', value: { m: 3 } } })).toEqual(['Birch 100%']);
    expect(await labels({ p: { name: 'height', value: 14 } })).toEqual(['Old Oak']);
    expect(await labels({ p: { name: 'height' } })).toEqual(['Birch_2']);
    expect(await labels({ p: { name: 'note', value: null } })).toHaveLength(4);
    expect(await labels({ inConflict: true })).toEqual(['Old Oak']);
    expect(await labels({ inConflict: false })).toEqual(['Birch 100%', 'Birch_2', 'oak sapling']);
    expect(await labels({ inConflict: false, c: 'HARD' })).toEqual([]);
    expect(await labels({ search: 'oak', p: { name: 'species', value: 'oak' }, inConflict: false })).toEqual(['oak sapling']);
    const first = ok(await t.gql(RECORDS, { ds, search: 'i', first: 1 })).entities;
    const rest = ok(await t.gql(RECORDS, { ds, search: 'i', first: 5, after: first.pageInfo.endCursor })).entities;
    expect([...first.nodes, ...rest.nodes].map((n: { label: string }) => n.label).sort()).toEqual(['Birch 100%', 'Birch_2', 'oak sapling']);
    expect(codes(await t.gql(RECORDS, { ds, p: { name: 'colour', value: 'red' } }))).toEqual([['UNKNOWN_PROPERTY', 'the dataset does not declare the property "colour"']]);
  });
});

const DETAILS = `query($id: ID!) { entity(id: $id) { conflictDetails { property now { value version deviceId source conflicting } before { value version deviceId } writes { value version deviceId source conflicting } } } }`;

describe('Entity.conflictDetails: the competing values', () => {
  it('per conflicting property: the value now, before the conflict, and each write with its device; empty for SOFT and once resolved', async () => {
    const id = await d.create(trees, 'Oak', { height: 1, species: 'oak' }, randomUUID());
    await d.update(trees, id, 1, { height: 2 }, { deviceId: 'office-1' });
    await d.update(trees, id, 2, { note: 'x' }, { deviceId: 'office-1' });
    expect(await d.update(trees, id, 1, { height: 3, species: 'elm' }, { deviceId: 'tablet-7' })).toMatchObject({ version: 4, conflict: 'HARD', conflictingProperties: ['height'] });
    const details = ok(await t.gql(DETAILS, { id })).entity.conflictDetails;
    expect(details).toEqual([
      {
        property: 'height',
        now: { value: 3, version: 4, deviceId: 'tablet-7', source: 'ONLINE', conflicting: true },
        before: { value: 1, version: 1, deviceId: null },
        writes: [
          { value: 2, version: 2, deviceId: 'office-1', source: 'ONLINE', conflicting: false },
          { value: 3, version: 4, deviceId: 'tablet-7', source: 'ONLINE', conflicting: true },
        ],
      },
    ]);
    ok(await t.gql(`mutation($id: ID!) { resolveConflict(entityId: $id, version: 4, values: { height: 2 }) { __typename } }`, { id }));
    expect(ok(await t.gql(DETAILS, { id })).entity.conflictDetails).toEqual([]);
    const soft = await d.create(trees, 'Soft', { height: 1 });
    await d.update(trees, soft, 1, { height: 2 });
    expect(await d.update(trees, soft, 1, { note: 'n' })).toMatchObject({ conflict: 'SOFT' });
    expect(ok(await t.gql(DETAILS, { id: soft })).entity.conflictDetails).toEqual([]);
  });

  it('for a run that crossed an online edit: before is the trunk, the run is the author; a page of entities loads them together', async () => {
    const id = await d.create(trees, 'Oak', { height: 1 });
    expect(await d.update(trees, id, 1, { height: 2 }, { deviceId: 'office-1' })).toMatchObject({ version: 2 });
    const run = offlineRun(trees, id, 1, { deviceId: 'tablet-7' });
    expect(await o.submit(run.update(1, { note: 'a' }), run.update(2, { height: 5 }))).toMatchObject([{ version: 3 }, { version: 4, conflict: 'HARD' }]);
    const e = ok(await t.gql(`query($id: ID!) { entity(id: $id) { conflictingProperties conflictDetails { property before { version value } writes { version value conflicting } now { value } } } }`, { id })).entity;
    expect(e.conflictingProperties).toEqual(['height']);
    expect(e.conflictDetails).toEqual([{ property: 'height', before: { version: 1, value: 1 }, writes: [{ version: 2, value: 2, conflicting: false }, { version: 4, value: 5, conflicting: true }], now: { value: 5 } }]);
    const page = ok(await t.gqlAs(tokens.trees, `query($ds: String!) { conflictInbox(dataset: $ds, first: 50) { nodes { id conflictDetails { property } } } }`, { ds: trees })).conflictInbox.nodes;
    expect(page.find((n: { id: string }) => n.id === id).conflictDetails).toEqual([{ property: 'height' }]);
  });
});

const DEVICES = `query($ds: String!, $first: Int, $after: String) { dataset(name: $ds) { devices(first: $first, after: $after) { nodes { deviceId lastChangeAt heldChanges rejectedLastDay lastPullAt } endCursor hasNextPage } } }`;

describe('Dataset.devices', () => {
  it('each device that sent or pulled: its last change, changes held, refused in the last day, last pull; paged by id', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 1 }, randomUUID());
    await d.update(ds, id, 1, { height: 2 }, { deviceId: 'tab-1' });
    await d.update(ds, id, 2, { colour: 'x' }, { deviceId: 'tab-1' });
    await d.update(ds, randomUUID(), 1, { height: 2 }, { deviceId: 'tab-1' });
    expect(await o.one(offlineRun(ds, id, 2, { deviceId: 'tab-1' }).update(3, { height: 9 }))).toMatchObject({ outcome: 'HELD' });
    await d.update(ds, id, 2, { note: 'n' }, { deviceId: 'tab-3' });
    await s.pull(ds, { deviceId: 'tab-2' });
    const page = ok(await t.gql(DEVICES, { ds })).dataset.devices;
    expect(page.hasNextPage).toBe(false);
    expect(page.nodes.map((n: any) => [n.deviceId, n.heldChanges, n.rejectedLastDay, n.lastChangeAt !== null, n.lastPullAt !== null])).toEqual([
      ['tab-1', 1, 2, true, false],
      ['tab-2', 0, 0, false, true],
      ['tab-3', 0, 0, true, false],
    ]);
    const last = rows(await t.database.db.execute(sql`select max(received_at) as at from changes where dataset_name = ${ds} and device_id = 'tab-1'`))[0]!.at;
    expect(Date.parse(page.nodes[0].lastChangeAt)).toBe(new Date(last as string).getTime());
    // The pull is noted once a minute, not on every pull.
    const pulledAt = page.nodes[1].lastPullAt;
    await s.pull(ds, { deviceId: 'tab-2' });
    expect(ok(await t.gql(DEVICES, { ds })).dataset.devices.nodes[1].lastPullAt).toBe(pulledAt);

    const one = ok(await t.gql(DEVICES, { ds, first: 1 })).dataset.devices;
    expect([one.nodes.map((n: any) => n.deviceId), one.hasNextPage]).toEqual([['tab-1'], true]);
    const next = ok(await t.gql(DEVICES, { ds, first: 2, after: one.endCursor })).dataset.devices;
    expect([next.nodes.map((n: any) => n.deviceId), next.hasNextPage]).toEqual([['tab-2', 'tab-3'], false]);
    expect(codes(await t.gql(DEVICES, { ds, after: '***' }))).toEqual([['INVALID_CURSOR', 'Invalid cursor "***"']]);
    // Collectors see the dataset, not its devices.
    const asCollector = await t.gqlAs(tokens.collector, DEVICES, { ds });
    expect(asCollector.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
  });
});

const ACTIVITY = `query($ds: String!, $days: Int) { dataset(name: $ds) { activity(days: $days) { day conflictsOpened conflictsResolved backlog } } }`;

describe('Dataset.activity: the daily series', () => {
  it('conflicts opened and resolved and the backlog per UTC day, from stored times', async () => {
    const ds = await d.createDataset(PROPS);
    const db = t.database.db;
    const id = await d.create(ds, 'Oak', { height: 1 });
    await d.update(ds, id, 1, { height: 2 });
    expect(await d.update(ds, id, 1, { height: 3 })).toMatchObject({ version: 3, conflict: 'HARD' });
    expect(await d.update(ds, id, 1, { note: 'n' })).toMatchObject({ version: 4, conflict: 'SOFT' });
    // Version 3's conflict was opened two days ago.
    await db.execute(sql`update entity_versions set created_at = now() - interval '2 days' where entity_id = ${id}::uuid and version = 3`);
    // A change held three days ago and forced yesterday; another held now.
    const gone = offlineRun(ds, id, 4, { deviceId: 'tab-1' }).update(2, { note: 'forced' });
    expect(await o.one(gone)).toMatchObject({ outcome: 'HELD' });
    await db.execute(sql`update held_changes set held_since = now() - interval '3 days' where change_id = ${gone.id}`);
    await db.execute(sql`update changes set received_at = now() - interval '3 days' where change_id = ${gone.id}`);
    ok(await t.gql(`mutation($c: String!) { flushBacklog(olderThanSeconds: 0, changeId: $c) { forced } }`, { c: gone.id }));
    await db.execute(sql`update entity_versions set created_at = now() - interval '1 day' where change_id = ${gone.id}`);
    expect(await o.one(offlineRun(ds, id, 5, { deviceId: 'tab-1' }).update(2, { note: 'waits' }))).toMatchObject({ outcome: 'HELD' });
    ok(await t.gql(`mutation($id: ID!) { resolveConflict(entityId: $id, version: 5) { __typename } }`, { id }));

    const series = ok(await t.gql(ACTIVITY, { ds })).dataset.activity;
    expect(series).toHaveLength(30);
    const day = (ago: number) => new Date(Date.now() - ago * 86_400_000).toISOString().slice(0, 10);
    expect(series.at(-1).day).toBe(day(0));
    expect(series[0].day).toBe(day(29));
    const last4 = series.slice(-4);
    // Near midnight UTC "n days ago" may straddle two days; the totals still hold.
    expect(last4.reduce((n: number, x: any) => n + x.conflictsOpened, 0)).toBe(3);
    expect(series.at(-1)).toMatchObject({ conflictsResolved: 3, backlog: 1 });
    expect(last4.map((x: any) => x.backlog)).toEqual([1, 1, 0, 1]);
    expect(series.slice(0, -4).every((x: any) => x.backlog === 0 && x.conflictsOpened === 0 && x.conflictsResolved === 0)).toBe(true);
    expect(ok(await t.gql(ACTIVITY, { ds, days: 1 })).dataset.activity).toEqual([series.at(-1)]);
    expect(ok(await t.gql(ACTIVITY, { ds, days: 1000 })).dataset.activity).toHaveLength(90);
  });
});

describe('HeldChange.step and waitsForStep', () => {
  it('count the run from 1: on a trunk, and after an offline create', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { height: 1 });
    const onTrunk = offlineRun(ds, id, 1).update(3, { height: 3 });
    const offlineCreate = offlineRun(ds, randomUUID(), null).update(1, { height: 1 });
    await o.submit(onTrunk, offlineCreate);
    const held = ok(await t.gql(`query($ds: String!) { heldChanges(dataset: $ds) { nodes { changeId baseVersion waitsFor step waitsForStep } } }`, { ds })).heldChanges.nodes;
    expect(held).toEqual([
      { changeId: onTrunk.id, baseVersion: 3, waitsFor: 2, step: 3, waitsForStep: 2 },
      { changeId: offlineCreate.id, baseVersion: 1, waitsFor: 0, step: 2, waitsForStep: 1 },
    ]);
  });
});
