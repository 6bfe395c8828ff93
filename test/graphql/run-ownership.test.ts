import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { ok, sync } from '../helpers/domain.js';
import { socketClient, trackSubscriptions, waitUntil, type SocketClient, type Tracker } from '../helpers/live.js';

/**
 * Issue 17 item 4: a run belongs to the device that began it. Another device's change naming it is
 * refused BRANCH_OF_OTHER_DEVICE (recorded like every rejection), never placed into it, so it can
 * neither release the run's held steps nor take a position the run's own device will send; a change
 * without a deviceId is a device of its own here. And a device-bound collector never learns another
 * device's run ids: branchId is null for it on other devices' changes, in events and in pulls.
 */

type Who = 'admin' | 'reviewer' | 'tabA' | 'tabB' | 'gateway';
let t: TestApp;
let tracker: Tracker;
const sockets: SocketClient[] = [];
const secrets = {} as Record<Who, string>;
const DS = 'plots';

const as = (who: Who): TestApp => ({ ...t, gql: (q, v) => t.gqlAs(secrets[who], q, v) });
const RESULT = 'changeId outcome version waitsFor error { code message } released { changeId outcome version }';
const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { ${RESULT} } } } }`;

async function submit(who: Who, ...changes: Record<string, unknown>[]) {
  return ok(await t.gqlAs(secrets[who], SUBMIT, { c: changes.map((c) => ({ id: randomUUID(), ...c })) })).submitChanges.data as Record<string, any>[];
}

async function newEntity(): Promise<string> {
  const id = randomUUID();
  expect(await submit('admin', { dataset: DS, entityId: id, action: 'CREATE', label: 'Plot', data: { note: 'v1' } })).toMatchObject([{ outcome: 'APPLIED', version: 1 }]);
  return id;
}

/** A run of `deviceId` on `entityId` that began on version 1: step n has baseVersion n. */
function run(entityId: string, deviceId: string | null, branchId = randomUUID()) {
  return {
    branchId,
    step: (n: number, note = `${deviceId}-${n}`) => ({ id: randomUUID(), dataset: DS, deviceId, entityId, action: 'UPDATE', branchId, trunkVersion: 1, baseVersion: n, data: { note } }),
  };
}

async function adminChange(id: string) {
  return ok(await t.gqlAs(secrets.admin, `query($id: String!) { change(id: $id) { outcome errorCode version deviceId } }`, { id })).change;
}

async function history(id: string) {
  const e = ok(await t.gqlAs(secrets.admin, `query($id: ID!) { entity(id: $id) { versions { version source branchId deviceId data } } }`, { id })).entity;
  return e.versions as { version: number; source: string; branchId: string | null; deviceId: string | null; data: Record<string, unknown> }[];
}

async function held(entityId: string): Promise<[string, string | null][]> {
  const rows = ok(await t.gqlAs(secrets.admin, `query($e: ID!) { heldChanges(entityId: $e) { nodes { changeId deviceId } } }`, { e: entityId })).heldChanges.nodes;
  return rows.map((h: { changeId: string; deviceId: string | null }) => [h.changeId, h.deviceId]);
}

async function live(who: Who, query: string) {
  const before = tracker.opened();
  const s = socketClient(t.url, { token: secrets[who] });
  sockets.push(s);
  const stream = s.subscribe(query, { ds: DS });
  await waitUntil(() => tracker.opened() > before, 'the subscription to be live', 3000);
  return stream;
}

beforeAll(async () => {
  t = await startTestApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0 });
  tracker = trackSubscriptions(t.app.bus);
  secrets.admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  const r = await t.gqlAs(secrets.admin, `mutation { createDataset(name: "${DS}", properties: ["note"]) { __typename } }`);
  expect(ok(r).createDataset.__typename).toBe('MutationCreateDatasetSuccess');
  secrets.reviewer = (await createToken(t.database.db, { name: 'reviewer', role: 'reviewer', datasets: [DS] })).secret;
  secrets.tabA = (await createToken(t.database.db, { name: 'tab-a', role: 'collector', deviceId: 'tab-a', datasets: [DS] })).secret;
  secrets.tabB = (await createToken(t.database.db, { name: 'tab-b', role: 'collector', deviceId: 'tab-b', datasets: [DS] })).secret;
  secrets.gateway = (await createToken(t.database.db, { name: 'gateway', role: 'collector', datasets: [DS] })).secret;
});
afterAll(async () => {
  for (const s of sockets) await s.close().catch(() => {});
  await t?.close();
});

describe('a run belongs to the device that began it', () => {
  it('the issue: tab-a sends the missing first step of tab-b’s run; refused, recorded, and tab-b’s own step then releases its run', async () => {
    const id = await newEntity();
    const b = run(id, 'tab-b');
    const [s2, s3] = [b.step(2), b.step(3)];
    expect(await submit('tabB', s3, s2)).toMatchObject([{ outcome: 'HELD', waitsFor: 2 }, { outcome: 'HELD', waitsFor: 1 }]);

    const intruder = { ...b.step(1, 'taken over'), deviceId: 'tab-a' };
    const [refused] = await submit('tabA', intruder);
    expect(refused).toEqual({
      changeId: intruder.id,
      outcome: 'REJECTED',
      version: null,
      waitsFor: null,
      error: { code: 'BRANCH_OF_OTHER_DEVICE', message: `the offline run was begun by another device: a run belongs to the device that began it: ${b.branchId}` },
      released: [],
    });
    expect(await adminChange(intruder.id)).toEqual({ outcome: 'REJECTED', errorCode: 'BRANCH_OF_OTHER_DEVICE', version: null, deviceId: 'tab-a' });
    expect(await held(id)).toEqual([
      [s3.id, 'tab-b'],
      [s2.id, 'tab-b'],
    ]);

    const s1 = b.step(1);
    const [own] = await submit('tabB', s1);
    expect(own).toMatchObject({ outcome: 'APPLIED', version: 2, error: null, released: [{ changeId: s2.id, outcome: 'APPLIED', version: 3 }, { changeId: s3.id, outcome: 'APPLIED', version: 4 }] });
    expect((await history(id)).map((v) => [v.version, v.source, v.deviceId, v.data.note])).toEqual([
      [1, 'ONLINE', null, 'v1'],
      [2, 'IN_ORDER', 'tab-b', 'tab-b-1'],
      [3, 'RELEASED', 'tab-b', 'tab-b-2'],
      [4, 'RELEASED', 'tab-b', 'tab-b-3'],
    ]);
    // Once applied, the run is still tab-b's: a later step from tab-a is refused the same way.
    const [late] = await submit('tabA', { ...b.step(4), deviceId: 'tab-a' });
    expect(late).toMatchObject({ outcome: 'REJECTED', error: { code: 'BRANCH_OF_OTHER_DEVICE' } });
  });

  it('in one batch: the first device to name the run owns it', async () => {
    const id = await newEntity();
    const branchId = randomUUID();
    const [mine, theirs] = [run(id, 'tab-b', branchId).step(1), run(id, 'tab-a', branchId).step(2)];
    const r = await submit('gateway', theirs, mine);
    expect(r.map((x) => [x.outcome, x.error?.code ?? null])).toEqual([
      ['HELD', null],
      ['REJECTED', 'BRANCH_OF_OTHER_DEVICE'],
    ]);
    expect(await held(id)).toEqual([[theirs.id, 'tab-a']]);
  });

  it('a change without a deviceId is a device of its own: it may not continue a device’s run, nor a device one begun without a device', async () => {
    const id = await newEntity();
    const b = run(id, 'tab-b');
    expect(await submit('tabB', b.step(2))).toMatchObject([{ outcome: 'HELD' }]);
    expect(await submit('gateway', { ...b.step(1), deviceId: null })).toMatchObject([{ outcome: 'REJECTED', error: { code: 'BRANCH_OF_OTHER_DEVICE' } }]);
    expect(await submit('admin', { ...b.step(1), deviceId: null })).toMatchObject([{ outcome: 'REJECTED', error: { code: 'BRANCH_OF_OTHER_DEVICE' } }]);
    // A token that acts for any device continues tab-b's run by naming tab-b (a gateway relaying it).
    expect(await submit('gateway', b.step(1))).toMatchObject([{ outcome: 'APPLIED', version: 2, released: [{ outcome: 'APPLIED', version: 3 }] }]);

    const anonymous = run(id, null);
    expect(await submit('gateway', anonymous.step(3))).toMatchObject([{ outcome: 'HELD' }]);
    expect(await submit('tabA', { ...anonymous.step(2), deviceId: 'tab-a' })).toMatchObject([{ outcome: 'REJECTED', error: { code: 'BRANCH_OF_OTHER_DEVICE' } }]);
    expect(await submit('gateway', anonymous.step(2))).toMatchObject([{ outcome: 'HELD', waitsFor: 1 }]);
  });

  it('a create naming no run adopts only its own device’s run: another device’s create of that entity neither releases nor joins it', async () => {
    const id = randomUUID();
    const branchId = randomUUID();
    const step = (n: number, deviceId: string) => ({ dataset: DS, deviceId, entityId: id, action: 'UPDATE', branchId, trunkVersion: null, baseVersion: n, data: { note: `b${n}` } });
    expect(await submit('tabB', step(1, 'tab-b'), step(2, 'tab-b'))).toMatchObject([{ outcome: 'HELD', waitsFor: 0 }, { outcome: 'HELD', waitsFor: 1 }]);
    const [create] = await submit('tabA', { dataset: DS, deviceId: 'tab-a', entityId: id, action: 'CREATE', label: 'Squatter', data: { note: 'a' } });
    expect(create).toMatchObject({ outcome: 'APPLIED', version: 1, released: [] });
    expect((await history(id)).map((v) => [v.version, v.branchId, v.deviceId])).toEqual([[1, null, 'tab-a']]);
    expect((await held(id)).map(([, device]) => device)).toEqual(['tab-b', 'tab-b']);
    // Nor does a step of that run, arriving now, build on tab-a's create: it waits for its own.
    expect(await submit('tabB', step(3, 'tab-b'))).toMatchObject([{ outcome: 'HELD', waitsFor: 2 }]);
  });
});

describe('a device-bound collector does not learn other devices’ run ids', () => {
  it('changeHeld: branchId for its own device’s changes only; reviewers and device-free collectors see every one', async () => {
    const QUERY = 'subscription($ds: String!) { changeHeld(dataset: $ds) { changeId branchId } }';
    const streams = { tabA: await live('tabA', QUERY), tabB: await live('tabB', QUERY), reviewer: await live('reviewer', QUERY), gateway: await live('gateway', QUERY) };
    const id = await newEntity();
    const [a, b] = [run(id, 'tab-a'), run(id, 'tab-b')];
    const [fromB, fromA] = [b.step(2), a.step(2)];
    await submit('tabB', fromB);
    await submit('tabA', fromA);
    const both = [
      { changeId: fromB.id, branchId: b.branchId },
      { changeId: fromA.id, branchId: a.branchId },
    ];
    expect(await streams.tabA.take(2)).toEqual([{ changeId: fromB.id, branchId: null }, both[1]]);
    expect(await streams.tabB.take(2)).toEqual([both[0], { changeId: fromA.id, branchId: null }]);
    expect(await streams.reviewer.take(2)).toEqual(both);
    expect(await streams.gateway.take(2)).toEqual(both);
  });

  it('pulls and entityChanged { entityVersion }: branchId of another device’s versions is null for a device-bound collector', async () => {
    const changed = await live('tabA', 'subscription($ds: String!) { entityChanged(dataset: $ds) { version entityVersion { branchId deviceId } } }');
    const id = await newEntity();
    const [a, b] = [run(id, 'tab-a'), run(id, 'tab-b')];
    await submit('tabB', b.step(1));
    await submit('tabA', a.step(1));
    expect((await changed.take(3)).map((e) => [e.version, e.entityVersion])).toEqual([
      [1, { branchId: null, deviceId: null }],
      [2, { branchId: null, deviceId: 'tab-b' }],
      [3, { branchId: a.branchId, deviceId: 'tab-a' }],
    ]);
    const FIELDS = 'version branchId deviceId entity { id }';
    const pulled = async (who: Who) =>
      (await sync(as(who)).pull<{ version: number; branchId: string | null; entity: { id: string } }>(DS, { limit: 1000 }, FIELDS)).versions.filter((v) => v.entity.id === id).map((v) => [v.version, v.branchId]);
    expect(await pulled('tabA')).toEqual([[1, null], [2, null], [3, a.branchId]]);
    expect(await pulled('tabB')).toEqual([[1, null], [2, b.branchId], [3, null]]);
    for (const who of ['reviewer', 'gateway', 'admin'] as const) expect(await pulled(who)).toEqual([[1, null], [2, b.branchId], [3, a.branchId]]);
  });
});
