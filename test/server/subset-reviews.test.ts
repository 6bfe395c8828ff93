import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, ok } from '../helpers/domain.js';
import { socketClient, trackSubscriptions, waitUntil, type SocketClient, type Stream, type Tracker } from '../helpers/live.js';
import { pullable } from '../helpers/subset-device.js';

/**
 * A reviewer's versions reach the devices whose subset holds the entity (issue 20): a resolve with
 * values or a label, and a restore, are versions like a batch's, so a device pulls them, an entity
 * they move out leaves, one they move in arrives with its state, and a subset listener hears them.
 * Through the API: pulls over HTTP, subscriptions over a real socket.
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

const PROPS = ['district', 'n'];
const CREATE = `mutation($ds: [String!], $d: String, $s: [SubsetRuleInput!]) { createApiToken(name: "tablet", role: COLLECTOR, deviceId: $d, datasets: $ds, subset: $s) {
  ... on MutationCreateApiTokenSuccess { data { secret } } } }`;
const VERSION = 'entityId version label data deleted source entity { data }';
const PULL = `query($ds: String!, $c: String) { changesSince(dataset: $ds, cursor: $c) {
  __typename ... on QueryChangesSinceSuccess { data { cursor hasMore left versions { ${VERSION} } entered { ${VERSION} } } } ... on DomainError { code message } } }`;
const RESOLVE = `mutation($id: ID!, $v: Int!, $values: JSONObject, $label: String) { resolveConflict(entityId: $id, version: $v, values: $values, label: $label) {
  __typename ... on MutationResolveConflictSuccess { data { version data } } ... on DomainError { code message } } }`;
const RESTORE = `mutation($id: ID!, $v: Int!) { restoreEntity(entityId: $id, version: $v) {
  __typename ... on MutationRestoreEntitySuccess { data { version deleted } } ... on DomainError { code message } } }`;
const CHANGED = `subscription($ds: String!) { entityChanged(dataset: $ds) { entityId version leftSubset entityVersion { data deleted } } }`;

interface Page {
  cursor: string;
  hasMore: boolean;
  left: string[];
  versions: { entityId: string; version: number; label: string; data: Record<string, unknown>; deleted: boolean; source: string; entity: { data: unknown } | null }[];
  entered: Page['versions'];
}

/** A tablet with a subset of district d1: its pulls over HTTP, from where it last stopped. */
async function tablet(ds: string) {
  const secret = ok(await t.gql(CREATE, { ds: [ds], d: `tab-${randomUUID().slice(0, 6)}`, s: [{ property: 'district', values: ['d1'] }] })).createApiToken.data.secret as string;
  let cursor: string | null = null;
  return {
    secret,
    async pull(): Promise<Page> {
      await pullable(t.database.db);
      const r = ok(await t.gqlAs(secret, PULL, { ds, c: cursor })).changesSince;
      expect(r.__typename, JSON.stringify(r)).toBe('QueryChangesSinceSuccess');
      cursor = r.data.cursor;
      return r.data;
    },
  };
}

/** An entity in a HARD conflict at version 3 (n set twice from version 1). */
async function conflicted(ds: string, district: string): Promise<string> {
  const id = await d.create(ds, 'Tree', { district, n: 0 });
  await d.update(ds, id, 1, { n: 1 });
  expect(await d.update(ds, id, 1, { n: 2 })).toMatchObject({ version: 3, conflict: 'HARD' });
  return id;
}

const resolve = async (vars: Record<string, unknown>) => {
  const r = ok(await t.gql(RESOLVE, vars)).resolveConflict;
  expect(r.__typename, JSON.stringify(r)).toBe('MutationResolveConflictSuccess');
  return r.data;
};

const shown = (p: Page) => ({ versions: p.versions.map((v) => [v.entityId, v.version, v.label, v.data, v.deleted, v.source, v.entity]), entered: p.entered, left: p.left });

describe("a reviewer's version reaches the devices whose subset holds the entity", () => {
  it('a resolve with values and a label that keeps the entity in: the device pulls the version', async () => {
    const ds = await d.createDataset(PROPS);
    const mine = await conflicted(ds, 'd1');
    const device = await tablet(ds);
    expect((await device.pull()).entered.map((v) => [v.entityId, v.version])).toEqual([[mine, 3]]);
    expect(await resolve({ id: mine, v: 3, values: { n: 7 }, label: 'Oak' })).toEqual({ version: 4, data: { district: 'd1', n: 7 } });
    expect(shown(await device.pull())).toEqual({ versions: [[mine, 4, 'Oak', { district: 'd1', n: 7 }, false, 'REVIEW', { data: { district: 'd1', n: 7 } }]], entered: [], left: [] });
    // A label alone is a version too.
    await d.update(ds, mine, 4, { n: 8 });
    expect(await d.update(ds, mine, 4, { n: 9 })).toMatchObject({ version: 6, conflict: 'HARD' });
    await device.pull();
    expect(await resolve({ id: mine, v: 6, label: 'Elm' })).toEqual({ version: 7, data: { district: 'd1', n: 9 } });
    expect(shown(await device.pull()).versions).toEqual([[mine, 7, 'Elm', { district: 'd1', n: 9 }, false, 'REVIEW', { data: { district: 'd1', n: 9 } }]]);
  });

  it('a resolve whose values move the entity out: it leaves the device, and nothing of it is shown', async () => {
    const ds = await d.createDataset(PROPS);
    const mine = await conflicted(ds, 'd1');
    const device = await tablet(ds);
    await device.pull();
    await resolve({ id: mine, v: 3, values: { district: 'd2' } });
    expect(shown(await device.pull())).toEqual({ versions: [], entered: [], left: [mine] });
    // It is gone from the device's share: a later edit outside reaches it no more.
    await d.update(ds, mine, 4, { n: 5 });
    expect(shown(await device.pull())).toEqual({ versions: [], entered: [], left: [] });
  });

  it('a resolve whose values move the entity in: it arrives with its whole current state', async () => {
    const ds = await d.createDataset(PROPS);
    const theirs = await conflicted(ds, 'd2');
    const device = await tablet(ds);
    expect(shown(await device.pull())).toEqual({ versions: [], entered: [], left: [] });
    await resolve({ id: theirs, v: 3, values: { district: 'd1' }, label: 'Ash' });
    expect(shown(await device.pull())).toEqual({ versions: [[theirs, 4, 'Ash', { district: 'd1', n: 2 }, false, 'REVIEW', { data: { district: 'd1', n: 2 } }]], entered: [], left: [] });
    // Now in its share: later versions reach it.
    await d.update(ds, theirs, 4, { n: 3 });
    expect(shown(await device.pull()).versions.map((v) => [v[1], v[3]])).toEqual([[5, { district: 'd1', n: 3 }]]);
  });

  it('a restore of a deleted entity in the subset: the device that held the delete pulls the restored state', async () => {
    const ds = await d.createDataset(PROPS);
    const mine = await d.create(ds, 'Oak', { district: 'd1', n: 1 });
    const device = await tablet(ds);
    await device.pull();
    await d.remove(ds, mine, 1);
    expect(shown(await device.pull()).versions.map((v) => [v[1], v[4]])).toEqual([[2, true]]);
    const r = ok(await t.gql(RESTORE, { id: mine, v: 2 })).restoreEntity;
    expect(r).toEqual({ __typename: 'MutationRestoreEntitySuccess', data: { version: 3, deleted: false } });
    expect(shown(await device.pull())).toEqual({ versions: [[mine, 3, 'Oak', { district: 'd1', n: 1 }, false, 'REVIEW', { data: { district: 'd1', n: 1 } }]], entered: [], left: [] });
  });

  it('a device made after the delete is handed the restored entity, never the deleted one', async () => {
    const ds = await d.createDataset(PROPS);
    const mine = await d.create(ds, 'Oak', { district: 'd1', n: 1 });
    await d.remove(ds, mine, 1);
    const device = await tablet(ds);
    expect(shown(await device.pull())).toEqual({ versions: [], entered: [], left: [] });
    ok(await t.gql(RESTORE, { id: mine, v: 2 }));
    expect(shown(await device.pull()).versions).toEqual([[mine, 3, 'Oak', { district: 'd1', n: 1 }, false, 'REVIEW', { data: { district: 'd1', n: 1 } }]]);
  });
});

describe("a subset listener hears a reviewer's versions", () => {
  async function listener(ds: string): Promise<Stream> {
    const { secret } = await tablet(ds);
    const client = socketClient(t.url, { token: secret });
    clients.push(client);
    const before = tracker.opened();
    const s = client.subscribe(CHANGED, { ds });
    await waitUntil(() => tracker.opened() > before, 'the subscription to be live', 3000);
    return s;
  }

  it('in, out, into its share and restored; never one of another district', async () => {
    const ds = await d.createDataset(PROPS);
    const kept = await conflicted(ds, 'd1');
    const out = await conflicted(ds, 'd1');
    const into = await conflicted(ds, 'd2');
    const elsewhere = await conflicted(ds, 'd2');
    const deleted = await d.create(ds, 'Gone', { district: 'd1' });
    await d.remove(ds, deleted, 1);
    const changed = await listener(ds);
    await resolve({ id: kept, v: 3, values: { n: 7 } });
    await resolve({ id: elsewhere, v: 3, values: { n: 7 } });
    await resolve({ id: out, v: 3, values: { district: 'd2' } });
    await resolve({ id: into, v: 3, values: { district: 'd1' } });
    ok(await t.gql(RESTORE, { id: deleted, v: 2 }));
    const sentinel = await d.create(ds, 'Sentinel', { district: 'd1' });
    expect(await changed.take(5)).toEqual([
      { entityId: kept, version: 4, leftSubset: false, entityVersion: { data: { district: 'd1', n: 7 }, deleted: false } },
      { entityId: out, version: 4, leftSubset: true, entityVersion: null },
      { entityId: into, version: 4, leftSubset: false, entityVersion: { data: { district: 'd1', n: 2 }, deleted: false } },
      { entityId: deleted, version: 3, leftSubset: false, entityVersion: { data: { district: 'd1' }, deleted: false } },
      { entityId: sentinel, version: 1, leftSubset: false, entityVersion: { data: { district: 'd1' }, deleted: false } },
    ]);
    expect(changed.errors).toEqual([]);
  });
});
