import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/server/app.js';
import { createToken, setTokenSubset } from '../../src/sync/tokens.js';
import { useApp } from '../helpers/app.js';
import { domain, ok } from '../helpers/domain.js';
import { recordStatements } from '../helpers/statements.js';
import { pullable } from '../helpers/subset-device.js';

/**
 * Pages read ahead (src/sync/read-ahead.ts): while a page that says `hasMore` is sent, the next
 * one is read, and handed out only if it is what a read at that moment returns. Each page a
 * device gets here is compared with the same pull, at the same moment, from a second server on
 * the same database that reads nothing ahead.
 */

const t = useApp({ flushIntervalSeconds: 0, webhooks: { deliver: false } });
const d = domain(t);
let plain: { app: App; url: string };

beforeAll(async () => {
  const app = buildApp({ db: t.database.db, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' }, webhooks: { deliver: false }, readAheadPages: 0 });
  plain = { app, url: await app.start(0, '127.0.0.1') };
});
afterAll(async () => {
  await plain.app.stop();
});

const FIELDS = 'entityId version label data deleted conflict resolved';
const PULL = `query($ds: String!, $c: String, $l: Int, $dev: String) { changesSince(dataset: $ds, cursor: $c, limit: $l, deviceId: $dev) {
  __typename ... on QueryChangesSinceSuccess { data { cursor hasMore left versions { ${FIELDS} } entered { ${FIELDS} } localIds { localId entityId } } } ... on DomainError { code message } } }`;

async function pullAt(url: string, secret: string, vars: { ds: string; c: string | null; l: number; dev: string }) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` }, body: JSON.stringify({ query: PULL, variables: vars }) });
  const body = (await res.json()) as { data: { changesSince: { __typename: string; data: { cursor: string; hasMore: boolean; versions: unknown[]; entered: unknown[]; left: string[] } } } };
  expect(body.data.changesSince.__typename, JSON.stringify(body)).toBe('QueryChangesSinceSuccess');
  return body.data.changesSince.data;
}

/** A device's page from the server that reads ahead, and the same pull from the one that does not. */
async function pullBoth(secret: string, vars: { ds: string; c: string | null; l: number; dev: string }) {
  await pullable(t.database.db);
  const got = await pullAt(t.url, secret, vars);
  const fresh = await pullAt(plain.url, secret, vars);
  expect(got).toEqual(fresh);
  return got;
}

async function device(ds: string, subset?: { property: string; values: string[] }[]) {
  const deviceId = `tab-${randomUUID().slice(0, 8)}`;
  const { secret, token } = await createToken(t.database.db, { name: 'tablet', role: 'collector', deviceId, datasets: [ds], ...(subset ? { subset } : {}) });
  return { secret, tokenId: token.id, deviceId };
}

describe('pages read ahead', () => {
  it('a held page that was not full is read again when a version committed after it was read: the device gets the new one', async () => {
    const ds = await d.createDataset(['region']);
    for (let i = 0; i < 3; i++) await d.create(ds, `e${i}`, { region: 'a' });
    const dev = await device(ds);
    const first = await pullBoth(dev.secret, { ds, c: null, l: 2, dev: dev.deviceId });
    expect([first.versions.length, first.hasMore]).toEqual([2, true]);
    // The second page (one version, the last) is held now; a fourth entity commits after it.
    const late = await d.create(ds, 'late', { region: 'a' });
    const recording = recordStatements(t.database);
    const second = await pullBoth(dev.secret, { ds, c: first.cursor, l: 2, dev: dev.deviceId });
    const work = recording.stop();
    expect(second.versions.map((v) => (v as { label: string }).label)).toEqual(['e2', 'late']);
    expect(second.versions.map((v) => (v as { entityId: string }).entityId)).toContain(late);
    // Found stale by the check, then read again (once here, once by the server without read-ahead).
    expect(work.filter((q) => q.includes('/* readAheadCurrent */'))).toHaveLength(1);
    expect(work.filter((q) => q.includes('/* changesSince */'))).toHaveLength(2);
  });

  it('a held page that was full is handed out as it was read, with no read of its own: later commits sort after it', async () => {
    const ds = await d.createDataset(['region']);
    for (let i = 0; i < 5; i++) await d.create(ds, `e${i}`, { region: 'a' });
    const dev = await device(ds);
    const first = await pullBoth(dev.secret, { ds, c: null, l: 2, dev: dev.deviceId });
    await d.create(ds, 'late', { region: 'a' });
    const recording = recordStatements(t.database);
    const got = await pullAt(t.url, dev.secret, { ds, c: first.cursor, l: 2, dev: dev.deviceId });
    const work = recording.stop();
    expect(got.versions.map((v) => (v as { label: string }).label)).toEqual(['e2', 'e3']);
    // The check, and the read ahead of the page after it: no read of this page.
    expect(work.filter((q) => q.includes('/* readAheadCurrent */'))).toHaveLength(1);
    expect(work.filter((q) => q.includes('/* changesSince */'))).toHaveLength(1);
    const rest = await pullBoth(dev.secret, { ds, c: got.cursor, l: 10, dev: dev.deviceId });
    expect(rest.versions.map((v) => (v as { label: string }).label)).toEqual(['e4', 'late']);
  });

  it('a token given a subset between two pages gets its share from there, not the page read before', async () => {
    const ds = await d.createDataset(['region']);
    for (let i = 0; i < 6; i++) await d.create(ds, `e${i}`, { region: i % 2 === 0 ? 'a' : 'b' });
    const dev = await device(ds);
    const first = await pullBoth(dev.secret, { ds, c: null, l: 2, dev: dev.deviceId });
    // The page held (e2 and e3, of the whole dataset) is full, but read from the versions.
    await setTokenSubset(t.database.db, dev.tokenId, [{ property: 'region', values: ['a'] }]);
    const second = await pullBoth(dev.secret, { ds, c: first.cursor, l: 2, dev: dev.deviceId });
    const rest = await pullBoth(dev.secret, { ds, c: second.cursor, l: 10, dev: dev.deviceId });
    // The device has e0 and e1: the entities of region b leave, e2 and e4 enter (e0 it has).
    expect([...second.left, ...rest.left]).toHaveLength(3);
    expect([...second.versions, ...rest.versions]).toEqual([]);
    expect(([...second.entered, ...rest.entered] as { label: string }[]).map((v) => v.label).sort()).toEqual(['e2', 'e4']);
  });

  it('a held page with a conflict still open is read again: a reviewer marking it resolved in place shows', async () => {
    const ds = await d.createDataset(['region']);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await d.create(ds, `e${i}`, { region: 'a' }));
    const e3 = ids[3]!;
    await d.update(ds, e3, 1, { region: 'b' });
    const conflicted = await d.update(ds, e3, 1, { region: 'c' });
    expect([conflicted.version, conflicted.conflict]).toEqual([3, 'HARD']);
    const dev = await device(ds);
    const first = await pullBoth(dev.secret, { ds, c: null, l: 2, dev: dev.deviceId });
    const second = await pullBoth(dev.secret, { ds, c: first.cursor, l: 2, dev: dev.deviceId });
    // The last page (e3's versions 2 and 3, 3 in conflict) is held now; a reviewer resolves it.
    const r = ok(await t.gql(`mutation($id: ID!, $v: Int!) { resolveConflict(entityId: $id, version: $v) { __typename } }`, { id: e3, v: 3 }));
    expect(r.resolveConflict.__typename).toBe('MutationResolveConflictSuccess');
    const third = await pullBoth(dev.secret, { ds, c: second.cursor, l: 2, dev: dev.deviceId });
    expect(third.versions.map((v) => [(v as { version: number }).version, (v as { resolved: boolean }).resolved])).toEqual([
      [2, false],
      [3, true],
    ]);
  });

  it('random writes, reassignments and pulls: every page equals a read at that moment', async () => {
    const ds = await d.createDataset(['region']);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await d.create(ds, `s${i}`, { region: i % 2 === 0 ? 'a' : 'b' }));
    const dev = await device(ds, [{ property: 'region', values: ['a'] }]);
    const open = await device(ds);
    const versions = new Map(ids.map((id) => [id, 1]));
    const step = fc.oneof(
      fc.record({ kind: fc.constant('create' as const), region: fc.constantFrom('a', 'b') }),
      fc.record({ kind: fc.constant('move' as const), which: fc.nat(), region: fc.constantFrom('a', 'b') }),
      fc.record({ kind: fc.constant('reassign' as const), values: fc.subarray(['a', 'b'], { minLength: 1 }) }),
      fc.record({ kind: fc.constant('pull' as const), who: fc.constantFrom('subset', 'open') }),
    );
    const cursors = { subset: null as string | null, open: null as string | null };
    await fc.assert(
      // One page size per run, so that a device's next page is the one held.
      fc.asyncProperty(fc.integer({ min: 1, max: 3 }), fc.array(step, { minLength: 4, maxLength: 12 }), async (limit, steps) => {
        for (const s of steps) {
          if (s.kind === 'create') {
            const id = await d.create(ds, `n${ids.length}`, { region: s.region });
            ids.push(id);
            versions.set(id, 1);
          } else if (s.kind === 'move') {
            const id = ids[s.which % ids.length]!;
            const r = await d.update(ds, id, versions.get(id)!, { region: s.region });
            versions.set(id, r.version!);
          } else if (s.kind === 'reassign') {
            await setTokenSubset(t.database.db, dev.tokenId, [{ property: 'region', values: s.values }]);
          } else {
            const who = s.who === 'subset' ? dev : open;
            const page = await pullBoth(who.secret, { ds, c: cursors[s.who], l: limit, dev: who.deviceId });
            cursors[s.who] = page.cursor;
          }
        }
      }),
      { numRuns: 15 },
    );
  });

  it('holds at most readAheadPages pages; a server stopping with a read ahead in flight stops', async () => {
    const ds = await d.createDataset(['region']);
    for (let i = 0; i < 4; i++) await d.create(ds, `e${i}`, { region: 'a' });
    const one = buildApp({ db: t.database.db, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' }, webhooks: { deliver: false }, readAheadPages: 1 });
    const url = await one.start(0, '127.0.0.1');
    try {
      const [a, b] = [await device(ds), await device(ds)];
      await pullable(t.database.db);
      const recording = recordStatements(t.database);
      const pa = await pullAt(url, a.secret, { ds, c: null, l: 1, dev: a.deviceId });
      const pb = await pullAt(url, b.secret, { ds, c: null, l: 1, dev: b.deviceId });
      // a's second page is held; b's is not read ahead (the one place is taken), so b reads its own.
      await pullAt(url, a.secret, { ds, c: pa.cursor, l: 1, dev: a.deviceId });
      await pullAt(url, b.secret, { ds, c: pb.cursor, l: 1, dev: b.deviceId });
      const work = recording.stop();
      expect(work.filter((q) => q.includes('/* readAheadCurrent */'))).toHaveLength(1);
      // Reads: a's first, a's second (ahead), b's first, a's third (ahead, once a's second was handed
      // out and its place freed), b's second.
      expect(work.filter((q) => q.includes('/* changesSince */'))).toHaveLength(5);
    } finally {
      await one.stop();
    }
  });
});

describe('one token', () => {
  it('holds at most 4 pages read ahead: a device pulling five datasets gets the fifth read when asked', async () => {
    const names: string[] = [];
    for (let n = 0; n < 5; n++) {
      const ds = await d.createDataset(['region']);
      for (let i = 0; i < 2; i++) await d.create(ds, `e${i}`, { region: 'a' });
      names.push(ds);
    }
    const deviceId = `tab-${randomUUID().slice(0, 8)}`;
    const { secret } = await createToken(t.database.db, { name: 'tablet', role: 'collector', deviceId, datasets: names });
    await pullable(t.database.db);
    const recording = recordStatements(t.database);
    const firsts = [];
    for (const ds of names) firsts.push(await pullAt(t.url, secret, { ds, c: null, l: 1, dev: deviceId }));
    const reads = recording.stop().filter((q) => q.includes('/* changesSince */'));
    // Five first pages, and the second page of the first four datasets only.
    expect(reads).toHaveLength(9);
    // Each second page still answers as a read now would.
    for (const [i, ds] of names.entries()) await pullBoth(secret, { ds, c: firsts[i]!.cursor, l: 1, dev: deviceId });
  });
});

// A page read ahead must not outlive its server: stop() right after a pull that started one.
describe('shutdown', () => {
  it('stop() right after a pull with more to come settles, and the database stays usable', async () => {
    const ds = await d.createDataset(['region']);
    for (let i = 0; i < 3; i++) await d.create(ds, `e${i}`, { region: 'a' });
    const app = buildApp({ db: t.database.db, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' }, webhooks: { deliver: false } });
    const url = await app.start(0, '127.0.0.1');
    const dev = await device(ds);
    await pullable(t.database.db);
    const page = await pullAt(url, dev.secret, { ds, c: null, l: 1, dev: dev.deviceId });
    expect(page.hasMore).toBe(true);
    await app.stop();
    expect(ok(await t.gql(`query($ds: String!) { dataset(name: $ds) { name } }`, { ds })).dataset).toEqual({ name: ds });
  });
});
