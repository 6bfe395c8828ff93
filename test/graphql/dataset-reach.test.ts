import { randomUUID } from 'node:crypto';
import { getNamedType, isObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../../src/graphql/schema.js';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { ok } from '../helpers/domain.js';
import { socketClient, trackSubscriptions, waitUntil, type SocketClient, type Tracker } from '../helpers/live.js';

/**
 * Issue 17 item 1: an entity is reached only from its own dataset, by a principal that may use it,
 * whatever the path (an event, a held change, a change's result, a run, a version); and a change
 * naming an entity of another dataset is answered as for a missing entity, and is never parked where
 * it could later reach that entity: it stays in its own dataset's backlog, B's runs never release it,
 * B's creates never adopt it, and forced it never touches B's entity (REJECTED ENTITY_EXISTS: the id is
 * taken, as a create in A would be told).
 */

let t: TestApp;
let tracker: Tracker;
const sockets: SocketClient[] = [];
const secrets = {} as Record<'admin' | 'collectorA' | 'reviewerA' | 'reviewerB', string>;
const A = 'alpha';
const B = 'beta';

const gqlAs = (who: keyof typeof secrets, query: string, variables?: Record<string, unknown>) => t.gqlAs(secrets[who], query, variables);

const RESULT = 'changeId outcome originalOutcome version conflict conflictingProperties waitsFor error { code } released { changeId } entity { id label } entityVersion { version }';
const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { entityId ${RESULT} } } } }`;
const ENTITY_FIELDS = 'id label data versions { data } dataset { name }';

async function submit(who: keyof typeof secrets, ...changes: Record<string, unknown>[]) {
  const res = await gqlAs(who, SUBMIT, { c: changes.map((c) => ({ id: randomUUID(), ...c })) });
  return ok(res).submitChanges.data as Record<string, any>[];
}

/** B's entity, made by the admin online (for `deviceId`, when given): what nothing in A may show. */
async function secretInB(deviceId: string | null = null): Promise<string> {
  const id = randomUUID();
  const [r] = await submit('admin', { dataset: B, deviceId, entityId: id, action: 'CREATE', label: 'Secret bird', data: { note: 'secret' } });
  expect(r).toMatchObject({ outcome: 'APPLIED', version: 1 });
  return id;
}

/** A run update of dataset A that began with an offline create (trunkVersion null), made by tab-a. */
const runUpdate = (entityId: string, branchId: string, baseVersion: number, data: Record<string, unknown> = { note: 'from A' }) => ({
  dataset: A,
  deviceId: 'tab-a',
  entityId,
  action: 'UPDATE',
  branchId,
  trunkVersion: null,
  baseVersion,
  data,
});

/** A result with its ids taken out, to compare the answer for another dataset's entity with the one for a missing entity. */
const shape = (r: Record<string, any>) => ({ ...r, changeId: '<id>', entityId: '<id>' });

async function adminEntity(id: string) {
  return ok(await gqlAs('admin', `query($id: ID!) { entity(id: $id) { label data version dataset { name } } }`, { id })).entity;
}

async function adminChange(id: string) {
  return ok(await gqlAs('admin', `query($id: String!) { change(id: $id) { outcome errorCode version } }`, { id })).change;
}

async function heldIds(dataset: string): Promise<string[]> {
  return ok(await gqlAs('admin', `query($ds: String) { heldChanges(dataset: $ds, first: 500) { nodes { changeId } } }`, { ds: dataset })).heldChanges.nodes.map((h: { changeId: string }) => h.changeId);
}

function socket(who: keyof typeof secrets) {
  const s = socketClient(t.url, { token: secrets[who] });
  sockets.push(s);
  return s;
}

/** Subscribes as `who` and waits until the server holds the subscription. */
async function live(who: keyof typeof secrets, query: string, variables: Record<string, unknown>) {
  const before = tracker.opened();
  const s = socket(who).subscribe(query, variables);
  await waitUntil(() => tracker.opened() > before, 'the subscription to be live', 3000);
  return s;
}

beforeAll(async () => {
  t = await startTestApp({ auth: { anonymousRole: null }, flushIntervalSeconds: 0 });
  tracker = trackSubscriptions(t.app.bus);
  secrets.admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  for (const name of [A, B]) {
    const r = await gqlAs('admin', `mutation($n: String!) { createDataset(name: $n, properties: ["note"]) { __typename } }`, { n: name });
    expect(ok(r).createDataset.__typename).toBe('MutationCreateDatasetSuccess');
  }
  secrets.collectorA = (await createToken(t.database.db, { name: 'tab-a', role: 'collector', deviceId: 'tab-a', datasets: [A] })).secret;
  secrets.reviewerA = (await createToken(t.database.db, { name: 'reviewer A', role: 'reviewer', datasets: [A] })).secret;
  secrets.reviewerB = (await createToken(t.database.db, { name: 'reviewer B', role: 'reviewer', datasets: [B] })).secret;
});
afterAll(async () => {
  for (const s of sockets) await s.close().catch(() => {});
  await t?.close();
});

describe('a change in A naming an entity of B is answered as for a missing entity', () => {
  it('the issue: held in A, and neither changeHeld nor heldChanges nor the change result nor the run shows B’s entity', async () => {
    // Made by the same device id as A's run: only the dataset keeps B's create out of that run.
    const bird = await secretInB('tab-a');
    const held = await live('collectorA', `subscription($ds: String!) { changeHeld(dataset: $ds) { changeId entityId entity { ${ENTITY_FIELDS} } } }`, { ds: A });
    const run = randomUUID();
    const [r] = await submit('collectorA', runUpdate(bird, run, 2));
    // The same change on an id no dataset has: the same answer.
    const missing = randomUUID();
    const [control] = await submit('collectorA', runUpdate(missing, randomUUID(), 2));
    expect(r).toMatchObject({ outcome: 'HELD', waitsFor: 1, entity: null, entityVersion: null, error: null });
    expect(shape(r!)).toEqual(shape(control!));

    const events = await held.take(2);
    expect(events).toEqual([
      { changeId: r!.changeId, entityId: bird, entity: null },
      { changeId: control!.changeId, entityId: missing, entity: null },
    ]);
    expect(JSON.stringify(events)).not.toContain('secret');

    // A reviewer of A sees the held change in A's backlog, and no entity behind it.
    const backlog = ok(await gqlAs('reviewerA', `query($ds: String!) { heldChanges(dataset: $ds) { nodes { changeId entity { ${ENTITY_FIELDS} } } } }`, { ds: A })).heldChanges.nodes;
    expect(backlog).toContainEqual({ changeId: r!.changeId, entity: null });
    expect(JSON.stringify(backlog)).not.toContain('secret');
    // An unrestricted reader neither: the held change is A's, the entity B's.
    const all = ok(await gqlAs('admin', `query($e: ID!) { heldChanges(entityId: $e) { nodes { changeId dataset entity { id } } } }`, { e: bird })).heldChanges.nodes;
    expect(all).toEqual([{ changeId: r!.changeId, dataset: A, entity: null }]);
    // `entity(id)` keeps answering FORBIDDEN to A's reviewer.
    const byId = await gqlAs('reviewerA', `query($id: ID!) { entity(id: $id) { id } }`, { id: bird });
    expect(byId.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);

    // The run, seen from A: its held step only, waiting for a create it does not have (B's create is not its position 0).
    const BRANCH = `query($id: ID!) { branch(id: $id) { id entityId trunkVersion changes { position state version } missing { from to } } }`;
    expect(ok(await gqlAs('reviewerA', BRANCH, { id: run })).branch).toEqual({
      id: run,
      entityId: bird,
      trunkVersion: null,
      changes: [{ position: 2, state: 'HELD', version: null }],
      missing: [{ from: 0, to: 1 }],
    });
    // And B's entity, seen from B, has no run of A.
    const seenFromB = ok(await gqlAs('reviewerB', `query($id: ID!) { entity(id: $id) { label version branches { id } } }`, { id: bird })).entity;
    expect(seenFromB).toEqual({ label: 'Secret bird', version: 1, branches: [] });
  });

  it('every kind of change: the same answer as for an id no dataset has', async () => {
    const bird = await secretInB();
    const kinds = (id: string, run: string) => [
      { dataset: A, deviceId: 'tab-a', entityId: id, action: 'UPDATE', baseVersion: 1, data: { note: 'x' } },
      { dataset: A, deviceId: 'tab-a', entityId: id, action: 'DELETE', baseVersion: 1 },
      { dataset: A, deviceId: 'tab-a', entityId: id, action: 'UPDATE', branchId: run, trunkVersion: 1, baseVersion: 1, data: { note: 'x' } },
      runUpdate(id, run, 1),
      { dataset: A, deviceId: 'tab-a', entityId: id, action: 'DELETE', branchId: run, trunkVersion: null, baseVersion: 2 },
    ];
    const missing = randomUUID();
    for (const [i, change] of kinds(bird, randomUUID()).entries()) {
      const [seen] = await submit('collectorA', change);
      const [control] = await submit('collectorA', kinds(missing, randomUUID())[i]!);
      expect(shape(seen!), JSON.stringify(change)).toEqual(shape(control!));
      expect(seen!.entity).toBeNull();
    }
    expect(await adminEntity(bird)).toEqual({ label: 'Secret bird', data: { note: 'secret' }, version: 1, dataset: { name: B } });
  });

  it('a run id that B uses too: B’s steps neither refuse A’s change nor are shown to it, and each dataset keeps its own', async () => {
    const bird = await secretInB();
    const run = randomUUID();
    // B's own run on its entity, with a held step at position 3 (and position 1 applied on the create).
    const inB = (baseVersion: number) => ({ dataset: B, entityId: bird, action: 'UPDATE', branchId: run, trunkVersion: null, baseVersion, data: { note: `B${baseVersion}` } });
    expect(await submit('admin', inB(1), inB(3))).toMatchObject([{ outcome: 'APPLIED', version: 2 }, { outcome: 'HELD', waitsFor: 2 }]);
    // A's change at B's applied position and at B's held position: held, as for a missing entity.
    const [one, three] = await submit('collectorA', runUpdate(bird, run, 1), runUpdate(bird, run, 3));
    expect(one).toMatchObject({ outcome: 'HELD', waitsFor: 0, error: null });
    expect(three).toMatchObject({ outcome: 'HELD', waitsFor: 2, error: null });
    // B's run goes on: its position 2 releases its own position 3, never A's.
    const [two] = await submit('admin', inB(2));
    expect(two).toMatchObject({ outcome: 'APPLIED', version: 3, released: [{}] });
    expect(await adminEntity(bird)).toMatchObject({ data: { note: 'B3' }, version: 4 });
    expect(await heldIds(A)).toEqual(expect.arrayContaining([one!.changeId, three!.changeId]));
    expect(await adminChange(three!.changeId)).toEqual({ outcome: 'HELD', errorCode: null, version: null });
  });
});

describe('what becomes of it: forced, released, or its id created', () => {
  it('forced: REJECTED ENTITY_EXISTS (the id is taken), B’s entity untouched, and no event of A names it', async () => {
    const bird = await secretInB();
    const flushedA = await live('reviewerA', `subscription($ds: String!) { backlogFlushed(dataset: $ds) { entityId entity { id } } }`, { ds: A });
    const changedA = await live('reviewerA', `subscription($ds: String!) { entityChanged(dataset: $ds) { entityId entityVersion { data } entity { id } } }`, { ds: A });
    const [r] = await submit('collectorA', runUpdate(bird, randomUUID(), 2));
    expect(r).toMatchObject({ outcome: 'HELD' });
    const forced = ok(await gqlAs('admin', `mutation($id: String!) { flushBacklog(olderThanSeconds: 0, changeId: $id) { changes { changeId outcome error { code } entity { id } entityVersion { version } } } }`, { id: r!.changeId })).flushBacklog.changes;
    expect(forced).toEqual([{ changeId: r!.changeId, outcome: 'REJECTED', error: { code: 'ENTITY_EXISTS' }, entity: null, entityVersion: null }]);
    expect(await adminChange(r!.changeId)).toEqual({ outcome: 'REJECTED', errorCode: 'ENTITY_EXISTS', version: null });
    expect(await adminEntity(bird)).toEqual({ label: 'Secret bird', data: { note: 'secret' }, version: 1, dataset: { name: B } });
    expect(await heldIds(A)).not.toContain(r!.changeId);
    // A sentinel in A: had anything of the forced change been published, it would have come first.
    const sentinel = randomUUID();
    await submit('admin', { dataset: A, entityId: sentinel, action: 'CREATE', label: 'sentinel' });
    expect(await changedA.take(1)).toEqual([{ entityId: sentinel, entityVersion: { data: {} }, entity: { id: sentinel } }]);
    expect(flushedA.values).toEqual([]);
  });

  it('its successors in A, its run’s create in A, and B’s creates and runs of that id: none reaches B’s entity', async () => {
    const bird = await secretInB();
    const run = randomUUID();
    const [two] = await submit('collectorA', runUpdate(bird, run, 2));
    // Its predecessor and its run's create in A: the predecessor waits too, the create is told the id is taken.
    const [one, create] = await submit(
      'collectorA',
      runUpdate(bird, run, 1),
      { dataset: A, deviceId: 'tab-a', entityId: bird, action: 'CREATE', label: 'Mine now', data: { note: 'A' }, branchId: run, trunkVersion: null },
    );
    expect(one).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    expect(create).toMatchObject({ outcome: 'REJECTED', error: { code: 'ENTITY_EXISTS' }, entity: null });
    // A branchless create of that id in B (B's device resending its create) adopts nothing of A.
    const [again] = await submit('admin', { dataset: B, entityId: bird, action: 'CREATE', label: 'Secret bird' });
    expect(again).toMatchObject({ outcome: 'REJECTED', error: { code: 'ENTITY_EXISTS' }, released: [] });
    expect(await heldIds(A)).toEqual(expect.arrayContaining([one!.changeId, two!.changeId]));
    // Forced, oldest first: each refused, none applied to B's entity.
    const forced = ok(await gqlAs('admin', `mutation($ds: String!) { flushBacklog(olderThanSeconds: 0, dataset: $ds) { changes { changeId outcome error { code } released { changeId } } } }`, { ds: A })).flushBacklog.changes;
    const mine = forced.filter((f: { changeId: string }) => [one!.changeId, two!.changeId].includes(f.changeId));
    expect(mine).toEqual([
      { changeId: two!.changeId, outcome: 'REJECTED', error: { code: 'ENTITY_EXISTS' }, released: [] },
      { changeId: one!.changeId, outcome: 'REJECTED', error: { code: 'ENTITY_EXISTS' }, released: [] },
    ]);
    expect(await adminEntity(bird)).toEqual({ label: 'Secret bird', data: { note: 'secret' }, version: 1, dataset: { name: B } });
  });

  it('held in A before B had the id: B’s later create is B’s, and A’s held change, forced, is refused rather than applied to it', async () => {
    const later = randomUUID();
    const [r] = await submit('collectorA', runUpdate(later, randomUUID(), 1));
    expect(r).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    const [made] = await submit('admin', { dataset: B, entityId: later, action: 'CREATE', label: 'Bird of B', data: { note: 'B' } });
    expect(made).toMatchObject({ outcome: 'APPLIED', version: 1, released: [] });
    expect(ok(await gqlAs('reviewerA', `query($ds: String!) { heldChanges(dataset: $ds) { nodes { changeId entity { id } } } }`, { ds: A })).heldChanges.nodes).toContainEqual({ changeId: r!.changeId, entity: null });
    const forced = ok(await gqlAs('admin', `mutation($id: String!) { flushBacklog(olderThanSeconds: 0, changeId: $id) { changes { outcome error { code } } } }`, { id: r!.changeId })).flushBacklog.changes;
    expect(forced).toEqual([{ outcome: 'REJECTED', error: { code: 'ENTITY_EXISTS' } }]);
    expect(await adminEntity(later)).toEqual({ label: 'Bird of B', data: { note: 'B' }, version: 1, dataset: { name: B } });
  });

  it('forced while no dataset had the id: it makes the entity in A, and B’s create of that id is refused ENTITY_EXISTS', async () => {
    const id = randomUUID();
    const [r] = await submit('collectorA', runUpdate(id, randomUUID(), 1, { note: 'A first' }));
    const forced = ok(await gqlAs('admin', `mutation($id: String!) { flushBacklog(olderThanSeconds: 0, changeId: $id) { changes { outcome version } } }`, { id: r!.changeId })).flushBacklog.changes;
    expect(forced).toEqual([{ outcome: 'APPLIED', version: 1 }]);
    expect(await adminEntity(id)).toEqual({ label: '(label unknown)', data: { note: 'A first' }, version: 1, dataset: { name: A } });
    const [b] = await submit('admin', { dataset: B, entityId: id, action: 'CREATE', label: 'Too late' });
    expect(b).toMatchObject({ outcome: 'REJECTED', error: { code: 'ENTITY_EXISTS' }, entity: null });
  });
});

describe('every path to an entity applies the dataset rule', () => {
  it('a collector of A subscribed to A never sees B’s entity or its versions, on any event type', async () => {
    const bird = await secretInB();
    const sub = (field: string, extra = '') => `subscription($ds: String!) { ${field}(dataset: $ds) { entityId ${extra} entity { ${ENTITY_FIELDS} } } }`;
    const streams = [
      await live('collectorA', sub('changeHeld'), { ds: A }),
      await live('collectorA', sub('entityChanged', 'entityVersion { data }'), { ds: A }),
    ];
    await submit('collectorA', runUpdate(bird, randomUUID(), 3));
    const sentinel = randomUUID();
    await submit('admin', { dataset: A, entityId: sentinel, action: 'CREATE', label: 'sentinel' });
    const [heldEvents, changedEvents] = [await streams[0]!.take(1), await streams[1]!.take(1)];
    expect(heldEvents).toEqual([{ entityId: bird, entity: null }]);
    expect(changedEvents).toEqual([{ entityId: sentinel, entityVersion: { data: {} }, entity: { id: sentinel, label: 'sentinel', data: {}, versions: [{ data: {} }], dataset: { name: A } } }]);
  });
});

describe('the rule covers every field that reaches an entity, a version, a held change or a run', () => {
  it('each such field says how it applies it (src/graphql/reach.ts); a connection or success type, through its root field', () => {
    const REACHING = ['Entity', 'EntityVersion', 'HeldChange', 'Branch'];
    const missing: string[] = [];
    const seen: Record<string, string> = {};
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      for (const field of Object.values(type.getFields())) {
        if (!REACHING.includes(getNamedType(field.type).name)) continue;
        // Wrappers the plugins make (QueryEntitiesConnection, …Edge, MutationResolveConflictSuccess) answer for their root field.
        const wrapper = /^(Query|Mutation)([A-Z]\w*?)(Connection|ConnectionEdge|Success)$/.exec(type.name);
        const owner = wrapper ? (wrapper[1] === 'Query' ? schema.getQueryType() : schema.getMutationType())!.getFields()[wrapper[2]!.charAt(0).toLowerCase() + wrapper[2]!.slice(1)] : field;
        const how = owner?.extensions?.reach as string | undefined;
        if (how) seen[`${type.name}.${field.name}`] = how;
        else missing.push(`${type.name}.${field.name}`);
      }
    }
    expect(missing).toEqual([]);
    // The paths the issue names load from their parent's dataset, with the rule.
    for (const path of ['ChangeHeldEvent.entity', 'EntityChangedEvent.entityVersion', 'HeldChange.entity', 'ChangeResult.entity', 'ChangeResult.entityVersion']) {
      expect(seen[path], path).toBe('from-parent');
    }
  });
});
