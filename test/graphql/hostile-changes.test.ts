import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/core/types.js';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, useApp, type TestApp } from '../helpers/app.js';
import { recordStatements } from '../helpers/statements.js';
import { domain, noInternalError, offline, offlineRun, ok, postRaw, sync, uniqueName } from '../helpers/domain.js';

/**
 * Issue 10: changes one ordinary token could send to take the service down, stall the forced
 * flush, or learn and squat ids of another dataset. Each is answered with a code, per change,
 * and nothing else is held up.
 */
// No webhook worker here: its poll of the outbox is not a request's work (statements are counted below).
const t = useApp({ webhooks: { deliver: false } });
const d = domain(t);
const o = offline(t);
const s = sync(t);

const SUBMIT_ONE = `mutation($c: ChangeInput!) { submitChange(change: $c) { changeId outcome version waitsFor error { code message } } }`;
const SUBMIT_MANY = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { changeId outcome error { code message } } } } }`;

describe('run positions are bounded where they are accepted', () => {
  let ds: string;
  beforeAll(async () => {
    ds = await d.createDataset(['height']);
  });

  it('baseVersion 2147483647 on a new run is BASE_VERSION_INVALID, and the entity still answers its runs', async () => {
    const id = await d.create(ds, 'Oak');
    const change = { id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', branchId: randomUUID(), trunkVersion: 1, baseVersion: 2147483647, data: { height: 1 } };
    const r = ok(await t.gql(SUBMIT_ONE, { c: change })).submitChange;
    expect(r).toMatchObject({ outcome: 'REJECTED', version: null, error: { code: 'BASE_VERSION_INVALID', message: 'baseVersion must be a positive integer: baseVersion 2147483647' } });
    expect(await o.held({ entityId: id })).toEqual([]);
    const e = ok(await t.gql(`query($id: ID!) { entity(id: $id) { version branches { id missing { from to } } } }`, { id })).entity;
    expect(e).toEqual({ version: 1, branches: [] });
  });

  it(`a run longer than ${DEFAULT_LIMITS.maxRunLength} changes is RUN_TOO_LONG; the longest accepted run is held, and its gap is one range`, async () => {
    const id = await d.create(ds, 'Elm');
    const long = offlineRun(ds, id, 1);
    const tooLong = long.update(DEFAULT_LIMITS.maxRunLength + 2, { height: 2 });
    expect(await o.one(tooLong)).toMatchObject({ outcome: 'REJECTED', error: { code: 'RUN_TOO_LONG', message: `the offline run is longer than the server accepts: change ${DEFAULT_LIMITS.maxRunLength + 1} of the run, limit ${DEFAULT_LIMITS.maxRunLength}` } });
    // The last position a run may have: trunk 1 + 10,000.
    const last = long.update(DEFAULT_LIMITS.maxRunLength + 1, { height: 3 });
    expect(await o.one(last)).toMatchObject({ outcome: 'HELD', waitsFor: DEFAULT_LIMITS.maxRunLength });
    expect(await o.branch(long.branchId)).toMatchObject({ trunkVersion: 1, missing: [{ from: 1, to: DEFAULT_LIMITS.maxRunLength }], changes: [{ position: DEFAULT_LIMITS.maxRunLength + 1, state: 'HELD' }] });

    // A run that began with an offline create counts from its create (position 0).
    const fresh = offlineRun(ds, randomUUID(), null);
    expect(await o.one(fresh.update(DEFAULT_LIMITS.maxRunLength + 1, { height: 1 }))).toMatchObject({ outcome: 'REJECTED', error: { code: 'RUN_TOO_LONG' } });
    const farthest = fresh.update(DEFAULT_LIMITS.maxRunLength, { height: 1 });
    expect(await o.one(farthest)).toMatchObject({ outcome: 'HELD', waitsFor: DEFAULT_LIMITS.maxRunLength - 1 });
    expect((await o.branch(fresh.branchId))!.missing).toEqual([{ from: 0, to: DEFAULT_LIMITS.maxRunLength - 1 }]);

    // The forced flush takes it and the run goes on to its end, never asking past the bound.
    const forced = (await o.flush(0)).filter((r) => r.entityId === id || r.entityId === fresh.entityId);
    expect(forced.map((r) => [r.changeId, r.outcome])).toEqual([
      [last.id, 'APPLIED'],
      [farthest.id, 'APPLIED'],
    ]);
  });

  it('gaps are ranges: a run with every other position missing', async () => {
    const id = await d.create(ds, 'Ash');
    const run = offlineRun(ds, id, 1);
    await o.submit(run.update(3, { height: 3 }), run.update(5, { height: 5 }), run.update(6, { height: 6 }), run.update(9, { height: 9 }));
    const b = (await o.branch(run.branchId))!;
    expect(b.missing).toEqual([{ from: 1, to: 2 }, { from: 4, to: 4 }, { from: 7, to: 8 }]);
    expect(b.changes.map((c) => c.position)).toEqual([3, 5, 6, 9]);
    // Paged: after position 5, at most 2.
    const paged = ok(await t.gql(`query($id: ID!) { branch(id: $id) { changes(after: 5, limit: 2) { position } missing(limit: 2) { from to } } }`, { id: run.branchId })).branch;
    expect(paged).toEqual({ changes: [{ position: 6 }, { position: 9 }], missing: [{ from: 1, to: 2 }, { from: 4, to: 4 }] });
  });
});

describe('one failing held change never stops the forced flush', () => {
  it('a held change the database refuses to apply is recorded INTERNAL_ERROR and leaves the backlog; the others are forced', async () => {
    const a = await d.createDataset(['height']);
    const b = await d.createDataset(['height']);
    const poisonEntity = await d.create(a, 'Poison');
    const poisonRun = offlineRun(a, poisonEntity, 1);
    const poison = poisonRun.update(2, { height: 1 });
    expect(await o.one(poison)).toMatchObject({ outcome: 'HELD' });
    // The poison: the database refuses its version (standing in for a bug, or a value it cannot take).
    await t.database.db.execute(sql.raw(`create function refuse_poison() returns trigger language plpgsql as $$
      begin if new.change_id = '${poison.id}' then raise exception 'refused for the test'; end if; return new; end $$`));
    await t.database.db.execute(sql`create trigger refuse_poison before insert on entity_versions for each row execute function refuse_poison()`);
    try {
      // An ordinary held change in another dataset, held after it (so forced after it).
      const healthy = await d.create(b, 'Healthy');
      const waiting = offlineRun(b, healthy, 1).update(2, { height: 2 });
      expect(await o.one(waiting)).toMatchObject({ outcome: 'HELD' });

      const res = await t.gql(`mutation { flushBacklog(olderThanSeconds: 0) { changes { changeId outcome version error { code } } } }`);
      noInternalError(res);
      const forced = ok(res).flushBacklog.changes as { changeId: string; outcome: string; version: number | null; error: { code: string } | null }[];
      expect(forced.find((r) => r.changeId === poison.id)).toEqual({ changeId: poison.id, outcome: 'REJECTED', version: null, error: { code: 'INTERNAL_ERROR' } });
      expect(forced.find((r) => r.changeId === waiting.id)).toEqual({ changeId: waiting.id, outcome: 'APPLIED', version: 2, error: null });
      expect(await d.change(poison.id)).toMatchObject({ outcome: 'REJECTED', errorCode: 'INTERNAL_ERROR', version: null });
      expect(await o.held({ dataset: a })).toEqual([]);
      expect(await o.held({ dataset: b })).toEqual([]);
      expect((await d.entity(poisonEntity))!).toMatchObject({ version: 1 });
      // Nothing is left to fail again.
      expect(ok(await t.gql(`mutation { flushBacklog(olderThanSeconds: 0) { changes { changeId } } }`)).flushBacklog.changes).toEqual([]);
    } finally {
      await t.database.db.execute(sql`drop trigger refuse_poison on entity_versions`);
    }
  });

  it('a held change accepted before positions were bounded (baseVersion 2^31 - 1) is forced: no position past it is ever asked for', async () => {
    const ds = await d.createDataset(['height']);
    const id = await d.create(ds, 'Old');
    const old = { id: randomUUID(), branchId: randomUUID() };
    const change = { id: old.id, deviceId: null, dataset: ds, entityId: id, action: 'UPDATE', label: null, data: { height: 1 }, baseVersion: 2147483647, trunkVersion: 1, branchId: old.branchId };
    await t.database.db.execute(sql`insert into changes (change_id, dataset_name, entity_id, action, payload, outcome) values (${old.id}, ${ds}, ${id}, 'UPDATE', ${JSON.stringify(change)}::jsonb, 'HELD')`);
    await t.database.db.execute(sql`insert into held_changes (change_id, entity_id, dataset_name, branch_id, trunk_version, base_version, waits_for, change, held_since)
      values (${old.id}, ${id}, ${ds}, ${old.branchId}, 1, 2147483647, 2147483646, ${JSON.stringify(change)}::jsonb, now() - interval '1 hour')`);
    const res = await t.gql(`mutation($c: String) { flushBacklog(olderThanSeconds: 0, changeId: $c) { changes { changeId outcome version error { code } } } }`, { c: old.id });
    noInternalError(res);
    expect(ok(res).flushBacklog.changes).toEqual([{ changeId: old.id, outcome: 'APPLIED', version: 2, error: null }]);
    expect(await o.held({ dataset: ds })).toEqual([]);
  });
});

describe('every change of a batch is answered, whatever its neighbours hold', () => {
  let ds: string;
  beforeAll(async () => {
    ds = await d.createDataset(['height', 'notes']);
  });
  const good = () => ({ id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE' as const, label: 'Good', data: { height: 1 } });

  it('an operation value nested 10,000 deep: INVALID_PROPERTY_VALUE, the others land', async () => {
    const bad = { id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE' as const, label: 'Deep', operations: [{ op: 'SET' as const, property: 'notes', value: 0 }] };
    const [g1, g2] = [good(), good()];
    // Too deep for JSON.stringify on this side too: the value is spliced into the body as text.
    const deep = `${'['.repeat(10_000)}1${']'.repeat(10_000)}`;
    const body = JSON.stringify({ query: SUBMIT_MANY, variables: { c: [g1, bad, g2] } }).replace('"value":0', `"value":${deep}`);
    const res = await postRaw(t, body);
    noInternalError(res);
    const r = ok(res).submitChanges.data as { changeId: string; outcome: string; error: { code: string; message: string } | null }[];
    expect(r.map((x) => [x.changeId, x.outcome, x.error?.code ?? null])).toEqual([
      [g1.id, 'APPLIED', null],
      [bad.id, 'REJECTED', 'INVALID_PROPERTY_VALUE'],
      [g2.id, 'APPLIED', null],
    ]);
    expect(r[1]!.error!.message).toBe('a property value is not acceptable: operation 1 nests deeper than 32 levels');
    expect(await d.change(bad.id)).toMatchObject({ outcome: 'REJECTED', errorCode: 'INVALID_PROPERTY_VALUE' });
  });

  it('a 5,000-character deviceId with a localId: INVALID_DEVICE_ID, the others land', async () => {
    const bad = { id: randomUUID(), dataset: ds, deviceId: 'd'.repeat(5000), localId: 'L1', action: 'CREATE' as const, label: 'Long device' };
    const [g1, g2] = [good(), good()];
    const r = await s.submit(g1, bad, g2);
    expect(r.map((x) => [x.changeId, x.outcome, x.error?.code ?? null])).toEqual([
      [g1.id, 'APPLIED', null],
      [bad.id, 'REJECTED', 'INVALID_DEVICE_ID'],
      [g2.id, 'APPLIED', null],
    ]);
    expect(r[1]!.error!.message).toBe('the device id is not acceptable: deviceId of 5000 characters; at most 200 are accepted');
    expect(await d.change(bad.id)).toMatchObject({ outcome: 'REJECTED', errorCode: 'INVALID_DEVICE_ID', deviceId: 'd'.repeat(5000) });
  });

  it('INCREMENT past the largest double is VALUE_OUT_OF_RANGE and the count stays', async () => {
    const id = await d.create(ds, 'Counter', { height: 1.7e308 });
    const r = await s.one({ dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, operations: [{ op: 'INCREMENT', property: 'height', by: 1e308 }] });
    expect(r).toMatchObject({ outcome: 'REJECTED', error: { code: 'VALUE_OUT_OF_RANGE', message: 'the result is not a finite number: INCREMENT of "height" by 1e+308 leaves the range of numbers' } });
    expect((await d.entity(id))!).toMatchObject({ version: 1, data: { height: 1.7e308 } });
  });

  it('a resend with the same UUIDs in upper case is a DUPLICATE, not CHANGE_ID_REUSED', async () => {
    const c = good();
    expect(await d.one(c)).toMatchObject({ outcome: 'APPLIED', version: 1 });
    const again = await d.one({ ...c, id: c.id.toUpperCase(), entityId: c.entityId.toUpperCase() });
    expect(again).toMatchObject({ changeId: c.id, outcome: 'DUPLICATE', originalOutcome: 'APPLIED', version: 1, error: null });
  });
});

describe('aliases share one batch limit per request', () => {
  let small: TestApp;
  beforeAll(async () => {
    small = await startTestApp({ limits: { ...DEFAULT_LIMITS, maxBatch: 10 } });
  });
  afterAll(async () => {
    await small.close();
  });

  it('two aliased submitChanges of 6 with a limit of 10: both BATCH_TOO_LARGE, nothing stored', async () => {
    const ds = await domain(small).createDataset(['height']);
    const batch = () => Array.from({ length: 6 }, () => ({ id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'x' }));
    const [first, second] = [batch(), batch()];
    const res = ok(
      await small.gql(
        `mutation($a: [ChangeInput!]!, $b: [ChangeInput!]!) {
          a: submitChanges(changes: $a) { __typename ... on MutationSubmitChangesSuccess { data { outcome } } ... on Error { code message } }
          b: submitChanges(changes: $b) { __typename ... on MutationSubmitChangesSuccess { data { outcome } } ... on Error { code message } } }`,
        { a: first, b: second },
      ),
    );
    // Counted from the document before any field runs: neither field stores anything.
    const refused = { __typename: 'DomainError', code: 'BATCH_TOO_LARGE', message: 'this request submits 12 changes over its fields; the limit for one request is 10' };
    expect(res).toEqual({ a: refused, b: refused });
    for (const c of [...first, ...second]) expect(await domain(small).change(c.id)).toBeNull();
    // Each alone is within the limit.
    expect(ok(await small.gql(`mutation($a: [ChangeInput!]!) { a: submitChanges(changes: $a) { __typename } }`, { a: first })).a.__typename).toBe('MutationSubmitChangesSuccess');
  });

  it('submitChange beside a full batch in the same request: a coded top-level error (not a masked one), nothing stored', async () => {
    const ds = await domain(small).createDataset(['height']);
    const full = Array.from({ length: 10 }, () => ({ id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'x' }));
    const extra = { id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'y' };
    const res = await small.gql(
      `mutation($a: [ChangeInput!]!, $c: ChangeInput!) { a: submitChanges(changes: $a) { __typename } c: submitChange(change: $c) { outcome } }`,
      { a: full, c: extra },
    );
    // submitChange answers a ChangeResult (non-null), so its coded error nulls the whole answer.
    expect(res.data).toBeNull();
    expect(res.errors).toEqual([expect.objectContaining({ path: ['c'], extensions: expect.objectContaining({ code: 'BATCH_TOO_LARGE' }) })]);
    for (const c of [...full, extra]) expect(await domain(small).change(c.id)).toBeNull();
  });
});

describe('no dataset learns or takes the local ids of another', () => {
  it('a token of dataset A (no device) asking for bird-1/L1 in A neither finds nor takes the mapping bird-1/L1 of B', async () => {
    const [a, b] = [uniqueName('a'), uniqueName('b')];
    await d.createDataset(['note'], a);
    await d.createDataset(['note'], b);
    const { secret } = await createToken(t.database.db, { name: 'A only', role: 'collector', datasets: [a] });
    const asA = sync({ ...t, gql: (q, v) => t.gqlAs(secret, q, v) });

    // The squat comes first: an update in A by the local id, before B's device ever creates it.
    const squat = await asA.one({ dataset: a, deviceId: 'bird-1', localId: 'L1', action: 'UPDATE', baseVersion: 1, data: { note: 'mine now' } });
    expect(squat).toMatchObject({ outcome: 'HELD', localId: 'L1', error: null });

    // The real device creates L1 in B: it lands, as its own entity.
    const created = await s.one({ dataset: b, deviceId: 'bird-1', localId: 'L1', action: 'CREATE', label: 'Robin', data: { note: 'nest' } });
    expect(created).toMatchObject({ outcome: 'APPLIED', version: 1, localId: 'L1', error: null, released: [] });
    expect(created.entityId).not.toBe(squat.entityId);

    // A again: its own mapping, never B's entity id.
    const probe = await asA.one({ dataset: a, deviceId: 'bird-1', localId: 'L1', action: 'DELETE', baseVersion: 2 });
    expect(probe.entityId).toBe(squat.entityId);
    expect(JSON.stringify(probe)).not.toContain(created.entityId!);
    expect((await d.entity(created.entityId!))!).toMatchObject({ label: 'Robin', version: 1, data: { note: 'nest' } });
  });
});

describe('who sees a run: one rule on every path', () => {
  it('a collector is refused runs under a pull (changesSince → versions → entity → branches); a reviewer sees them', async () => {
    const ds = await d.createDataset(['height']);
    const id = await d.create(ds, 'Oak');
    const run = offlineRun(ds, id, 1, { deviceId: 'other-phone' });
    const held = run.update(2, { height: 2 });
    expect(await o.one(held)).toMatchObject({ outcome: 'HELD' });
    const collector = await createToken(t.database.db, { name: 'c', role: 'collector', datasets: [ds] });
    const reviewer = await createToken(t.database.db, { name: 'r', role: 'reviewer', datasets: [ds] });
    const PULL = `query($ds: String!) { changesSince(dataset: $ds, limit: 10) { ... on QueryChangesSinceSuccess { data { versions { version entity { id branches { id changes { changeId state } } } } } } } }`;
    const refused = await t.gqlAs(collector.secret, PULL, { ds });
    expect(refused.errors?.map((e) => [e.extensions?.code, (e as { path?: unknown[] }).path?.at(-1)])).toEqual([['FORBIDDEN', 'branches']]);
    expect(JSON.stringify(refused)).not.toContain(run.branchId);

    const seen = ok(await t.gqlAs(reviewer.secret, PULL, { ds })).changesSince.data.versions;
    expect(seen[0].entity.branches).toEqual([{ id: run.branchId, changes: [{ changeId: held.id, state: 'HELD' }] }]);
  });
});

describe('runs under a page are loaded for the page and priced by their page sizes', () => {
  it('a pull of 60 versions asking for every entity\'s runs: the answer is right, from five statements whatever the page', async () => {
    const ds = await d.createDataset(['height']);
    const ENTITIES = 20;
    const ids = Array.from({ length: ENTITIES }, () => randomUUID());
    await d.submit(...ids.map((entityId) => ({ dataset: ds, entityId, action: 'CREATE' as const, label: 'E', data: { height: 0 } })));
    // Each entity: one run of two applied changes, and one run with a gap (a held change).
    const runs = ids.map((id) => ({ done: offlineRun(ds, id, 1), waiting: offlineRun(ds, id, 1) }));
    await o.submit(...runs.flatMap(({ done }) => [done.update(1, { height: 1 }), done.update(2, { height: 2 })]));
    await o.submit(...runs.map(({ waiting }) => waiting.update(3, { height: 9 })));

    const PULL = `query($ds: String!) { changesSince(dataset: $ds, limit: 100) { ... on QueryChangesSinceSuccess { data { versions { version entity { id
      branches(limit: 2) { id trunkVersion missing(limit: 10) { from to } changes(limit: 10) { position state } } } } } } } }`;
    await s.pull(ds);
    const recording = recordStatements(t.database);
    const res = await t.gql(PULL, { ds });
    const statements = recording.stop();
    noInternalError(res);
    const versions = ok(res).changesSince.data.versions as { version: number; entity: { id: string; branches: unknown[] } }[];
    expect(versions).toHaveLength(ENTITIES * 3);
    for (const [i, id] of ids.entries()) {
      const expected = [
        { id: runs[i]!.done.branchId, trunkVersion: 1, missing: [], changes: [{ position: 1, state: 'APPLIED' }, { position: 2, state: 'APPLIED' }] },
        { id: runs[i]!.waiting.branchId, trunkVersion: 1, missing: [{ from: 1, to: 2 }], changes: [{ position: 3, state: 'HELD' }] },
      ];
      for (const v of versions.filter((x) => x.entity.id === id)) expect(v.entity.branches).toEqual(expected);
    }
    // Authentication aside: the page, its entities, their runs, and each run field once for the page.
    // The dataset and the page in one statement, its versions with their entities; then the runs of
    // all 20 entities at once, and their members once for `changes` and once for `missing` (a
    // loader per place in the query).
    const named = statements.map((q) => /\/\* (\w+) \*\//.exec(q)?.[1] ?? 'unnamed');
    expect(named.slice(2)).toEqual(['runsOfEntities', 'runMembers', 'runMembers']);
    expect(statements).toHaveLength(5);
  });

  it('is priced by its page sizes: every run\'s changes under a 1,000-version page is refused before it runs', async () => {
    const res = await t.gql(`{ changesSince(dataset: "x", limit: 1000) { ... on QueryChangesSinceSuccess { data { versions { entity { branches(limit: 100) { changes(limit: 1000) { position } } } } } } } }`);
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(res.errors![0]!.message).toMatch(/^query cost limit of 100000 exceeded \(found \d+\)$/);
    expect(Number(/found (\d+)/.exec(res.errors![0]!.message)![1])).toBeGreaterThan(1000 * 100 * 1000);
  });
});
