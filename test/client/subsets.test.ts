import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FetchLike } from '../../packages/client/src/http.js';
import type { SyncClient } from '../../packages/client/src/sync-client.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { domain, ok } from '../helpers/domain.js';
import { createDataset, newClient, record, serverEntity, type Recorded } from './helpers.js';

/**
 * The client library takes its token's subset as it comes (issue 20, item 5), against a real
 * started server: its first sync brings its share (entered), entities that enter by edits or a
 * reassignment appear, those that leave are dropped, and its view never shows an entity outside
 * the share. An admin reassigns the device while it is offline with a pending edit to an entity
 * that leaves: the edit is still sent and answered, then the entity is dropped.
 */

let t: TestApp;
const clients: SyncClient[] = [];
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0 });
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await t.close();
});

const district = (...values: string[]) => [{ property: 'district', values }];

/** A collector token bound to a device with a subset of `ds` (null: the whole dataset), and a client of it (HTTP only when `fetchImpl` stands in). */
async function tablet(ds: string, values: string[] | null, opts: { fetchImpl?: FetchLike } = {}) {
  const deviceId = `tablet-${Math.random().toString(16).slice(2, 8)}`;
  const made = ok(
    await t.gql(
      `mutation($ds: [String!], $d: String, $s: [SubsetRuleInput!]) { createApiToken(name: "tablet", role: COLLECTOR, deviceId: $d, datasets: $ds, subset: $s) {
        ... on MutationCreateApiTokenSuccess { data { secret token { id } } } } }`,
      { ds: [ds], d: deviceId, s: values && district(...values) },
    ),
  ).createApiToken.data;
  const client = await newClient(t.url, { deviceId, token: made.secret, datasets: [ds], ...(opts.fetchImpl ? { fetchImpl: opts.fetchImpl, webSocketImpl: null } : {}) });
  clients.push(client);
  const events = record(client);
  return { client, events, tokenId: made.token.id as string };
}

async function reassign(tokenId: string, values: string[]) {
  const r = ok(await t.gql(`mutation($id: ID!, $s: [SubsetRuleInput!]!) { setTokenSubset(tokenId: $id, subset: $s) { __typename } }`, { id: tokenId, s: district(...values) })).setTokenSubset;
  expect(r.__typename).toBe('MutationSetTokenSubsetSuccess');
}

/** What the client shows of a dataset: each entity's id, label and data, by label. */
const shown = (client: SyncClient, ds: string) =>
  Object.fromEntries(
    client
      .list(ds)
      .map((v) => [v.label, { id: v.id, data: v.data }])
      .sort(([a], [b]) => String(a).localeCompare(String(b))),
  );

const leftOf = (events: Recorded) => events.left.map((e) => [e.entityId, e.dropped.length]);

describe('a device with a subset', () => {
  it('its first sync brings its share; entities entering by edits appear, leaving ones are dropped; nothing outside is shown', async () => {
    const ds = await createDataset(t, ['district', 'n']);
    const d = domain(t);
    const a = await d.create(ds, 'A', { district: 'd1' });
    const b = await d.create(ds, 'B', { district: 'd2' });
    const c = await d.create(ds, 'C', { district: 'd1', n: 1 });
    const { client, events } = await tablet(ds, ['d1']);
    await client.sync();
    // Handed as `entered` (the token was made after them): the client shows them as pulled.
    expect(shown(client, ds)).toEqual({ A: { id: a, data: { district: 'd1' } }, C: { id: c, data: { district: 'd1', n: 1 } } });
    expect(client.view(b)).toBeNull();
    expect(client.view(a)).toMatchObject({ serverVersion: 1, pending: 0 });

    // B enters by an edit, A leaves by one.
    await d.update(ds, b, 1, { district: 'd1', n: 2 });
    await d.update(ds, a, 1, { district: 'd3' });
    await client.sync();
    expect(shown(client, ds)).toEqual({ B: { id: b, data: { district: 'd1', n: 2 } }, C: { id: c, data: { district: 'd1', n: 1 } } });
    expect(client.view(a)).toBeNull();
    expect(leftOf(events)).toEqual([[a, 0]]);
    // Dropped: the device knows it no more.
    await expect(client.update(a, { n: 9 })).rejects.toThrow(`unknown entity "${a}"`);

    // The device's own edit that moves C out: hidden at once, sent, accepted, then dropped.
    await client.update(c, { district: 'd2' });
    expect(client.view(c)).toBeNull();
    expect(shown(client, ds)).toEqual({ B: { id: b, data: { district: 'd1', n: 2 } } });
    await client.sync();
    expect(events.applied.map((e) => [e.entityId, e.version])).toEqual([[c, 2]]);
    expect((await serverEntity(t, c))!.data).toEqual({ district: 'd2', n: 1 });
    expect(client.view(c)).toBeNull();
    expect(client.pending()).toEqual([]);
    expect(leftOf(events)).toEqual([
      [a, 0],
      [c, 1],
    ]);
    expect(events.rejected).toEqual([]);
  });

  it('reassigned while offline with a pending edit to an entity that leaves: the edit is sent and answered, then the entity is dropped; the new share appears', async () => {
    const ds = await createDataset(t, ['district', 'n']);
    const d = domain(t);
    const a = await d.create(ds, 'A', { district: 'd1' });
    const c = await d.create(ds, 'C', { district: 'd1' });
    const b = await d.create(ds, 'B', { district: 'd2', n: 7 });
    const { client, events, tokenId } = await tablet(ds, ['d1']);
    await client.sync();
    expect(Object.keys(shown(client, ds))).toEqual(['A', 'C']);
    // Offline: an edit of A; meanwhile a supervisor moves the tablet to district d2.
    const edit = await client.update(a, { n: 1 });
    await reassign(tokenId, ['d2']);
    expect(client.view(a)).toMatchObject({ data: { district: 'd1', n: 1 }, pending: 1 });

    await client.sync();
    // The edit was accepted (the device could see A when it last pulled) and answered.
    expect(events.applied).toEqual([{ changeId: edit, entityId: a, version: 2, duplicate: false }]);
    expect((await serverEntity(t, a))!.data).toEqual({ district: 'd1', n: 1 });
    // Then A and C left, B entered with its current state.
    expect(shown(client, ds)).toEqual({ B: { id: b, data: { district: 'd2', n: 7 } } });
    expect([client.view(a), client.view(c)]).toEqual([null, null]);
    expect(client.pending()).toEqual([]);
    expect(leftOf(events).sort()).toEqual(
      [
        [a, 1],
        [c, 0],
      ].sort(),
    );

    // Back to d1: A returns at its current version, with the device's own edit in it.
    await reassign(tokenId, ['d1']);
    await client.sync();
    expect(shown(client, ds)).toEqual({ A: { id: a, data: { district: 'd1', n: 1 } }, C: { id: c, data: { district: 'd1' } } });
    expect(client.view(a)).toMatchObject({ serverVersion: 2, pending: 0 });
  });

  it('a device of the whole dataset given its first rules while offline: its pending edit is sent and accepted, then the entity is dropped', async () => {
    const ds = await createDataset(t, ['district', 'n']);
    const d = domain(t);
    const a = await d.create(ds, 'A', { district: 'd1' });
    const b = await d.create(ds, 'B', { district: 'd2' });
    const { client, events, tokenId } = await tablet(ds, null);
    await client.sync();
    expect(Object.keys(shown(client, ds))).toEqual(['A', 'B']);
    // Offline: an edit of A; meanwhile a supervisor gives the tablet the district d2.
    const edit = await client.update(a, { n: 1 });
    await reassign(tokenId, ['d2']);
    await client.sync();
    // It could see A (it had the whole dataset): the edit lands, then A is dropped.
    expect(events.applied).toEqual([{ changeId: edit, entityId: a, version: 2, duplicate: false }]);
    expect(events.rejected).toEqual([]);
    expect((await serverEntity(t, a))!.data).toEqual({ district: 'd1', n: 1 });
    expect(shown(client, ds)).toEqual({ B: { id: b, data: { district: 'd2' } } });
    expect(client.view(a)).toBeNull();
    expect(client.pending()).toEqual([]);
    expect(leftOf(events)).toEqual([[a, 1]]);
  });

  it('an edit made while the pull that says its entity left is under way: kept and not shown, then sent, answered and dropped', async () => {
    const ds = await createDataset(t, ['district', 'n']);
    const d = domain(t);
    const a = await d.create(ds, 'A', { district: 'd1' });
    let editDuringPull: (() => Promise<unknown>) | null = null;
    // HTTP only: the pull's request is the moment the user edits.
    const fetchImpl: FetchLike = async (url, init) => {
      if (editDuringPull && String(init?.body ?? '').includes('ChangesSince')) {
        const edit = editDuringPull;
        editDuringPull = null;
        await edit();
      }
      return fetch(url, init as RequestInit) as ReturnType<FetchLike>;
    };
    const { client, events, tokenId } = await tablet(ds, ['d1'], { fetchImpl });
    await client.sync();
    expect(client.view(a)).toMatchObject({ serverVersion: 1 });
    await reassign(tokenId, ['d2']);
    let edit = '';
    editDuringPull = async () => (edit = await client.update(a, { n: 3 }));
    await client.sync();
    // The pull said A left; its edit waits for an answer: kept, never shown.
    expect(edit).not.toBe('');
    expect(client.view(a)).toBeNull();
    expect(client.list(ds)).toEqual([]);
    expect(client.pending().map((e) => [e.change.id, e.status])).toEqual([[edit, 'pending']]);
    expect(events.left).toEqual([]);
    // Nor is it the device's to edit any more; what it sent before stays sent.
    await expect(client.update(a, { n: 4 })).rejects.toThrow(`entity "${a}" left this device's subset`);

    await client.sync();
    expect(events.applied.map((e) => [e.changeId, e.version])).toEqual([[edit, 2]]);
    expect((await serverEntity(t, a))!.data).toEqual({ district: 'd1', n: 3 });
    expect(client.pending()).toEqual([]);
    expect(client.view(a)).toBeNull();
    expect(events.left).toEqual([{ entityId: a, dataset: ds, dropped: [edit] }]);
  });
});
