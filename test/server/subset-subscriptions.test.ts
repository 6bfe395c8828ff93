import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, ok } from '../helpers/domain.js';
import { socketClient, trackSubscriptions, waitUntil, type SocketClient, type Stream, type Tracker } from '../helpers/live.js';

/**
 * Subscriptions follow the subset (issue 20), over a real socket: a listener whose token has a
 * subset gets events of entities in its share, an entityChanged with leftSubset when one leaves
 * (its entity then null), never an event of another; a reassignment applies to the open
 * subscription at once.
 */

const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
let tracker: Tracker;
const clients: SocketClient[] = [];
beforeAll(() => {
  tracker = trackSubscriptions(t.app.bus);
});
afterAll(async () => {
  for (const c of clients) await c.close();
});

const CHANGED = `subscription($ds: String!) { entityChanged(dataset: $ds) { entityId version leftSubset entity { data } entityVersion { data } } }`;
const CONFLICTS = `subscription($ds: String!) { conflictDetected(dataset: $ds) { entityId version type entity { data } } }`;
const RESOLVED = `subscription($ds: String!) { conflictResolved(dataset: $ds) { entityId version } }`;

async function tabletOn(ds: string, values: string[]): Promise<{ id: string; client: SocketClient }> {
  const r = ok(
    await t.gql(
      `mutation($ds: [String!], $s: [SubsetRuleInput!]) { createApiToken(name: "tablet", role: collector, datasets: $ds, subset: $s) { ... on MutationCreateApiTokenSuccess { data { secret token { id } } } } }`,
      { ds: [ds], s: [{ property: 'district', values }] },
    ),
  ).createApiToken.data;
  const client = socketClient(t.url, { token: r.secret });
  clients.push(client);
  return { id: r.token.id, client };
}

async function live<T = any>(client: SocketClient, query: string, ds: string): Promise<Stream<T>> {
  const before = tracker.opened();
  const s = client.subscribe<T>(query, { ds });
  await waitUntil(() => tracker.opened() > before, 'the subscription to be live', 3000);
  return s;
}

describe('a subscriber with a subset', () => {
  it('hears of entities in its share and of one leaving it, never of the others', async () => {
    const ds = await d.createDataset(['district', 'n']);
    const tablet = await tabletOn(ds, ['d1']);
    const changed = await live(tablet.client, CHANGED, ds);
    const a = await d.create(ds, 'A', { district: 'd1' });
    const b = await d.create(ds, 'B', { district: 'd2' });
    await d.update(ds, b, 1, { n: 1 });
    await d.update(ds, b, 2, { district: 'd1' });
    await d.update(ds, a, 1, { district: 'd2' });
    await d.update(ds, a, 2, { n: 5 });
    const sentinel = await d.create(ds, 'Sentinel', { district: 'd1' });
    const events = await changed.take(4);
    // `entity` is the entity as it is when the event is read: A may have left by then (null) or not.
    expect([null, { data: { district: 'd1' } }]).toContainEqual(events[0].entity);
    expect(events).toEqual([
      { entityId: a, version: 1, leftSubset: false, entity: events[0].entity, entityVersion: { data: { district: 'd1' } } },
      { entityId: b, version: 3, leftSubset: false, entity: { data: { district: 'd1', n: 1 } }, entityVersion: { data: { district: 'd1', n: 1 } } },
      { entityId: a, version: 2, leftSubset: true, entity: null, entityVersion: null },
      { entityId: sentinel, version: 1, leftSubset: false, entity: { data: { district: 'd1' } }, entityVersion: { data: { district: 'd1' } } },
    ]);
    expect(changed.errors).toEqual([]);
  });

  it('conflicts and resolutions only of its share', async () => {
    const ds = await d.createDataset(['district', 'n']);
    const tablet = await tabletOn(ds, ['d1']);
    const conflicts = await live(tablet.client, CONFLICTS, ds);
    const resolved = await live(tablet.client, RESOLVED, ds);
    const conflicted = async (district: string) => {
      const id = await d.create(ds, 'C', { district, n: 0 });
      await d.update(ds, id, 1, { n: 1 });
      expect(await d.update(ds, id, 1, { n: 2 })).toMatchObject({ conflict: 'HARD' });
      ok(await t.gql('mutation($id: ID!) { resolveConflict(entityId: $id, version: 3) { __typename } }', { id }));
      return id;
    };
    await conflicted('d2');
    const mine = await conflicted('d1');
    expect(await conflicts.take(1)).toEqual([{ entityId: mine, version: 3, type: 'HARD', entity: { data: { district: 'd1', n: 2 } } }]);
    expect(await resolved.take(1)).toEqual([{ entityId: mine, version: 3 }]);
  });

  it('a reassignment applies to an open subscription at once', async () => {
    const ds = await d.createDataset(['district', 'n']);
    const tablet = await tabletOn(ds, ['d1']);
    const changed = await live(tablet.client, CHANGED, ds);
    const a = await d.create(ds, 'A', { district: 'd1' });
    const b = await d.create(ds, 'B', { district: 'd2' });
    await changed.take(1);
    ok(await t.gql(`mutation($id: ID!) { setTokenSubset(tokenId: $id, subset: [{ property: "district", values: ["d2"] }]) { __typename } }`, { id: tablet.id }));
    await d.update(ds, a, 1, { n: 1 });
    await d.update(ds, b, 1, { n: 1 });
    const sentinel = await d.create(ds, 'Sentinel', { district: 'd2' });
    const events = await changed.take(3);
    expect(events.slice(1).map((e: { entityId: string; version: number; entity: unknown }) => [e.entityId, e.version, e.entity])).toEqual([
      [b, 2, { data: { district: 'd2', n: 1 } }],
      [sentinel, 1, { data: { district: 'd2' } }],
    ]);
  });

  it('a subscriber without a subset hears of everything, as before', async () => {
    const ds = await d.createDataset(['district']);
    const r = ok(await t.gql(`mutation($ds: [String!]) { createApiToken(name: "plain", role: collector, datasets: $ds) { ... on MutationCreateApiTokenSuccess { data { secret } } } }`, { ds: [ds] })).createApiToken.data;
    const client = socketClient(t.url, { token: r.secret });
    clients.push(client);
    const changed = await live(client, CHANGED, ds);
    const ids = [await d.create(ds, 'A', { district: 'd1' }), await d.create(ds, 'B', { district: 'd2' })];
    expect((await changed.take(2)).map((e: { entityId: string; leftSubset: boolean }) => [e.entityId, e.leftSubset])).toEqual(ids.map((id) => [id, false]));
  });
});
