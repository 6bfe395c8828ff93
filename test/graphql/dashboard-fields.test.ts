import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { createToken } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { domain, offline, offlineRun, ok, uniqueName } from '../helpers/domain.js';

/**
 * The read fields the dashboard needs (issue 14) and Entity.conflictingProperties (issue 11), over
 * real HTTP: dataset stats, the conflict inbox, a held change's entity and flushBacklog's filters.
 */

const t = useApp();
const d = domain(t);
const o = offline(t);

const PROPS = ['height', 'age', 'note'];
const RESOLVE = `mutation($id: ID!, $v: Int!) { resolveConflict(entityId: $id, version: $v) { __typename } }`;
const FACTS = `query($id: ID!) { entity(id: $id) { conflict conflictingProperties lastConflictAt versions { version conflict createdAt } } }`;
const STATS = `query($n: String!) { dataset(name: $n) { name stats { entities hardConflicts softConflicts heldChanges oldestHeldSince } } }`;
const INBOX = `query($ds: String!, $c: ConflictType, $first: Int, $after: String) {
  conflictInbox(dataset: $ds, conflict: $c, first: $first, after: $after) {
    edges { cursor node { id label conflict conflictingProperties lastConflictAt deleted } } pageInfo { hasNextPage endCursor } } }`;
const FLUSH = `mutation($s: Int, $ds: String, $c: String) { flushBacklog(olderThanSeconds: $s, dataset: $ds, changeId: $c) { forced released truncated changes { changeId outcome version released { changeId version } } } }`;
const NOTHING = { forced: 0, released: 0, truncated: false, changes: [] };

const tokens = { collector: '', reviewer: '', otherReviewer: '' };
let shared = '';

/** An entity with three unresolved conflicts: SOFT (v3), HARD on age (v4), HARD on height (v5). */
async function conflicted(ds: string, label = 'Oak'): Promise<string> {
  const id = await d.create(ds, label, { height: 1, age: 1 });
  expect(await d.update(ds, id, 1, { age: 2 })).toMatchObject({ version: 2, conflict: null });
  expect(await d.update(ds, id, 1, { height: 3 })).toMatchObject({ version: 3, conflict: 'SOFT', conflictingProperties: [] });
  expect(await d.update(ds, id, 1, { age: 4 })).toMatchObject({ version: 4, conflict: 'HARD', conflictingProperties: ['age'] });
  expect(await d.update(ds, id, 2, { height: 5 })).toMatchObject({ version: 5, conflict: 'HARD', conflictingProperties: ['height'] });
  return id;
}

beforeAll(async () => {
  shared = await d.createDataset(PROPS);
  const db = t.database.db;
  tokens.collector = (await createToken(db, { name: 'c', role: 'collector', deviceId: null, datasets: null })).secret;
  tokens.reviewer = (await createToken(db, { name: 'r', role: 'reviewer', deviceId: null, datasets: [shared] })).secret;
  tokens.otherReviewer = (await createToken(db, { name: 'o', role: 'reviewer', deviceId: null, datasets: ['elsewhere'] })).secret;
});

describe('Entity.conflictingProperties and lastConflictAt', () => {
  it('are the sorted union over the unresolved conflicting versions and the newest one\'s time, and clear when resolved', async () => {
    const id = await conflicted(shared);
    const e = ok(await t.gql(FACTS, { id })).entity;
    expect(e).toMatchObject({ conflict: 'HARD', conflictingProperties: ['age', 'height'] });
    expect(e.lastConflictAt).toBe(e.versions.find((v: { version: number }) => v.version === 5).createdAt);

    // Reached through a relation (a version's entity), the same facts.
    const nested = ok(await t.gql(`query($id: ID!) { entity(id: $id) { versions(limit: 1) { entity { conflictingProperties } } } }`, { id })).entity;
    expect(nested.versions[0].entity.conflictingProperties).toEqual(['age', 'height']);

    expect(ok(await t.gql(RESOLVE, { id, v: 5 })).resolveConflict.__typename).toBe('MutationResolveConflictSuccess');
    expect(ok(await t.gql(FACTS, { id })).entity).toMatchObject({ conflict: null, conflictingProperties: [], lastConflictAt: null });

    // A conflict after the resolution counts alone.
    expect(await d.update(shared, id, 5, { note: 'a' })).toMatchObject({ version: 6, conflict: null });
    expect(await d.update(shared, id, 5, { note: 'b' })).toMatchObject({ version: 7, conflict: 'HARD', conflictingProperties: ['note'] });
    const after = ok(await t.gql(FACTS, { id })).entity;
    expect(after).toMatchObject({ conflict: 'HARD', conflictingProperties: ['note'] });
    expect(after.lastConflictAt).toBe(after.versions[6].createdAt);
  });

  it('are empty for an entity without conflict and for a SOFT one', async () => {
    const calm = await d.create(shared, 'Calm', { height: 1 });
    await d.update(shared, calm, 1, { height: 2 });
    expect(ok(await t.gql(FACTS, { id: calm })).entity).toMatchObject({ conflict: null, conflictingProperties: [], lastConflictAt: null });
    const soft = await d.create(shared, 'Soft', { height: 1 });
    await d.update(shared, soft, 1, { height: 2 });
    await d.update(shared, soft, 1, { age: 2 });
    const e = ok(await t.gql(FACTS, { id: soft })).entity;
    expect(e).toMatchObject({ conflict: 'SOFT', conflictingProperties: [] });
    expect(e.lastConflictAt).toBe(e.versions[2].createdAt);
  });
});

describe('Dataset.stats', () => {
  it('counts entities, open conflicts by type, held changes and the oldest held time', async () => {
    const ds = await d.createDataset(PROPS);
    expect(ok(await t.gql(STATS, { n: ds })).dataset.stats).toEqual({ entities: 0, hardConflicts: 0, softConflicts: 0, heldChanges: 0, oldestHeldSince: null });

    await conflicted(ds, 'Hard one');
    const soft = await d.create(ds, 'Soft one', { height: 1 });
    await d.update(ds, soft, 1, { height: 2 });
    await d.update(ds, soft, 1, { age: 2 });
    const gone = await d.create(ds, 'Deleted');
    await d.remove(ds, gone, 1);
    const run = offlineRun(ds, soft, 3);
    const first = await o.one(run.update(2, { note: 'later' }));
    await o.one(run.update(3, { note: 'even later' }));
    const held = await o.held({ dataset: ds });
    expect(held.map((h) => h.changeId)).toContain(first.changeId);

    const stats = ok(await t.gql(STATS, { n: ds })).dataset.stats;
    expect(stats).toEqual({ entities: 2, hardConflicts: 1, softConflicts: 1, heldChanges: 2, oldestHeldSince: held[0]!.heldSince });
  });

  it('reviewers of the dataset see them; a collector gets null with FORBIDDEN', async () => {
    expect(ok(await t.gqlAs(tokens.reviewer, STATS, { n: shared })).dataset.stats).toMatchObject({ entities: expect.any(Number) });
    const refused = await t.gqlAs(tokens.collector, STATS, { n: shared });
    expect(refused.data).toEqual({ dataset: { name: shared, stats: null } });
    expect(refused.errors).toEqual([expect.objectContaining({ path: ['dataset', 'stats'], extensions: expect.objectContaining({ code: 'FORBIDDEN' }) })]);
  });
});

describe('the stored lastConflictAt the inbox is ordered by', () => {
  it('is always the history\'s: set by a conflicting version (online or forced), kept by others, cleared by a resolution', async () => {
    const ds = await d.createDataset(PROPS);
    // Stored, and read from the history: the newest unresolved conflicting version of each entity.
    const compare = async () => {
      const rows = (await t.database.db.execute(sql`select e.id, e.last_conflict_at = (select max(v.created_at) from entity_versions v where v.entity_id = e.id and v.conflict is not null and not v.resolved) as same,
          e.last_conflict_at is null as stored_null, e.conflict is null as calm
        from entities e join datasets d on d.id = e.dataset_id where d.name = ${ds}`)) as unknown as { rows?: unknown[] } | unknown[];
      const list = (Array.isArray(rows) ? rows : rows.rows ?? []) as { same: boolean | null; stored_null: boolean; calm: boolean }[];
      for (const r of list) expect(r.calm ? r.stored_null : r.same).toBe(true);
      return list.length;
    };
    const a = await conflicted(ds, 'A');
    const b = await d.create(ds, 'B', { height: 1 });
    expect(await compare()).toBe(2);
    // A later version without conflict keeps the time; a resolution clears it.
    expect(await d.update(ds, a, 5, { note: 'later' })).toMatchObject({ version: 6, conflict: null });
    await compare();
    ok(await t.gql(RESOLVE, { id: a, v: 6 }));
    expect(ok(await t.gql(FACTS, { id: a })).entity.lastConflictAt).toBeNull();
    await compare();
    // A forced step of an offline run, on top of a version its author had not seen, conflicts.
    const step = offlineRun(ds, b, 1).update(2, { height: 4 });
    expect(await o.one(step)).toMatchObject({ outcome: 'HELD' });
    expect(await d.update(ds, b, 1, { height: 2 })).toMatchObject({ version: 2 });
    const forced = ok(await t.gql(FLUSH, { s: 0, c: step.id })).flushBacklog.changes;
    expect(forced).toEqual([expect.objectContaining({ changeId: step.id, outcome: 'APPLIED', version: 3 })]);
    const facts = ok(await t.gql(FACTS, { id: b })).entity;
    expect(facts.conflict).not.toBeNull();
    expect(facts.lastConflictAt).toBe(facts.versions[2].createdAt);
    // And a conflict again after a resolution.
    expect(await d.update(ds, a, 5, { age: 9 })).toMatchObject({ version: 7, conflict: 'SOFT' });
    expect(await compare()).toBe(2);
    const inbox = ok(await t.gql(INBOX, { ds })).conflictInbox;
    expect(inbox.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([a, b]);
  });
});

describe('conflictInbox', () => {
  let ds = '';
  const ids: string[] = [];
  beforeAll(async () => {
    ds = await d.createDataset(PROPS);
    // Made in this order: hard-1, soft-2, hard-3, soft-4; the newest conflict comes first.
    for (const [i, kind] of (['HARD', 'SOFT', 'HARD', 'SOFT'] as const).entries()) {
      const id = await d.create(ds, `${kind.toLowerCase()}-${i + 1}`, { height: 1 });
      await d.update(ds, id, 1, { height: 2 });
      await d.update(ds, id, 1, kind === 'HARD' ? { height: 3 } : { age: 3 });
      ids.push(id);
    }
    await d.create(ds, 'calm');
  });

  const labels = (page: { edges: { node: { label: string } }[] }) => page.edges.map((e) => e.node.label);

  it('lists conflicted entities newest conflict first, with their facts, filtered and paged', async () => {
    const all = ok(await t.gql(INBOX, { ds })).conflictInbox;
    expect(labels(all)).toEqual(['soft-4', 'hard-3', 'soft-2', 'hard-1']);
    expect(all.edges[1].node).toMatchObject({ id: ids[2], conflict: 'HARD', conflictingProperties: ['height'], deleted: false });
    expect(all.edges[0].node).toMatchObject({ conflict: 'SOFT', conflictingProperties: [] });
    const times = all.edges.map((e: { node: { lastConflictAt: string } }) => Date.parse(e.node.lastConflictAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    expect(labels(ok(await t.gql(INBOX, { ds, c: 'HARD' })).conflictInbox)).toEqual(['hard-3', 'hard-1']);
    expect(labels(ok(await t.gql(INBOX, { ds, c: 'SOFT' })).conflictInbox)).toEqual(['soft-4', 'soft-2']);

    const page1 = ok(await t.gql(INBOX, { ds, first: 3 })).conflictInbox;
    expect(labels(page1)).toEqual(['soft-4', 'hard-3', 'soft-2']);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = ok(await t.gql(INBOX, { ds, first: 3, after: page1.pageInfo.endCursor })).conflictInbox;
    expect(labels(page2)).toEqual(['hard-1']);
    expect(page2.pageInfo.hasNextPage).toBe(false);
  });

  it('moves an entity to the top when it conflicts again, and drops it once resolved', async () => {
    const ds2 = await d.createDataset(PROPS);
    const a = await d.create(ds2, 'a', { height: 1 });
    await d.update(ds2, a, 1, { height: 2 });
    await d.update(ds2, a, 1, { height: 3 });
    const b = await d.create(ds2, 'b', { height: 1 });
    await d.update(ds2, b, 1, { height: 2 });
    await d.update(ds2, b, 1, { height: 3 });
    expect(labels(ok(await t.gql(INBOX, { ds: ds2 })).conflictInbox)).toEqual(['b', 'a']);
    await d.update(ds2, a, 1, { age: 9 });
    expect(labels(ok(await t.gql(INBOX, { ds: ds2 })).conflictInbox)).toEqual(['a', 'b']);
    ok(await t.gql(RESOLVE, { id: a, v: 4 }));
    expect(labels(ok(await t.gql(INBOX, { ds: ds2 })).conflictInbox)).toEqual(['b']);
  });

  it('refuses a tampered cursor and an unknown dataset (UNKNOWN_DATASET), and is for the dataset\'s reviewers only', async () => {
    for (const after of ['bm9wZQ==', Buffer.from('DC:T:["S:1","S:x"]').toString('base64'), Buffer.from("DC:T:[\"S:2020-01-01T00:00:00.000000Z'\",\"S:" + randomUUID() + '"]').toString('base64')]) {
      const res = await t.gql(INBOX, { ds, after });
      expect(res.errors?.map((e) => e.extensions?.code), after).toEqual(['INVALID_CURSOR']);
    }
    // A dataset that does not exist (or could not) is an error, not an inbox that reads as empty.
    for (const name of [uniqueName('none'), 'not a name']) {
      const res = await t.gql(INBOX, { ds: name });
      expect(res.errors?.map((e) => [e.extensions?.code, e.message])).toEqual([['UNKNOWN_DATASET', `no dataset named "${name}"`]]);
      expect(res.data?.conflictInbox ?? null).toBeNull();
    }
    for (const token of [tokens.collector, tokens.otherReviewer]) {
      const res = await t.gqlAs(token, INBOX, { ds: shared });
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    }
    // The dataset's reviewer sees it: its newest conflict first (made here, so that the check
    // holds whatever other tests left in the shared dataset).
    const id = await conflicted(shared, 'for the reviewer');
    const seen = ok(await t.gqlAs(tokens.reviewer, INBOX, { ds: shared, first: 1 })).conflictInbox.edges;
    expect(seen.map((e: { node: { id: string; label: string; conflict: string } }) => e.node)).toMatchObject([{ id, label: 'for the reviewer', conflict: 'HARD' }]);
  });
});

describe('the backlog for the dashboard', () => {
  it("HeldChange.entity is the entity's current state, null while its create has not arrived", async () => {
    const ds = await d.createDataset(PROPS);
    const known = await d.create(ds, 'Known');
    await o.one(offlineRun(ds, known, 1).update(2, { note: 'x' }));
    const unborn = randomUUID();
    await o.one(offlineRun(ds, unborn, null).update(1, { note: 'y' }));
    const rows = ok(await t.gql(`query($ds: String!) { heldChanges(dataset: $ds) { nodes { entityId entity { id label } } } }`, { ds })).heldChanges.nodes;
    expect(rows).toEqual([
      { entityId: known, entity: { id: known, label: 'Known' } },
      { entityId: unborn, entity: null },
    ]);
  });

  it('flushBacklog(changeId) forces that change alone (with the successor it releases); flushBacklog(dataset) only that dataset', async () => {
    const [ds1, ds2] = [await d.createDataset(PROPS), await d.createDataset(PROPS)];
    const e1 = await d.create(ds1, 'One');
    const e2 = await d.create(ds1, 'Two');
    const e3 = await d.create(ds2, 'Three');
    const run1 = offlineRun(ds1, e1, 1);
    const [c1a, c1b] = [run1.update(2, { note: 'a' }), run1.update(3, { note: 'b' })];
    const c2 = offlineRun(ds1, e2, 1).update(2, { note: 'c' });
    const c3 = offlineRun(ds2, e3, 1).update(2, { note: 'd' });
    for (const c of [c1a, c1b, c2, c3]) expect(await o.one(c)).toMatchObject({ outcome: 'HELD' });

    // Too young for the default hold timeout, malformed or unknown: nothing.
    expect(ok(await t.gql(FLUSH, { c: c1a.id })).flushBacklog).toEqual(NOTHING);
    expect(ok(await t.gql(FLUSH, { s: 0, c: 'a\u0000b' })).flushBacklog).toEqual(NOTHING);
    expect(ok(await t.gql(FLUSH, { s: 0, c: randomUUID() })).flushBacklog).toEqual(NOTHING);
    expect(ok(await t.gql(FLUSH, { s: 0, ds: 'no such name!' })).flushBacklog).toEqual(NOTHING);

    const one = ok(await t.gql(FLUSH, { s: 0, c: c1a.id.toUpperCase() })).flushBacklog;
    expect(one).toEqual({ forced: 1, released: 1, truncated: false, changes: [{ changeId: c1a.id, outcome: 'APPLIED', version: 2, released: [{ changeId: c1b.id, version: 3 }] }] });
    expect((await o.held()).map((h) => h.changeId).filter((id) => [c1a.id, c1b.id, c2.id, c3.id].includes(id)).sort()).toEqual([c2.id, c3.id].sort());

    const ofDs2 = ok(await t.gql(FLUSH, { s: 0, ds: ds2 })).flushBacklog;
    expect(ofDs2).toEqual({ forced: 1, released: 0, truncated: false, changes: [{ changeId: c3.id, outcome: 'APPLIED', version: 2, released: [] }] });
    expect((await o.held({ dataset: ds1 })).map((h) => h.changeId)).toEqual([c2.id]);
    expect(await o.held({ dataset: ds2 })).toEqual([]);
  });

  it('stays an administrator\'s: a reviewer is refused and nothing is forced', async () => {
    const id = await d.create(shared, 'Waiting');
    const c = offlineRun(shared, id, 1).update(2, { note: 'w' });
    await o.one(c);
    const res = await t.gqlAs(tokens.reviewer, FLUSH, { s: 0, c: c.id });
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    expect((await o.held({ entityId: id })).map((h) => h.changeId)).toEqual([c.id]);
  });
});
