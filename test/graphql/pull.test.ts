import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeInput } from '../../src/core/types.js';
import type { Db } from '../../src/db/client.js';
import { encodeCursor, PULL_HORIZON } from '../../src/sync/changes-since.js';
import { submitChanges } from '../../src/sync/submit-changes.js';
import { createToken } from '../../src/sync/tokens.js';
import { CHANGES_SINCE } from '../../packages/client/src/documents.js';
import { useApp } from '../helpers/app.js';
import { recordStatements } from '../helpers/statements.js';
import { domain, noInternalError, offlineRun, ok, sync, type ChangesPageRow, type Domain, type PulledVersion, type Sync } from '../helpers/domain.js';

/**
 * Pulling versions since a cursor (DESIGN "Client-local ids and pulling", issue 5): pages in
 * commit order with an opaque cursor, no gaps, no repeats, clear errors. Pulls go over HTTP.
 */

// No webhook worker here: its poll of the outbox is not a pull's work (the statements are counted below).
const t = useApp({ flushIntervalSeconds: 0, webhooks: { deliver: false } });
const d = domain(t);
const s = sync(t);

/** Rows of a raw query on either back end (PGlite answers { rows }, postgres.js an array). */
async function rows<T>(db: Db, query: ReturnType<typeof sql>): Promise<T[]> {
  const r = (await db.execute(query)) as unknown;
  return (Array.isArray(r) ? r : (r as { rows: T[] }).rows) as T[];
}

/**
 * True once every version in the table is below the pull horizon (PULL_HORIZON): all can
 * be handed out.
 */
async function allPullable(db: Db): Promise<boolean> {
  const [r] = await rows<{ ok: boolean }>(db, sql`select coalesce(${sql.raw(PULL_HORIZON)} > (select max(txid) from entity_versions), true) as ok`);
  return r!.ok;
}
async function waitAllPullable(db: Db, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await allPullable(db))) {
    if (Date.now() > until) throw new Error('a transaction older than the test versions is still running on the server');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function inProcess(changes: ChangeInput[]) {
  const { results } = await submitChanges(t.database.db, changes);
  expect(results.filter((r) => r.outcome !== 'APPLIED'), JSON.stringify(results.find((r) => r.outcome !== 'APPLIED'))).toEqual([]);
  return results;
}

describe('pull pagination over 10,000 versions', () => {
  it('pages of 1000 over HTTP hand out every version exactly once, in order, and nothing of other datasets; then an empty page with the cursor unchanged', async () => {
    const ENTITIES = 100;
    const VERSIONS = 100;
    const ds = await d.createDataset(['n', 'note']);
    const other = await d.createDataset(['n', 'note']);
    const ids = Array.from({ length: ENTITIES }, () => randomUUID());
    const otherIds = Array.from({ length: 3 }, () => randomUUID());
    const otherVersions: string[] = [];
    const otherWrite = async (n: number) => {
      const rs = await inProcess(otherIds.map((id) => (n === 1 ? { id: randomUUID(), dataset: other, entityId: id, action: 'CREATE' as const, label: 'Other', data: { n } } : { id: randomUUID(), dataset: other, entityId: id, action: 'UPDATE' as const, baseVersion: n - 1, data: { n } })));
      otherVersions.push(...rs.map((r) => `${r.entityId}:${r.version}`));
    };

    // Version 1 of each entity through the service (one transaction per change), with writes to another dataset around.
    await otherWrite(1);
    await inProcess(ids.map((id, i) => ({ id: randomUUID(), dataset: ds, entityId: id, action: 'CREATE', label: `E${i}`, data: { n: 1 } })));
    await otherWrite(2);

    // Versions 2..99 written as the service writes them, but in bulk: chunks of 73 rows, each its own
    // transaction (so many transaction ids, and page boundaries fall inside a transaction's rows).
    // Rows go version by version, entities shuffled within a version.
    const pending: { e: string; v: number; o: number }[] = [];
    for (let v = 2; v < VERSIONS; v++) {
      const shuffled = ids.map((id) => [Math.random(), id] as const).sort((a, b) => a[0] - b[0]).map(([, id]) => id);
      for (const e of shuffled) pending.push({ e, v, o: pending.length });
    }
    const CHUNK = 73;
    for (let i = 0; i < pending.length; i += CHUNK) {
      const chunk = JSON.stringify(pending.slice(i, i + CHUNK));
      await t.database.db.transaction(async (tx) => {
        await tx.execute(sql`
          insert into entity_versions (entity_id, dataset_id, version, applied_on, base_version, action, label, data, changed, source, change_id)
          select r.e, en.dataset_id, r.v, r.v - 1, r.v - 1, 'UPDATE', en.label, jsonb_build_object('n', r.v), jsonb_build_object('n', r.v), 'ONLINE', gen_random_uuid()::text
          from jsonb_to_recordset(${chunk}::text::jsonb) as r(e uuid, v int, o int) join entities en on en.id = r.e
          order by r.o`);
        await tx.execute(sql`
          update entities set version = m.v, data = jsonb_build_object('n', m.v), updated_at = now()
          from (select r.e, max(r.v) as v from jsonb_to_recordset(${chunk}::text::jsonb) as r(e uuid, v int) group by r.e) m
          where entities.id = m.e`);
      });
      if (i === CHUNK * 50) await otherWrite(3);
    }

    // Version 100 of each entity through the service again, on top of the bulk rows.
    const last = await inProcess(ids.map((id) => ({ id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: VERSIONS - 1, data: { note: 'last' } })));
    expect(last.map((r) => [r.version, r.conflict])).toEqual(ids.map(() => [VERSIONS, null]));
    await otherWrite(4);
    await waitAllPullable(t.database.db);

    // Pull it all over HTTP.
    const recording = recordStatements(t.database);
    const seen: string[] = [];
    const pages: number[] = [];
    let cursor: string | null = null;
    let guard = 0;
    for (;;) {
      // Everything is pullable already (above): no settling between pages, so only the app queries.
      const page: Awaited<ReturnType<typeof s.pull<PulledVersion>>> = await s.pull<PulledVersion>(ds, { cursor, limit: 1000 }, 'version entity { id }', false);
      pages.push(page.versions.length);
      seen.push(...page.versions.map((v) => `${v.entity.id}:${v.version}`));
      if (page.versions.length > 0) expect(page.cursor).not.toBe(cursor);
      cursor = page.cursor;
      expect(page.hasMore, `page ${pages.length}`).toBe(seen.length < ENTITIES * VERSIONS);
      if (!page.hasMore) break;
      expect(++guard).toBeLessThan(20);
    }
    // The work of a pull does not grow with its page: per page one statement for the page (its
    // positions and the versions' columns), and one load of the page's entities for \`entity { id }\`
    // (no query per version). Each page after the first was read ahead while the one before was
    // sent, and is handed out after one small statement finds it current (src/sync/read-ahead.ts).
    const kind = (q: string) => (q.includes('/* changesSince */') ? 'page' : q.includes('/* readAheadCurrent */') ? 'current' : /^select "d0"/.test(q) ? 'selection' : q.slice(0, 200));
    // (The revocation poll of the token cache runs on its own timer: not a pull's work.)
    const pullWork = recording.stop().filter((q) => !q.includes('/* recentTokenEvents */'));
    const counts = new Map<string, number>();
    for (const q of pullWork) counts.set(kind(q), (counts.get(kind(q)) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ page: pages.length, current: pages.length - 1, selection: pages.length });

    expect(pages).toEqual([1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
    expect(seen).toHaveLength(ENTITIES * VERSIONS);
    expect(new Set(seen).size, 'no repeats').toBe(ENTITIES * VERSIONS);
    const expected = ids.flatMap((id) => Array.from({ length: VERSIONS }, (_, k) => `${id}:${k + 1}`));
    expect([...seen].sort(), 'no gaps').toEqual([...expected].sort());
    // Each entity's versions come in version order.
    const lastSeen = new Map<string, number>();
    for (const key of seen) {
      const [id, v] = key.split(':') as [string, string];
      expect(Number(v), key).toBe((lastSeen.get(id) ?? 0) + 1);
      lastSeen.set(id, Number(v));
    }
    // Nothing of the other dataset.
    for (const key of otherVersions) expect(seen.includes(key), key).toBe(false);
    const otherSet = new Set<string>(otherIds);
    expect(seen.filter((k) => otherSet.has(k.split(':')[0]!))).toEqual([]);

    // The order is the table's (transaction id, sequence) order.
    const table = await rows<{ key: string }>(
      t.database.db,
      sql`select v.entity_id::text || ':' || v.version as key from entity_versions v join entities e on e.id = v.entity_id join datasets d on d.id = e.dataset_id where d.name = ${ds} order by v.txid, v.seq`,
    );
    expect(seen).toEqual(table.map((r) => r.key));

    // At the end: an empty page, hasMore false, the cursor unchanged; and again.
    const end = await s.pull(ds, { cursor, limit: 1000 });
    expect(end).toEqual({ versions: [], cursor, hasMore: false, localIds: [] });
    expect(await s.pull(ds, { cursor, limit: 1 })).toEqual({ versions: [], cursor, hasMore: false, localIds: [] });

    // A version written after the end comes next, alone.
    const after = await inProcess([{ id: randomUUID(), dataset: ds, entityId: ids[7]!, action: 'UPDATE', baseVersion: VERSIONS, data: { note: 'after' } }]);
    await waitAllPullable(t.database.db);
    const next = await s.pull(ds, { cursor, limit: 1000 });
    expect(next.versions.map((v) => [v.entity.id, v.version, v.data])).toEqual([[ids[7], VERSIONS + 1, { n: VERSIONS - 1, note: 'after' }]]);
    expect(next.cursor).not.toBe(cursor);
    expect(next.hasMore).toBe(false);
    expect(after[0]!.version).toBe(VERSIONS + 1);

  }, 120_000);
});

describe('pull basics', () => {
  it('from the start without a cursor, default limit 100, hasMore while more are ready; the version fields are the history rows', async () => {
    const ds = await d.createDataset(['n', 'tags']);
    const id = await d.create(ds, 'First', { n: 0 });
    for (let v = 1; v <= 150; v += 50) {
      await inProcess(Array.from({ length: 50 }, (_, k) => ({ id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: v + k, data: { n: v + k } })));
    }
    await s.one({ dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 151, operations: [{ op: 'LIST_ADD', property: 'tags', value: 't' }] });
    await waitAllPullable(t.database.db);
    const first = await s.pull(ds);
    expect(first.versions).toHaveLength(100);
    expect(first.hasMore).toBe(true);
    expect(first.versions.map((v) => v.version)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(first.versions[0]).toMatchObject({ version: 1, action: 'CREATE', label: 'First', data: { n: 0 }, operations: [], conflict: null, entity: { id } });
    const second = await s.pull(ds, { cursor: first.cursor });
    expect(second.versions.map((v) => v.version)).toEqual(Array.from({ length: 52 }, (_, i) => i + 101));
    expect(second.hasMore).toBe(false);
    expect(second.versions.at(-1)).toMatchObject({ version: 152, data: { n: 150, tags: ['t'] }, operations: [{ op: 'LIST_ADD', property: 'tags', value: 't', index: null, by: null }] });
    // Exactly `limit` left: hasMore is false on the page that takes them.
    const exact = await s.pull(ds, { cursor: first.cursor, limit: 52 });
    expect(exact.versions).toHaveLength(52);
    expect(exact.hasMore).toBe(false);
    const oneShort = await s.pull(ds, { cursor: first.cursor, limit: 51 });
    expect(oneShort.hasMore).toBe(true);
    // The same cursor gives the same page again (pulls are repeatable).
    expect(await s.pull(ds, { cursor: first.cursor })).toEqual(second);
  });

  it('limit 1 walks one version at a time; held and rejected changes are not versions', async () => {
    const ds = await d.createDataset(['n']);
    const id = await d.create(ds, 'One');
    await d.update(ds, id, 1, { n: 1 });
    await d.expectRejected(await d.update(ds, id, 1, { nope: 1 }), 'UNKNOWN_PROPERTY');
    const held = await s.one({ dataset: ds, entityId: randomUUID(), action: 'UPDATE', baseVersion: 1, branchId: randomUUID(), trunkVersion: null, data: { n: 9 } });
    expect(held.outcome).toBe('HELD');
    await waitAllPullable(t.database.db);
    const got: number[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 5; i++) {
      const p: ChangesPageRow = await s.pull(ds, { cursor, limit: 1 });
      got.push(...p.versions.map((v) => v.version));
      cursor = p.cursor;
      if (!p.hasMore) break;
    }
    expect(got).toEqual([1, 2]);
  });

  it('an empty dataset: an empty page, hasMore false, a cursor to keep', async () => {
    const ds = await d.createDataset(['n']);
    const p = await s.pull(ds);
    // The cursor of the very start: before every transaction.
    expect(p).toEqual({ versions: [], hasMore: false, localIds: [], cursor: Buffer.from('v1:0:0').toString('base64url') });
    // That cursor works, and later versions follow it.
    const id = await d.create(ds, 'Late');
    await waitAllPullable(t.database.db);
    const q = await s.pull(ds, { cursor: p.cursor });
    expect(q.versions.map((v) => [v.entity.id, v.version])).toEqual([[id, 1]]);
  });
});

describe('a page is read once, as the history has it', () => {
  // Every field of a version, through a fragment, beside an alias of the list.
  const DIFF = 'property old new';
  const ALL = `version appliedOn action label data changed operations { op property value index by } deleted conflict conflictingProperties resolved source
    branchId trunkVersion baseVersion branchBaseVersion serverDiff { ${DIFF} } baseDiff { ${DIFF} } authorViewUnavailable changeId deviceId createdAt entityId entity { id version }`;
  const PULL_ALL = `query($ds: String!, $d: String) { changesSince(dataset: $ds, deviceId: $d, limit: 1000) {
    __typename ... on QueryChangesSinceSuccess { page: data { localIds { localId entityId } versions { ...V } again: versions { version } } } } }
    fragment V on EntityVersion { ${ALL} }`;
  type Pulled = { version: number; entityId: string; branchId: string | null; branchBaseVersion: number | null } & Record<string, unknown>;

  it('every field of a pulled version equals the history row, for each caller; the client library\'s page is one statement', async () => {
    const ds = await d.createDataset(['n', 'tags', 'note']);
    // A: created by tab-1 under a local id, then an update with an operation, then a HARD conflict.
    const [created] = await s.submit({ id: randomUUID(), dataset: ds, deviceId: 'tab-1', localId: 'a1', action: 'CREATE', label: 'A', data: { n: 0 } });
    const a = created!.entityId!;
    await s.one({ dataset: ds, entityId: a, deviceId: 'tab-1', action: 'UPDATE', baseVersion: 1, operations: [{ op: 'LIST_ADD', property: 'tags', value: 't' }] });
    await d.update(ds, a, 2, { n: 1 });
    expect((await d.update(ds, a, 2, { n: 2, note: 'late' })).conflict).toBe('HARD');
    // B: an offline run of tab-2's; C: deleted.
    const b = await d.create(ds, 'B', { n: 5 });
    const run = offlineRun(ds, b, 1, { deviceId: 'tab-2' });
    await d.submit(run.update(1, { n: 6 }), run.update(2, { note: 'two' }));
    const c = await d.create(ds, 'C');
    await d.remove(ds, c, 1);
    await waitAllPullable(t.database.db);

    const history = new Map<string, Pulled>();
    for (const id of [a, b, c]) {
      const e = ok(await t.gql(`query($id: ID!) { entity(id: $id) { versions(limit: 1000) { ${ALL} } } }`, { id })).entity;
      for (const v of e.versions as Pulled[]) history.set(`${v.entityId}:${v.version}`, v);
    }
    const admin = ok(await t.gql(PULL_ALL, { ds })).changesSince.page;
    expect(admin.versions.map((v: Pulled) => `${v.entityId}:${v.version}`)).toEqual([`${a}:1`, `${a}:2`, `${a}:3`, `${a}:4`, `${b}:1`, `${b}:2`, `${b}:3`, `${c}:1`, `${c}:2`]);
    for (const v of admin.versions as Pulled[]) expect(v, `${v.entityId}:${v.version}`).toEqual(history.get(`${v.entityId}:${v.version}`));
    expect(admin.again).toEqual(admin.versions.map((v: Pulled) => ({ version: v.version })));
    expect(admin.versions.filter((v: Pulled) => v.entityId === b && v.branchId !== null).map((v: Pulled) => [v.branchId, v.branchBaseVersion])).toEqual([[run.branchId, 1], [run.branchId, 2]]);

    // tab-1's collector: its local id; another device's run id withheld, the rest as the history has it.
    const tab1 = (await createToken(t.database.db, { name: 'tab-1', role: 'collector', deviceId: 'tab-1', datasets: [ds] })).secret;
    const mine = ok(await t.gqlAs(tab1, PULL_ALL, { ds, d: 'tab-1' })).changesSince.page;
    expect(mine.localIds).toEqual([{ localId: 'a1', entityId: a }]);
    for (const v of mine.versions as Pulled[]) {
      const h = history.get(`${v.entityId}:${v.version}`)!;
      expect(v, `${v.entityId}:${v.version}`).toEqual({ ...h, branchId: h.deviceId === 'tab-1' ? h.branchId : null });
    }
    expect((mine.versions as Pulled[]).filter((v) => v.entityId === b).map((v) => v.branchId)).toEqual([null, null, null]);

    // The client library's query: one statement a page (positions, columns and local ids together).
    const pullAsClient = async () => ok(await t.gqlAs(tab1, CHANGES_SINCE, { dataset: ds, limit: 1000, deviceId: 'tab-1' })).changesSince.data;
    await pullAsClient();
    const recording = recordStatements(t.database);
    const page = await pullAsClient();
    const work = recording.stop().filter((q) => !q.includes('/* recentTokenEvents */'));
    expect(work.map((q) => (q.includes('/* changesSince */') ? 'page' : q.slice(0, 200)))).toEqual(['page']);
    expect(page.localIds).toEqual([{ localId: 'a1', entityId: a }]);
    expect(page.versions.map((v: Pulled) => [v.entityId, v.version, v.label, v.data, v.deleted])).toEqual(
      admin.versions.map((v: Pulled) => [v.entityId, v.version, v.label, v.data, v.deleted]),
    );
  });
});

describe('pull errors are DomainErrors with a code', () => {
  const expectError = async (dataset: string, opts: { cursor?: string | null; limit?: number | null }, code: string, message: string) => {
    const r = await s.pullRaw(dataset, opts);
    expect(r, JSON.stringify(opts)).toEqual({ __typename: 'DomainError', code, message });
  };

  it('INVALID_CURSOR for anything this server did not hand out', async () => {
    const ds = await d.createDataset(['n']);
    await d.create(ds, 'A');
    for (const cursor of [
      'nope',
      'v1:1:1',
      Buffer.from('v2:1:1').toString('base64url'),
      Buffer.from('v1:abc:1').toString('base64url'),
      Buffer.from('v1:1:-1').toString('base64url'),
      Buffer.from('v1:1').toString('base64url'),
      Buffer.from(`v1:1:1${'0'.repeat(30)}`).toString('base64url'),
      Buffer.from('v1:1:1\u0000').toString('base64url'),
      'x'.repeat(10_000),
    ]) {
      await expectError(ds, { cursor }, 'INVALID_CURSOR', `"${cursor.slice(0, 60)}" is not a cursor this server handed out`);
    }
  });

  it('INVALID_CURSOR (not a 500) for a well-formed cursor whose transaction id is out of range', async () => {
    const ds = await d.createDataset(['n']);
    const res = await t.gql(`query($ds: String!, $c: String) { changesSince(dataset: $ds, cursor: $c) { __typename ... on DomainError { code } } }`, {
      ds,
      c: encodeCursor('99999999999999999999', 1),
    });
    noInternalError(res);
    expect(res.data?.changesSince).toEqual({ __typename: 'DomainError', code: 'INVALID_CURSOR' });
  });

  it('UNKNOWN_DATASET, also for a name holding NUL', async () => {
    await expectError('no_such_dataset', {}, 'UNKNOWN_DATASET', 'no dataset named "no_such_dataset"');
    await expectError('bad\u0000name', {}, 'UNKNOWN_DATASET', 'no dataset named "bad\u0000name"');
  });

  it('TOO_LARGE for a limit outside 1..1000; 1 and 1000 are fine', async () => {
    const ds = await d.createDataset(['n']);
    for (const limit of [0, 1001, -1, 1_000_000]) await expectError(ds, { limit }, 'TOO_LARGE', 'limit must be 1 to 1000');
    for (const limit of [1, 1000]) expect((await s.pullRaw(ds, { limit })).__typename).toBe('QueryChangesSinceSuccess');
  });
});
