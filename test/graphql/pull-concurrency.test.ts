import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { PULL_HORIZON } from '../../src/sync/changes-since.js';
import { backend } from '../helpers/database.js';
import { domain, sync, type ChangesPageRow, type Domain, type Sync } from '../helpers/domain.js';

/**
 * A pull never skips a version that a slow transaction commits after faster, later ones
 * (DESIGN "Client-local ids and pulling", issue 5). Needs real concurrent transactions, so it
 * runs on Postgres (DATABASE_URL set) only.
 *
 * Slow writers are transactions of our own on a second connection pool: they insert a valid
 * version of an entity of their own (as the service would: next version number, full state,
 * the entity row moved along), then sleep before committing. Fast writers submit over HTTP
 * meanwhile; a reader pulls over HTTP every ~20 ms, 50 versions at a time.
 */
describe.runIf(backend === 'postgres')('pulling while slow and fast transactions commit out of order (Postgres)', () => {
  let t: TestApp;
  let d: Domain;
  let s: Sync;
  let raw: postgres.Sql;
  beforeAll(async () => {
    t = await startTestApp({ flushIntervalSeconds: 0 });
    d = domain(t);
    s = sync(t);
    raw = postgres(t.databaseUrl!, { max: 8, onnotice: () => {} });
  });
  afterAll(async () => {
    await raw?.end({ timeout: 5 });
    await t?.close();
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** Every version in the table is below the pull horizon: all are pullable now. */
  async function allPullable(): Promise<boolean> {
    const [r] = await raw.unsafe(`select coalesce(${PULL_HORIZON} > (select max(txid) from entity_versions), true) as ok`);
    return r!.ok as boolean;
  }

  it('the reader pulls every committed version exactly once, in (transaction id, sequence) order, including slow ones committed after later fast ones', async () => {
    const ds = await d.createDataset(['n', 'who']);
    const fastIds = await Promise.all([0, 1, 2, 3].map((i) => d.create(ds, `Fast ${i}`, { n: 1, who: 'fast' })));
    const slowIds = await Promise.all([0, 1, 2].map((i) => d.create(ds, `Slow ${i}`, { n: 1, who: 'slow' })));

    // --- the reader ---
    const pulled: { key: string; changeId: string }[] = [];
    let writersDone = false;
    let openSlow = 0;
    let pulls = 0;
    let pullsWhileSlowOpen = 0;
    const reader = (async () => {
      let cursor: string | null = null;
      const deadline = Date.now() + 45_000;
      for (;;) {
        expect(Date.now(), 'the reader caught up in time').toBeLessThan(deadline);
        // Checked before the pull: if everything was pullable then and the pull is empty, we are done.
        const finished = writersDone && (await allPullable());
        const slowOpen = openSlow > 0;
        const page: ChangesPageRow<{ version: number; changeId: string; entity: { id: string } }> = await s.pull(ds, { cursor, limit: 50 }, 'version changeId entity { id }', false); // a reader that does not wait: the point of the test
        pulls++;
        if (slowOpen) pullsWhileSlowOpen++;
        pulled.push(...page.versions.map((v) => ({ key: `${v.entity.id}:${v.version}`, changeId: v.changeId })));
        if (page.versions.length === 0) expect(page.cursor, 'an empty page keeps the cursor').toBe(cursor ?? page.cursor);
        cursor = page.cursor;
        if (finished && page.versions.length === 0) {
          // One more pull: still empty, the same cursor.
          const last = await s.pull(ds, { cursor, limit: 50 });
          expect(last).toEqual({ versions: [], cursor, hasMore: false, localIds: [] });
          return;
        }
        if (!page.hasMore) await sleep(20);
      }
    })();
    // Failures surface when it is awaited below, not as an unhandled rejection meanwhile.
    reader.catch(() => {});

    // --- slow writers: 3 in parallel, 6 transactions each, each sleeping 150-500 ms before commit ---
    const slowRows: { changeId: string; xid: string; overtakenBy: number; entityId: string; version: number }[] = [];
    const slowWriter = async (entityId: string, w: number) => {
      for (let version = 2; version <= 7; version++) {
        const changeId = randomUUID();
        const sleepS = 0.15 + ((w * 7 + version * 3) % 8) * 0.05;
        openSlow++;
        try {
          const row = await raw.begin(async (tx) => {
            const [x] = await tx`select pg_current_xact_id()::text as xid`;
            const xid = x!.xid as string;
            const data = JSON.stringify({ n: version, who: 'slow' });
            await tx`
              insert into entity_versions (entity_id, dataset_id, version, applied_on, base_version, action, label, data, changed, source, change_id, device_id)
              select id, dataset_id, ${version}, ${version - 1}, ${version - 1}, 'UPDATE', label, ${data}::text::jsonb, ${JSON.stringify({ n: version })}::text::jsonb, 'ONLINE', ${changeId}, 'slow-writer'
              from entities where id = ${entityId}`;
            await tx`update entities set version = ${version}, data = ${data}::text::jsonb, updated_at = now() where id = ${entityId}`;
            await tx`select pg_sleep(${sleepS})`;
            // Rows of transactions that began after this one and have already committed (seen from another connection).
            const [c] = await raw`select count(*)::int as n from entity_versions where txid > ${xid}::xid8`;
            return { changeId, xid, overtakenBy: c!.n as number, entityId, version };
          });
          slowRows.push(row);
        } finally {
          openSlow--;
        }
      }
    };
    let slowDone = false;
    const slow = Promise.all(slowIds.map((id, w) => slowWriter(id, w))).finally(() => {
      slowDone = true;
    });

    // --- fast writers: 4 over HTTP, each updating its own entity until the slow writers are done (and at least 15 times) ---
    const fastWriter = async (entityId: string) => {
      let version = 1;
      while (!slowDone || version < 16) {
        const r = await d.update(ds, entityId, version, { n: version + 1 });
        expect(r, JSON.stringify(r)).toMatchObject({ outcome: 'APPLIED', version: version + 1 });
        version++;
      }
      return version;
    };
    const fast = Promise.all(fastIds.map(fastWriter));

    const [fastVersions] = await Promise.all([fast, slow]);
    writersDone = true;
    await reader;

    // --- what the table holds at the end, in the order pulls hand it out ---
    const table = await raw`
      select v.entity_id::text || ':' || v.version as key, v.change_id, v.txid::text as txid
      from entity_versions v join entities e on e.id = v.entity_id join datasets d on d.id = e.dataset_id
      where d.name = ${ds} order by v.txid, v.seq`;
    const expectedCount = fastIds.length + slowIds.length + fastVersions.reduce((a, v) => a + (v - 1), 0) + slowIds.length * 6;
    expect(table.length).toBe(expectedCount);

    // The union of the pulls is every committed version, each once, in the table's order.
    expect(new Set(pulled.map((p) => p.key)).size, 'no repeats').toBe(pulled.length);
    expect(pulled.map((p) => p.key)).toEqual(table.map((r) => r.key as string));
    expect(pulled.map((p) => p.changeId)).toEqual(table.map((r) => r.change_id as string));
    // Each entity's versions came in version order.
    const last = new Map<string, number>();
    for (const { key } of pulled) {
      const [id, v] = key.split(':') as [string, string];
      expect(Number(v), key).toBe((last.get(id) ?? 0) + 1);
      last.set(id, Number(v));
    }

    // The scenario really happened: slow transactions committed after later, faster ones
    // (which a cursor on commit-time or sequence alone would have made a pull skip), and
    // the reader pulled while they were open. Each such slow row was still pulled.
    expect(slowRows).toHaveLength(slowIds.length * 6);
    const overtaken = slowRows.filter((r) => r.overtakenBy > 0);
    expect(overtaken.length, JSON.stringify(slowRows.map((r) => r.overtakenBy))).toBeGreaterThan(0);
    const pulledIds = new Set(pulled.map((p) => p.changeId));
    for (const r of overtaken) expect(pulledIds.has(r.changeId), `slow ${r.entityId}:${r.version} pulled`).toBe(true);
    expect(pullsWhileSlowOpen).toBeGreaterThan(5);
    expect(pulls).toBeGreaterThan(20);
    // And the entities ended where their writers left them.
    for (const id of slowIds) expect((await d.entity(id))!).toMatchObject({ version: 7, data: { n: 7, who: 'slow' } });
  }, 90_000);

  it('a transaction open in another database of the server holds no pull back; one open in this database does, until it ends', async () => {
    const ds = await d.createDataset(['n']);
    const other = new URL(t.databaseUrl!);
    other.pathname = '/postgres';
    const elsewhere = postgres(other.toString(), { max: 1, onnotice: () => {} });
    const here = postgres(t.databaseUrl!, { max: 1, onnotice: () => {} });
    try {
      // Elsewhere: a transaction with a transaction id, left open while we write and pull here.
      let endElsewhere!: () => void;
      let elsewhereHasIdNow!: () => void;
      const elsewhereHasId = new Promise<void>((resolve) => (elsewhereHasIdNow = resolve));
      const elsewhereOpen = elsewhere.begin(async (tx) => {
        await tx`select pg_current_xact_id()`;
        elsewhereHasIdNow();
        await new Promise<void>((resolve) => (endElsewhere = resolve));
      });
      await elsewhereHasId;
      const first = await d.create(ds, 'First', { n: 1 });
      const pulled = await s.pull(ds, {}, 'version entity { id }', false);
      expect(pulled.versions.map((v) => (v as { entity: { id: string } }).entity.id)).toEqual([first]);

      // Here: an open transaction of this database older than the next version holds it back...
      let endHere!: () => void;
      let hereHasIdNow!: () => void;
      const hereHasId = new Promise<void>((resolve) => (hereHasIdNow = resolve));
      const hereOpen = here.begin(async (tx) => {
        await tx`select pg_current_xact_id()`;
        hereHasIdNow();
        await new Promise<void>((resolve) => (endHere = resolve));
      });
      await hereHasId;
      const second = await d.create(ds, 'Second', { n: 1 });
      const held = await s.pull(ds, { cursor: pulled.cursor }, 'version entity { id }', false);
      expect(held.versions).toEqual([]);
      expect(held.cursor).toBe(pulled.cursor);
      // ...and hands it out once it ends.
      endHere();
      await hereOpen;
      const after = await s.pull(ds, { cursor: pulled.cursor }, 'version entity { id }', false);
      expect(after.versions.map((v) => (v as { entity: { id: string } }).entity.id)).toEqual([second]);
      endElsewhere();
      await elsewhereOpen;
    } finally {
      await elsewhere.end({ timeout: 5 });
      await here.end({ timeout: 5 });
    }
  });
});
