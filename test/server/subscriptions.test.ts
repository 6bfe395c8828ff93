import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, useApp } from '../helpers/app.js';
import { domain, offline, offlineRun, RESULT, RUN_RESULT, type Domain, type Offline } from '../helpers/domain.js';
import { CHANGED_SUB, CONFLICT_SUB, FLUSHED_SUB, HELD_SUB, socketClient, trackSubscriptions, waitUntil, type SocketClient, type Stream, type Tracker } from '../helpers/live.js';

/**
 * Live events over GraphQL over WebSocket (graphql-ws, subprotocol graphql-transport-ws) on the
 * server's own port and path (DESIGN "Transport", step 7 "Publish"; issue 4).
 */

// No periodic flush: only flushBacklog forces held changes here.
const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
const o = offline(t);
let ws: SocketClient;
let tracker: Tracker;
beforeAll(async () => {
  tracker = trackSubscriptions(t.app.bus);
  ws = socketClient(t.url);
});
afterAll(async () => {
  await ws?.close();
});

const PROPS = ['height', 'species', 'note', 'age'];
const TOPIC: Record<string, string> = { [CONFLICT_SUB]: 'conflictDetected', [HELD_SUB]: 'changeHeld', [FLUSHED_SUB]: 'backlogFlushed', [CHANGED_SUB]: 'entityChanged' };

const open: Stream[] = [];
/** Subscribes over the socket and waits until the server holds the subscription. */
async function live<T = any>(query: string, ds: string, entityId?: string, client: SocketClient = ws): Promise<Stream<T>> {
  const before = tracker.opened();
  const s = client.subscribe<T>(query, { ds, ...(entityId ? { e: entityId } : {}) });
  open.push(s);
  await waitUntil(() => tracker.opened() > before, `the ${TOPIC[query]} subscription to be live`, 3000);
  return s;
}
afterAll(() => open.forEach((s) => s.close()));

/** Makes a SOFT conflict on a fresh entity of `ds` (version 3): a sentinel that ends a wait for "nothing else". */
async function softConflict(ds: string): Promise<string> {
  const id = await d.create(ds, 'Sentinel', { height: 1 });
  await d.update(ds, id, 1, { height: 2 });
  expect(await d.update(ds, id, 1, { species: 'elm' })).toMatchObject({ version: 3, conflict: 'SOFT' });
  return id;
}

describe('conflictDetected', () => {
  it('a HARD conflict produces exactly one event: type HARD, ["height"], version 3, the entity reloaded at version 3', async () => {
    const ds = await d.createDataset(PROPS);
    const conflicts = await live(CONFLICT_SUB, ds);
    const id = await d.create(ds, 'Oak', { height: 1, species: 'oak' });
    expect(await d.update(ds, id, 1, { height: 5 })).toMatchObject({ version: 2, conflict: null });
    expect(await d.update(ds, id, 1, { height: 7, note: 'measured' })).toMatchObject({ version: 3, conflict: 'HARD', conflictingProperties: ['height'] });
    const sentinel = await softConflict(ds);

    const events = await conflicts.take(2);
    expect(events).toEqual([
      {
        dataset: ds,
        entityId: id,
        version: 3,
        type: 'HARD',
        conflictingProperties: ['height'],
        entity: { id, label: 'Oak', version: 3, conflict: 'HARD', data: { height: 7, species: 'oak', note: 'measured' } },
      },
      { dataset: ds, entityId: sentinel, version: 3, type: 'SOFT', conflictingProperties: [], entity: expect.objectContaining({ id: sentinel, version: 3 }) },
    ]);
    expect(conflicts.errors).toEqual([]);
  });

  it('a SOFT conflict: type SOFT, no conflicting properties, the entity carries both writes', async () => {
    const ds = await d.createDataset(PROPS);
    const conflicts = await live(CONFLICT_SUB, ds);
    const id = await d.create(ds, 'Elm', { height: 1, species: 'elm' });
    await d.update(ds, id, 1, { height: 5 });
    expect(await d.update(ds, id, 1, { species: 'ash' })).toMatchObject({ version: 3, conflict: 'SOFT' });
    expect(await conflicts.take(1)).toEqual([
      { dataset: ds, entityId: id, version: 3, type: 'SOFT', conflictingProperties: [], entity: { id, label: 'Elm', version: 3, conflict: 'SOFT', data: { height: 5, species: 'ash' } } },
    ]);
  });

  it('lists every shared property, sorted, from all unseen versions', async () => {
    const ds = await d.createDataset(PROPS);
    const conflicts = await live(CONFLICT_SUB, ds);
    const id = await d.create(ds, 'Ash');
    await d.update(ds, id, 1, { species: 'elm' });
    await d.update(ds, id, 2, { height: 2 });
    await d.update(ds, id, 3, { note: 'n' });
    expect(await d.update(ds, id, 1, { species: 'fir', note: 'x', height: 9 })).toMatchObject({ version: 5, conflict: 'HARD' });
    expect((await conflicts.take(1)).map((e) => [e.version, e.type, e.conflictingProperties])).toEqual([[5, 'HARD', ['height', 'note', 'species']]]);
  });

  it('filters by dataset: a subscriber of A gets nothing of B, and B\'s subscriber only B\'s', async () => {
    const [a, b] = [await d.createDataset(PROPS), await d.createDataset(PROPS)];
    const onA = await live(CONFLICT_SUB, a);
    const onB = await live(CONFLICT_SUB, b);
    const inB = await softConflict(b);
    const inA = await softConflict(a);
    expect((await onA.take(1)).map((e) => [e.dataset, e.entityId])).toEqual([[a, inA]]);
    expect((await onB.take(1)).map((e) => [e.dataset, e.entityId])).toEqual([[b, inB]]);
    // B's event was published before A's, so had it passed A's filter it would have arrived first.
    expect(onA.values).toHaveLength(1);
  });

  it('filters by entityId (case-insensitively): events of other entities of the dataset do not arrive', async () => {
    const ds = await d.createDataset(PROPS);
    const target = randomUUID();
    const onTarget = await live(CONFLICT_SUB, ds, target.toUpperCase());
    const changesOfTarget = await live(CHANGED_SUB, ds, target);
    const other = await softConflict(ds); // 3 versions and a conflict of another entity first
    await d.create(ds, 'Target', { height: 1 }, target);
    await d.update(ds, target, 1, { height: 2 });
    await d.update(ds, target, 1, { height: 3 });
    expect(await onTarget.take(1)).toEqual([
      { dataset: ds, entityId: target, version: 3, type: 'HARD', conflictingProperties: ['height'], entity: { id: target, label: 'Target', version: 3, conflict: 'HARD', data: { height: 3 } } },
    ]);
    expect((await changesOfTarget.take(3)).map((e) => [e.entityId, e.version])).toEqual([
      [target, 1],
      [target, 2],
      [target, 3],
    ]);
    // The entity is reloaded when the event is delivered: never older than the event, maybe newer.
    for (const e of changesOfTarget.values) expect(e.entity.version).toBeGreaterThanOrEqual(e.version);
    expect(onTarget.values.concat(changesOfTarget.values).some((e) => e.entityId === other)).toBe(false);
  });
});

const RESOLVED_SUB = `subscription($ds: String!, $e: ID) { conflictResolved(dataset: $ds, entityId: $e) { dataset entityId version entity { id version conflict } } }`;
TOPIC[RESOLVED_SUB] = 'conflictResolved';
const RESOLVE = `mutation($id: ID!, $v: Int!) { resolveConflict(entityId: $id, version: $v) { __typename ... on DomainError { code } } }`;

describe('conflictResolved', () => {
  it("a reviewer's resolution is one event of its dataset (other dashboards drop the entity from their inbox); a refused one publishes nothing", async () => {
    const [ds, other] = [await d.createDataset(PROPS), await d.createDataset(PROPS)];
    const resolved = await live(RESOLVED_SUB, ds);
    const elsewhere = await live(RESOLVED_SUB, other);
    const id = await softConflict(ds);
    const calm = await d.create(ds, 'Calm', { height: 1 });
    expect((await t.gql(RESOLVE, { id: calm, v: 1 })).data.resolveConflict).toEqual({ __typename: 'DomainError', code: 'NOT_IN_CONFLICT' });
    expect((await t.gql(RESOLVE, { id, v: 3 })).data.resolveConflict.__typename).toBe('MutationResolveConflictSuccess');
    // The resolution of another dataset's entity, as a sentinel: it is published after the first.
    const sentinel = await softConflict(other);
    expect((await t.gql(RESOLVE, { id: sentinel, v: 3 })).data.resolveConflict.__typename).toBe('MutationResolveConflictSuccess');
    expect(await elsewhere.take(1)).toEqual([{ dataset: other, entityId: sentinel, version: 3, entity: { id: sentinel, version: 3, conflict: null } }]);
    expect(resolved.values).toEqual([{ dataset: ds, entityId: id, version: 3, entity: { id, version: 3, conflict: null } }]);
    expect(resolved.errors).toEqual([]);
  });
});

describe('changeHeld and backlogFlushed', () => {
  it('held changes then their predecessor: changeHeld for each (waitsFor, changeId, branchId), then one backlogFlushed RELEASED in run order', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    const held = await live(HELD_SUB, ds);
    const flushed = await live(FLUSHED_SUB, ds);
    const changed = await live(CHANGED_SUB, ds, id);
    const run = offlineRun(ds, id, 1, { deviceId: 'phone-1' });
    const [c1, c2, c3] = [run.update(1, { height: 1 }), run.update(2, { height: 2 }), run.update(3, { age: 3 })];

    expect(await o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    expect(await o.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(await held.take(2)).toEqual([
      { dataset: ds, entityId: id, changeId: c3.id, branchId: run.branchId, waitsFor: 2, heldChange: { changeId: c3.id, baseVersion: 3, waitsFor: 2 } },
      { dataset: ds, entityId: id, changeId: c2.id, branchId: run.branchId, waitsFor: 1, heldChange: { changeId: c2.id, baseVersion: 2, waitsFor: 1 } },
    ]);
    expect(flushed.values).toEqual([]);

    const r = await o.one(c1);
    expect(r).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(r.released.map((x) => [x.changeId, x.version])).toEqual([[c2.id, 3], [c3.id, 4]]);
    expect(await flushed.take(1)).toEqual([
      { dataset: ds, entityId: id, reason: 'RELEASED', changes: [{ changeId: c2.id, version: 3 }, { changeId: c3.id, version: 4 }], entity: { version: 4, data: { species: 'oak', height: 2, age: 3 } } },
    ]);
    expect((await changed.take(3)).map((e) => e.version)).toEqual([2, 3, 4]);
    // Both changeHeld arrived before the flush; no more changeHeld after.
    expect(Math.max(...held.stamps)).toBeLessThan(flushed.stamps[0]!);
    expect(held.values).toHaveLength(2);
  });

  it('a resent held change is a DUPLICATE and produces no second changeHeld', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    const held = await live(HELD_SUB, ds);
    const run = offlineRun(ds, id, 1);
    const c2 = run.update(2, { height: 2 });
    expect(await o.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(await o.one(c2)).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'HELD', waitsFor: 1 });
    const c3 = run.update(3, { age: 3 }); // the sentinel: a second, new held change
    expect(await o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    expect((await held.take(2)).map((e) => e.changeId)).toEqual([c2.id, c3.id]);
    await o.one(run.update(1, { note: 'one' })); // land the run so the shared backlog stays empty
  });

  it('a forced flush produces backlogFlushed FORCED for the forced change, then RELEASED for its successor, and a SOFT conflict', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    const flushed = await live(FLUSHED_SUB, ds);
    const conflicts = await live(CONFLICT_SUB, ds, id);
    const run = offlineRun(ds, id, 1);
    const [c2, c3] = [run.update(2, { height: 2 }), run.update(3, { age: 3 })];
    expect(await o.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(await o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });

    const forced = (await o.flush(0)).filter((r) => r.entityId === id);
    expect(forced.map((r) => [r.changeId, r.version, r.released.map((x) => [x.changeId, x.version])])).toEqual([[c2.id, 2, [[c3.id, 3]]]]);
    expect(await flushed.take(2)).toEqual([
      { dataset: ds, entityId: id, reason: 'FORCED', changes: [{ changeId: c2.id, version: 2 }], entity: { version: 3, data: { species: 'oak', height: 2, age: 3 } } },
      { dataset: ds, entityId: id, reason: 'RELEASED', changes: [{ changeId: c3.id, version: 3 }], entity: { version: 3, data: { species: 'oak', height: 2, age: 3 } } },
    ]);
    // A forced version is flagged SOFT so a reviewer sees it.
    expect((await conflicts.take(1)).map((e) => [e.version, e.type, e.conflictingProperties])).toEqual([[2, 'SOFT', []]]);
  });

  it('filters backlog events by entityId', async () => {
    const ds = await d.createDataset(PROPS);
    const [x, y] = [await d.create(ds, 'X'), await d.create(ds, 'Y')];
    const heldX = await live(HELD_SUB, ds, x);
    const flushedX = await live(FLUSHED_SUB, ds, x);
    const [runX, runY] = [offlineRun(ds, x, 1), offlineRun(ds, y, 1)];
    const [y2, x2] = [runY.update(2, { height: 2 }), runX.update(2, { height: 2 })];
    await o.one(y2);
    await o.one(runY.update(1, { height: 1 })); // releases y2
    await o.one(x2);
    await o.one(runX.update(1, { height: 1 })); // releases x2
    expect((await heldX.take(1)).map((e) => [e.entityId, e.changeId])).toEqual([[x, x2.id]]);
    expect((await flushedX.take(1)).map((e) => [e.entityId, e.reason, e.changes])).toEqual([[x, 'RELEASED', [{ changeId: x2.id, version: 3 }]]]);
  });
});

describe('the periodic flush publishes too', () => {
  it('a change held past the hold timeout is forced by the task and backlogFlushed FORCED arrives without any mutation', async () => {
    const app = await startTestApp({ holdTimeoutSeconds: 1, flushIntervalSeconds: 0.2 });
    const appTracker = trackSubscriptions(app.app.bus);
    const client = socketClient(app.url);
    try {
      const [ad, ao] = [domain(app), offline(app)];
      const ds = await ad.createDataset(PROPS);
      const id = await ad.create(ds, 'Oak');
      const s = client.subscribe(FLUSHED_SUB, { ds });
      await appTracker.waitActive('backlogFlushed');
      const c2 = offlineRun(ds, id, 1).update(2, { height: 2 });
      expect(await ao.one(c2)).toMatchObject({ outcome: 'HELD' });
      expect(await s.take(1, 5000)).toEqual([{ dataset: ds, entityId: id, reason: 'FORCED', changes: [{ changeId: c2.id, version: 2 }], entity: { version: 2, data: { height: 2 } } }]);
      // Not before the hold timeout: by the server's own clock, the version is at least 1 s younger than the change's arrival.
      const times = await app.gql(`query($c: String!, $e: ID!) { change(id: $c) { receivedAt } entity(id: $e) { versions { version createdAt } } }`, { c: c2.id, e: id });
      expect(times.data.entity.versions.map((v: { version: number }) => v.version), JSON.stringify(times.errors)).toEqual([1, 2]);
      expect(Date.parse(times.data.entity.versions[1].createdAt) - Date.parse(times.data.change.receivedAt)).toBeGreaterThanOrEqual(1000);
    } finally {
      await client.close();
      await app.close();
    }
  });
});

describe('queries and mutations over the socket', () => {
  const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) {
    __typename ... on MutationSubmitChangesSuccess { data { ${RUN_RESULT} } } ... on DomainError { code message } } }`;

  it('submitChanges over the socket applies, publishes, and a resend (socket or HTTP) is a DUPLICATE', async () => {
    const ds = await d.createDataset(PROPS);
    const changed = await live(CHANGED_SUB, ds);
    const id = randomUUID();
    const batch = [
      { id: randomUUID(), dataset: ds, entityId: id, action: 'CREATE', label: 'Socket oak', data: { height: 1 } },
      { id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 2 } },
    ];
    const first = await ws.request(SUBMIT, { c: batch });
    expect(first.errors).toBeUndefined();
    expect(first.data.submitChanges.__typename).toBe('MutationSubmitChangesSuccess');
    expect(first.data.submitChanges.data.map((r: any) => [r.changeId, r.outcome, r.version])).toEqual([
      [batch[0]!.id, 'APPLIED', 1],
      [batch[1]!.id, 'APPLIED', 2],
    ]);
    expect((await changed.take(2)).map((e) => [e.entityId, e.version])).toEqual([[id, 1], [id, 2]]);

    const again = await ws.request(SUBMIT, { c: batch });
    expect(again.data.submitChanges.data.map((r: any) => [r.outcome, r.originalOutcome, r.version])).toEqual([
      ['DUPLICATE', 'APPLIED', 1],
      ['DUPLICATE', 'APPLIED', 2],
    ]);
    const overHttp = await d.submit(...(batch as any));
    expect(overHttp.map((r) => [r.outcome, r.version])).toEqual([['DUPLICATE', 1], ['DUPLICATE', 2]]);

    // A query over the socket sees what the mutation made.
    const q = await ws.request(`query($id: ID!) { entity(id: $id) { id label version data versions { version } } }`, { id });
    expect(q).toEqual({ data: { entity: { id, label: 'Socket oak', version: 2, data: { height: 2 }, versions: [{ version: 1 }, { version: 2 }] } } });

    // The resends published nothing: the next event is the sentinel's version 3.
    await d.update(ds, id, 2, { height: 3 });
    expect((await changed.take(3)).map((e) => e.version)).toEqual([1, 2, 3]);
  });

  it('submitChange, createDataset and flushBacklog work over the socket; a DomainError comes back as data', async () => {
    const name = `ws_${randomUUID().slice(0, 8)}`;
    const created = await ws.request(`mutation($n: String!) { createDataset(name: $n, properties: ["height"]) { __typename ... on MutationCreateDatasetSuccess { data { name properties } } } }`, { n: name });
    expect(created).toEqual({ data: { createDataset: { __typename: 'MutationCreateDatasetSuccess', data: { name, properties: ['height'] } } } });
    const dup = await ws.request(`mutation($n: String!) { createDataset(name: $n, properties: ["height"]) { __typename ... on DomainError { code } } }`, { n: name });
    expect(dup).toEqual({ data: { createDataset: { __typename: 'DomainError', code: 'DATASET_EXISTS' } } });

    const id = randomUUID();
    const one = await ws.request(`mutation($c: ChangeInput!) { submitChange(change: $c) { ${RESULT} } }`, {
      c: { id: randomUUID(), dataset: name, entityId: id, action: 'CREATE', label: 'One' },
    });
    expect(one.data.submitChange).toMatchObject({ outcome: 'APPLIED', version: 1, entityId: id });
    const flushed = await ws.request(`mutation { flushBacklog(olderThanSeconds: 3600) { forced changes { changeId } } }`);
    expect(flushed).toEqual({ data: { flushBacklog: { forced: 0, changes: [] } } });
  });

  it('an invalid operation over the socket is an error, and the socket stays usable', async () => {
    await expect(ws.request('{ nope }')).rejects.toEqual([expect.objectContaining({ message: expect.stringContaining('nope') })]);
    expect(await ws.request('{ datasets { name } }')).toMatchObject({ data: { datasets: expect.any(Array) } });
  });
});

describe('events only after commit', () => {
  it('rejected changes, DUPLICATEs and reused ids publish nothing; only the applied changes of a mixed batch do', async () => {
    const ds = await d.createDataset(PROPS);
    const changed = await live(CHANGED_SUB, ds);
    const conflicts = await live(CONFLICT_SUB, ds);
    const id = await d.create(ds, 'Oak', { height: 1 });
    await changed.take(1);

    // Rejections of every kind: unknown property, entity not found, baseVersion ahead, unknown dataset.
    await d.expectRejected(await d.update(ds, id, 1, { colour: 'red' }), 'UNKNOWN_PROPERTY');
    await d.expectRejected(await d.update(ds, randomUUID(), 1, { height: 2 }), 'ENTITY_NOT_FOUND');
    await d.expectRejected(await d.update(ds, id, 9, { height: 2 }), 'BASE_VERSION_AHEAD');
    // A DUPLICATE of the create, and the create's id reused for another change.
    const original = (await d.change((await d.entity(id))!.versions[0]!.changeId))!;
    const resend = await d.one({ id: original.id, dataset: ds, entityId: id, action: 'CREATE', label: 'Oak', data: { height: 1 } });
    expect(resend).toMatchObject({ outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 1 });
    expect(await d.one({ id: original.id, dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 99 } })).toMatchObject({
      outcome: 'REJECTED',
      version: null,
      error: { code: 'CHANGE_ID_REUSED' },
    });

    // A mixed batch: applied, rejected, applied in conflict (HARD on height).
    const [a, r, c] = await d.submit(
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 2 } },
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { nope: 1 } },
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 3 } },
    );
    expect([a!.outcome, r!.outcome, c!.outcome, c!.conflict]).toEqual(['APPLIED', 'REJECTED', 'APPLIED', 'HARD']);

    // A batch publishes after its last change commits, so both of its events reload the entity at version 3.
    expect((await changed.take(3)).map((e) => [e.version, e.entity.version])).toEqual([[1, 1], [2, 3], [3, 3]]);
    expect((await conflicts.take(1)).map((e) => [e.version, e.type, e.entity.version])).toEqual([[3, 'HARD', 3]]);
    expect(changed.values).toHaveLength(3);
  });
});

describe('subscription lifecycle', () => {
  it('an unsubscribed subscription stops receiving; closing a client ends its subscriptions on the server', async () => {
    const ds = await d.createDataset(PROPS);
    const other = socketClient(t.url);
    const before = tracker.opened();
    const a = other.subscribe(CHANGED_SUB, { ds });
    const b = other.subscribe(CHANGED_SUB, { ds });
    await waitUntil(() => tracker.opened() >= before + 2, 'two live subscriptions');
    const baseline = tracker.active('entityChanged');
    const id = await d.create(ds, 'Oak');
    await a.take(1);
    await b.take(1);

    a.close();
    await waitUntil(() => tracker.active('entityChanged') === baseline - 1, 'the unsubscribed one to end on the server');
    await d.update(ds, id, 1, { height: 1 });
    expect((await b.take(2)).map((e) => e.version)).toEqual([1, 2]);
    expect(a.values.map((e) => e.version)).toEqual([1]);

    await other.close();
    await waitUntil(() => tracker.active('entityChanged') === baseline - 2, 'the closed client\'s subscriptions to end on the server');
  });
});
