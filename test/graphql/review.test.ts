import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { createToken } from '../../src/sync/tokens.js';
import { useApp, type GqlResponse } from '../helpers/app.js';
import { domain, ok, sync, uniqueName } from '../helpers/domain.js';
import { CHANGED_SUB, socketClient, trackSubscriptions, waitUntil, type SocketClient, type Tracker } from '../helpers/live.js';

/**
 * Issue 19 items 1, 2 and 4: a reviewer settles a conflict at the version looked at, may write
 * chosen values as a version of its own, restores a deleted entity, and every verdict is recorded
 * (who, when, at which version, the note, the version written). Over real HTTP, both back ends.
 */
const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
const s = sync(t);

const PROPS = ['height', 'species', 'note'];
const tokens = { ana: '', collector: '' };
let trees = '';
let ws: SocketClient;
let tracker: Tracker;
beforeAll(async () => {
  trees = await d.createDataset(PROPS, uniqueName('trees'));
  tokens.ana = (await createToken(t.database.db, { name: 'Ana (reviewer)', role: 'reviewer', datasets: [trees] })).secret;
  tokens.collector = (await createToken(t.database.db, { name: 'tablet', role: 'collector', datasets: [trees] })).secret;
  tracker = trackSubscriptions(t.app.bus);
  ws = socketClient(t.url);
});
afterAll(() => ws?.close());

const RESOLUTION = 'id kind entityId atVersion versionWritten conflict conflictingProperties conflictsResolved by tokenId note createdAt';
const RESOLVE = `mutation($id: ID!, $v: Int!, $values: JSONObject, $label: String, $note: String) {
  resolveConflict(entityId: $id, version: $v, values: $values, label: $label, note: $note) {
    __typename ... on MutationResolveConflictSuccess { data { id label data version conflict } } ... on DomainError { code message } } }`;
const RESTORE = `mutation($id: ID!, $v: Int!, $note: String) { restoreEntity(entityId: $id, version: $v, note: $note) {
  __typename ... on MutationRestoreEntitySuccess { data { id label data version deleted conflict } } ... on DomainError { code message } } }`;
const STATE = `query($id: ID!) { entity(id: $id) {
  label data version conflict deleted
  resolutions { nodes { ${RESOLUTION} } }
  versions { version source deviceId changeId appliedOn changed conflict resolved serverDiff { property old new } baseDiff { property old new } resolution { id kind by } } } }`;

/** An entity of `trees` with a HARD conflict on height at version 3 (office-1 set 2 at v2, tablet-7 set 3 at v3). */
async function conflicted(label = 'Oak'): Promise<string> {
  const id = await d.create(trees, label, { height: 1, species: 'oak' });
  expect(await d.update(trees, id, 1, { height: 2 }, { deviceId: 'office-1' })).toMatchObject({ version: 2, conflict: null });
  expect(await d.update(trees, id, 1, { height: 3, note: 'measured' }, { deviceId: 'tablet-7' })).toMatchObject({ version: 3, conflict: 'HARD', conflictingProperties: ['height'] });
  return id;
}
const state = async (id: string) => ok(await t.gql(STATE, { id })).entity;
const resolveAs = (token: string | null, vars: Record<string, unknown>): Promise<GqlResponse> => (token ? t.gqlAs(token, RESOLVE, vars) : t.gql(RESOLVE, vars));
const resolve = async (vars: Record<string, unknown>, token: string | null = null) => ok(await resolveAs(token, vars)).resolveConflict;

describe('resolveConflict at the version looked at', () => {
  it('with values: a version from the reviewer on top, then the conflict resolved; the verdict recorded with who, why and what it wrote', async () => {
    const id = await conflicted();
    const r = await resolve({ id, v: 3, values: { height: 2 }, note: "kept the office's height" }, tokens.ana);
    expect(r).toEqual({ __typename: 'MutationResolveConflictSuccess', data: { id, label: 'Oak', data: { height: 2, species: 'oak', note: 'measured' }, version: 4, conflict: null } });
    const e = await state(id);
    const [resolution] = e.resolutions.nodes;
    expect(resolution).toMatchObject({
      kind: 'RESOLVE', entityId: id, atVersion: 3, versionWritten: 4, conflict: 'HARD', conflictingProperties: ['height'], conflictsResolved: 1,
      by: 'Ana (reviewer)', note: "kept the office's height",
    });
    expect(resolution.tokenId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.now() - Date.parse(resolution.createdAt)).toBeLessThan(60_000);
    // The history says a reviewer wrote version 4, on version 3, from no device; version 3's conflict is resolved by the same verdict.
    expect(e.versions.map((v: any) => [v.version, v.source, v.deviceId, v.conflict, v.resolved, v.resolution?.id ?? null])).toEqual([
      [1, 'ONLINE', null, null, false, null],
      [2, 'ONLINE', 'office-1', null, false, null],
      [3, 'ONLINE', 'tablet-7', 'HARD', true, resolution.id],
      [4, 'REVIEW', null, null, false, resolution.id],
    ]);
    expect(e.versions[3]).toMatchObject({
      changeId: `review-${resolution.id}`, appliedOn: 3, changed: { height: 2 },
      serverDiff: [{ property: 'height', old: 3, new: 2 }], baseDiff: [{ property: 'height', old: 3, new: 2 }], resolution: { kind: 'RESOLVE', by: 'Ana (reviewer)' },
    });
    // The reviewer's version is pulled like any other.
    const pulled = await s.pull(trees);
    expect(pulled.versions.filter((v) => v.entity.id === id).map((v) => [v.version, v.changeId, v.data])).toContainEqual([4, `review-${resolution.id}`, { height: 2, species: 'oak', note: 'measured' }]);
  });

  it('without values: the conflicts marked resolved, no version; with a label only: the label set', async () => {
    const id = await conflicted();
    expect(await resolve({ id, v: 3 })).toMatchObject({ data: { version: 3, conflict: null } });
    const e = await state(id);
    expect(e.versions).toHaveLength(3);
    expect(e.resolutions.nodes).toEqual([expect.objectContaining({ atVersion: 3, versionWritten: null, by: 'anonymous', tokenId: null, note: null, conflictsResolved: 1 })]);
    const other = await conflicted();
    expect(await resolve({ id: other, v: 3, label: '  Oak by the gate  ' })).toMatchObject({ data: { label: 'Oak by the gate', version: 4, conflict: null } });
    expect((await state(other)).versions[3]).toMatchObject({ source: 'REVIEW', changed: { label: 'Oak by the gate' }, serverDiff: [{ property: 'label', old: 'Oak', new: 'Oak by the gate' }] });
  });

  it('values equal to what is there write no version; every open conflicting version is resolved by one verdict', async () => {
    const id = await conflicted();
    expect(await d.update(trees, id, 1, { species: 'elm' })).toMatchObject({ version: 4, conflict: 'SOFT' });
    expect(await resolve({ id, v: 4, values: { height: 3, species: 'elm' } })).toMatchObject({ data: { version: 4, conflict: null } });
    const e = await state(id);
    expect(e.versions.map((v: any) => [v.version, v.resolved])).toEqual([[1, false], [2, false], [3, true], [4, true]]);
    expect(e.resolutions.nodes).toEqual([expect.objectContaining({ versionWritten: null, conflict: 'HARD', conflictingProperties: ['height'], conflictsResolved: 2 })]);
  });

  it('STALE_VERSION naming the current version when the entity moved on, VERSION_AHEAD past it: nothing changes', async () => {
    const id = await conflicted();
    const before = await state(id);
    expect(await resolve({ id, v: 2, values: { height: 9 }, note: 'late' })).toEqual({ __typename: 'DomainError', code: 'STALE_VERSION', message: 'the entity has moved past the version the reviewer looked at (reload it and decide again): it is at version 3, not 2' });
    expect(await resolve({ id, v: 4 })).toEqual({ __typename: 'DomainError', code: 'VERSION_AHEAD', message: 'the version named is ahead of the entity (no such version was ever shown): it is at version 3, not 4' });
    expect(await resolve({ id, v: 0 })).toMatchObject({ code: 'STALE_VERSION' });
    expect(await state(id)).toEqual(before);
  });

  it('bad input is a typed error and changes nothing: unknown or reserved property, wrong shapes, too large, a bad label, a note over its bound', async () => {
    const id = await conflicted();
    const before = await state(id);
    const deep: Record<string, unknown> = {};
    let cursor = deep;
    for (let i = 0; i < 40; i++) cursor = (cursor.x = {}) as Record<string, unknown>;
    const cases: [Record<string, unknown>, string, string | RegExp][] = [
      [{ values: { colour: 'red' } }, 'UNKNOWN_PROPERTY', 'a property is not declared by the dataset: colour'],
      [{ values: { label: 'x' } }, 'UNKNOWN_PROPERTY', /reserved/],
      [{ values: { note: deep } }, 'INVALID_PROPERTY_VALUE', /nests|"note"/],
      [{ values: { note: 'x'.repeat(70_000) } }, 'TOO_LARGE', /bytes, limit 65536/],
      [{ values: Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`p${i}`, i])) }, 'TOO_LARGE', '201 properties, limit 200'.replace(/^/, 'the change is too large: ')],
      [{ values: { 'bad\u0000key': 1 } }, 'UNKNOWN_PROPERTY', /NUL/],
      [{ label: '   ' }, 'INVALID_LABEL', 'the label is not acceptable: label is empty'],
      [{ label: 'a\u0001b' }, 'INVALID_LABEL', /control characters/],
      [{ note: 'n'.repeat(2001) }, 'INVALID_NOTE', 'the note is not acceptable: 2001 characters; at most 2000'],
      [{ note: 'why\u0000' }, 'INVALID_NOTE', /control characters|Unicode/],
    ];
    for (const [vars, code, message] of cases) {
      const r = await resolve({ id, v: 3, ...vars });
      expect(r, JSON.stringify(vars).slice(0, 80)).toMatchObject({ __typename: 'DomainError', code });
      if (typeof message === 'string') expect(r.message).toBe(message);
      else expect(r.message).toMatch(message);
    }
    // Not an object at all: refused by the JSONObject scalar before anything runs.
    for (const values of [[1, 2], 'height=2', 5]) {
      const res = await t.gql(RESOLVE, { id, v: 3, values });
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['BAD_USER_INPUT']);
    }
    expect(await state(id)).toEqual(before);
    // A note at its bound, with line breaks, is fine.
    const note = `${'n'.repeat(1990)}\nsecond`;
    expect(await resolve({ id, v: 3, note: note.slice(0, 2000) })).toMatchObject({ __typename: 'MutationResolveConflictSuccess' });
    expect((await state(id)).resolutions.nodes[0].note).toBe(note.slice(0, 2000));
  });

  it('NOT_IN_CONFLICT, ENTITY_NOT_FOUND, MALFORMED_ID; a deleted entity: marked resolved, but values are ENTITY_DELETED', async () => {
    const calm = await d.create(trees, 'Calm', { height: 1 });
    expect(await resolve({ id: calm, v: 1 })).toEqual({ __typename: 'DomainError', code: 'NOT_IN_CONFLICT', message: `the entity has no unresolved conflict: ${calm}` });
    const unknown = randomUUID();
    expect(await resolve({ id: unknown, v: 1 })).toEqual({ __typename: 'DomainError', code: 'ENTITY_NOT_FOUND', message: `the entity does not exist: ${unknown}` });
    expect(await resolve({ id: 'nope', v: 1 })).toMatchObject({ __typename: 'DomainError', code: 'MALFORMED_ID' });

    const id = await d.create(trees, 'Doomed', { height: 1 });
    expect(await d.update(trees, id, 1, { height: 2 })).toMatchObject({ version: 2 });
    expect(await d.remove(trees, id, 1)).toMatchObject({ version: 3, conflict: 'HARD', conflictingProperties: ['height'] });
    expect(await resolve({ id, v: 3, values: { height: 5 } })).toEqual({ __typename: 'DomainError', code: 'ENTITY_DELETED', message: `the entity has been deleted: ${id}; restore it (restoreEntity) before writing values` });
    expect(await resolve({ id, v: 3 })).toMatchObject({ __typename: 'MutationResolveConflictSuccess', data: { version: 3, conflict: null } });
    expect(await state(id)).toMatchObject({ deleted: true, conflict: null, version: 3 });
  });

  it('a collector may not resolve, nor a reviewer of other datasets (FORBIDDEN, nothing changes)', async () => {
    const id = await conflicted();
    const other = await createToken(t.database.db, { name: 'birds reviewer', role: 'reviewer', datasets: ['birds_elsewhere'] });
    for (const token of [tokens.collector, other.secret]) {
      const res = await resolveAs(token, { id, v: 3 });
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    }
    expect(await state(id)).toMatchObject({ conflict: 'HARD', version: 3, resolutions: { nodes: [] } });
  });

  it("a collector pulls the reviewer's version but not who made it or why: resolution null, resolutions and conflictDetails FORBIDDEN", async () => {
    const id = await conflicted();
    await resolve({ id, v: 3, values: { height: 2 }, note: 'private reasoning' }, tokens.ana);
    const asCollector = sync({ ...t, gql: (q, v) => t.gqlAs(tokens.collector, q, v) });
    const pulled = (await asCollector.pull(trees, {}, 'version source entity { id } resolution { by note }')).versions.filter((v: any) => v.entity.id === id);
    expect(pulled.map((v: any) => [v.version, v.source, v.resolution])).toEqual([[1, 'ONLINE', null], [2, 'ONLINE', null], [3, 'ONLINE', null], [4, 'REVIEW', null]]);
    const change = { id: randomUUID(), dataset: trees, entityId: id, action: 'UPDATE', baseVersion: 4, data: { note: 'again' } };
    for (const field of ['resolutions { nodes { by } }', 'conflictDetails { property }']) {
      const res = await t.gqlAs(tokens.collector, `mutation($c: ChangeInput!) { submitChange(change: $c) { outcome entity { ${field} } } }`, { c: { ...change, id: randomUUID() } });
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
      expect(JSON.stringify(res)).not.toContain('private reasoning');
    }
  });

  it('publishes entityChanged and conflictResolved (with the verdict) after the commit; a refused resolve publishes nothing', async () => {
    const id = await conflicted();
    const before = tracker.opened();
    const changed = ws.subscribe(CHANGED_SUB, { ds: trees, e: id });
    const resolved = ws.subscribe(`subscription($ds: String!, $e: ID) { conflictResolved(dataset: $ds, entityId: $e) { entityId version resolution { atVersion versionWritten note by } entity { version conflict } } }`, { ds: trees, e: id });
    await waitUntil(() => tracker.opened() >= before + 2, 'both subscriptions to be live', 3000);
    expect(await resolve({ id, v: 2 })).toMatchObject({ code: 'STALE_VERSION' });
    expect(await resolve({ id, v: 3, values: { height: 4 }, note: 'measured again' }, tokens.ana)).toMatchObject({ data: { version: 4 } });
    expect(await changed.take(1)).toEqual([{ dataset: trees, entityId: id, version: 4, entity: { version: 4 } }]);
    expect(await resolved.take(1)).toEqual([{ entityId: id, version: 4, resolution: { atVersion: 3, versionWritten: 4, note: 'measured again', by: 'Ana (reviewer)' }, entity: { version: 4, conflict: null } }]);
    changed.close();
    resolved.close();
  });

  it('the verdicts survive a restart: another server on the same database reads them', async () => {
    const id = await conflicted();
    await resolve({ id, v: 3, values: { height: 2 }, note: 'kept' }, tokens.ana);
    const again = buildApp({ db: t.database.db, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
    const url = await again.start(0, '127.0.0.1');
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: STATE, variables: { id } }) });
      const e = ((await res.json()) as { data: { entity: any } }).data.entity;
      expect(e.resolutions.nodes).toEqual([expect.objectContaining({ atVersion: 3, versionWritten: 4, note: 'kept', by: 'Ana (reviewer)' })]);
      expect(e.versions[3]).toMatchObject({ source: 'REVIEW', resolution: { kind: 'RESOLVE' } });
    } finally {
      await again.stop();
    }
  });
});

describe('restoreEntity', () => {
  it('undoes a delete with a version from the reviewer: pulled, published, recorded; changes apply to it again', async () => {
    const id = await d.create(trees, 'Oak', { height: 1, species: 'oak' });
    expect(await d.remove(trees, id, 1)).toMatchObject({ version: 2 });
    const before = tracker.opened();
    const changed = ws.subscribe(CHANGED_SUB, { ds: trees, e: id });
    await waitUntil(() => tracker.opened() > before, 'the subscription to be live', 3000);
    const r = ok(await t.gqlAs(tokens.ana, RESTORE, { id, v: 2, note: 'deleted by mistake' })).restoreEntity;
    expect(r).toEqual({ __typename: 'MutationRestoreEntitySuccess', data: { id, label: 'Oak', data: { height: 1, species: 'oak' }, version: 3, deleted: false, conflict: null } });
    expect(await changed.take(1)).toEqual([{ dataset: trees, entityId: id, version: 3, entity: { version: 3 } }]);
    changed.close();

    const e = await state(id);
    expect(e.versions[2]).toMatchObject({ version: 3, source: 'REVIEW', deviceId: null, appliedOn: 2, changed: {}, resolution: { kind: 'RESTORE', by: 'Ana (reviewer)' } });
    expect(e.resolutions.nodes).toEqual([expect.objectContaining({ kind: 'RESTORE', atVersion: 2, versionWritten: 3, conflict: null, conflictsResolved: 0, note: 'deleted by mistake' })]);
    const pulled = (await s.pull(trees, {}, 'version changeId action label data conflict operations { op } entity { id } deleted')).versions.filter((v: any) => v.entity.id === id);
    expect(pulled.map((v: any) => [v.version, v.deleted])).toEqual([[1, false], [2, true], [3, false]]);
    expect(await d.update(trees, id, 3, { height: 2 })).toMatchObject({ outcome: 'APPLIED', version: 4, conflict: null });
  });

  it('STALE_VERSION, VERSION_AHEAD, ENTITY_NOT_DELETED, ENTITY_NOT_FOUND, INVALID_NOTE; a collector is FORBIDDEN; nothing changes', async () => {
    const id = await d.create(trees, 'Oak', { height: 1 });
    expect(await d.remove(trees, id, 1)).toMatchObject({ version: 2 });
    const restore = async (vars: Record<string, unknown>) => ok(await t.gql(RESTORE, vars)).restoreEntity;
    expect(await restore({ id, v: 1 })).toEqual({ __typename: 'DomainError', code: 'STALE_VERSION', message: 'the entity has moved past the version the reviewer looked at (reload it and decide again): it is at version 2, not 1' });
    expect(await restore({ id, v: 3 })).toMatchObject({ code: 'VERSION_AHEAD' });
    expect(await restore({ id, v: 2, note: 'x'.repeat(2001) })).toMatchObject({ code: 'INVALID_NOTE' });
    const calm = await d.create(trees, 'Calm');
    expect(await restore({ id: calm, v: 1 })).toEqual({ __typename: 'DomainError', code: 'ENTITY_NOT_DELETED', message: `the entity is not deleted, so there is nothing to restore: ${calm}` });
    expect(await restore({ id: randomUUID(), v: 1 })).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
    const res = await t.gqlAs(tokens.collector, RESTORE, { id, v: 2 });
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    expect(await state(id)).toMatchObject({ deleted: true, version: 2, resolutions: { nodes: [] } });
  });
});
