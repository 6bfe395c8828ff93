import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.js';
import type { GqlResponse } from '../helpers/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { offlineRun, RUN_RESULT, uniqueName, type ChangeInput, type RunResult } from '../helpers/domain.js';
import { spawnService, stalled, waitUntil, within, type Service } from '../helpers/live.js';

/**
 * Crash safety (issue 7): a change acknowledged as APPLIED or HELD survives a `kill -9` of the
 * service right after the answer, and a batch whose answer never came (the process died while
 * processing it) can be resent with the same change ids and lands exactly once. The real entry
 * point (`src/main.ts`) runs as a child process that is SIGKILLed and started again on the same
 * data: a PGlite data folder, and on a Postgres run also a Postgres database.
 */

const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) {
  __typename ... on MutationSubmitChangesSuccess { data { ${RUN_RESULT} } } ... on DomainError { code message } } }`;
const ENTITY = `query($id: ID!) { entity(id: $id) { id label version data versions { version changeId data } } }`;
const CHANGE = `query($id: String!) { change(id: $id) { id outcome version entityId } }`;
const HELD = `query($ds: String) { heldChanges(dataset: $ds, first: 500) { nodes { changeId entityId waitsFor } } }`;
const PROPS = ['n', 'note', 'round'];

async function post<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResponse<T>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { ...((await res.json()) as Omit<GqlResponse<T>, 'status'>), status: res.status };
}

function data<T = any>(res: GqlResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  expect(res.status).toBe(200);
  return res.data as T;
}

function results(res: GqlResponse, count: number): RunResult[] {
  const r = data(res).submitChanges;
  expect(r.__typename, JSON.stringify(r)).toBe('MutationSubmitChangesSuccess');
  expect(r.data).toHaveLength(count);
  return r.data;
}

/** What the test expects an entity's history to be: one row per acknowledged change. */
interface Expected {
  versions: { version: number; changeId: string; data: Record<string, unknown> }[];
}

// Each back end's own run covers it (the PGlite run the PGlite folder, the Postgres run the server).
const backends = [backend] as const;

describe.each(backends)('kill -9 of the service on %s', (kind) => {
  let env: Record<string, string>;
  let cleanup: () => Promise<void> = async () => {};
  let service: Service | undefined;
  /** On Postgres: how many of these change ids the change log holds, read beside the service. */
  let recorded: ((ids: string[]) => Promise<number>) | null = null;
  let database: Awaited<ReturnType<typeof freshDatabase>> | null = null;
  /** Each test's own dataset (made in beforeEach): the tests share the service, not their data. */
  let dataset = '';
  /** Entity id -> its expected history; grows only from answers the service gave. */
  const expected = new Map<string, Expected>();
  /** Held changes acknowledged as HELD and not yet released: change id -> entity id. */
  const held = new Map<string, string>();

  beforeAll(async () => {
    if (kind === 'pglite') {
      const dir = mkdtempSync(join(tmpdir(), 'es-crash-'));
      env = { DATABASE_URL: '', DATA_DIR: dir };
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    } else {
      const db = await freshDatabase({ max: 2 });
      database = db;
      env = { DATABASE_URL: db.url! };
      cleanup = db.close;
      recorded = async (ids) => (await db.sql!<{ n: number }[]>`select count(*)::int as n from changes where change_id = any(${ids})`)[0]!.n;
    }
    service = await start();
  });
  // Each test starts from its own dataset and an empty record of what was acknowledged, whatever
  // ran before it (CI also runs the suite shuffled).
  beforeEach(async () => {
    dataset = uniqueName('crash');
    expected.clear();
    held.clear();
    heldData.clear();
    pendingRuns = [];
    const created = data(await post(service!.url, `mutation($n: String!, $p: [String!]!) { createDataset(name: $n, properties: $p) { __typename } }`, { n: dataset, p: PROPS }));
    expect(created.createDataset.__typename).toBe('MutationCreateDatasetSuccess');
  });
  afterAll(async () => {
    await service?.stop().catch(() => {});
    await cleanup();
  });

  // Anonymous admin: this test is about crashes, not tokens.
  async function start(): Promise<Service> {
    return spawnService({ ...env, ANONYMOUS_ROLE: 'admin', LOG_LEVEL: 'warn' });
  }

  /** Waits until a SIGKILLed process is gone. stop() only waits here: the process is already dying. */
  async function gone(s: Service): Promise<void> {
    // Killed by the signal, not exited by itself: no exit code.
    expect(await s.stop()).toBeNull();
  }

  /** A version the service reported: appended to the entity's expected history. */
  function record(entityId: string, version: number, changeId: string, set: Record<string, unknown>): void {
    const e = expected.get(entityId) ?? { versions: [] };
    expected.set(entityId, e);
    expect(version, `entity ${entityId}: versions come in order`).toBe(e.versions.length + 1);
    e.versions.push({ version, changeId, data: { ...(e.versions.at(-1)?.data ?? {}), ...set } });
  }

  /** Every acknowledged change is in the running service exactly as it was acknowledged, and nothing else is. */
  async function verify(url: string): Promise<void> {
    for (const [id, e] of expected) {
      const entity = data(await post(url, ENTITY, { id })).entity;
      expect(entity, `entity ${id}`).not.toBeNull();
      expect(entity.version).toBe(e.versions.length);
      expect(entity.data).toEqual(e.versions.at(-1)!.data);
      expect(entity.versions).toEqual(e.versions);
      for (const v of e.versions) {
        expect(data(await post(url, CHANGE, { id: v.changeId })).change).toEqual({ id: v.changeId, outcome: 'APPLIED', version: v.version, entityId: id });
      }
    }
    const backlog: { changeId: string; entityId: string }[] = data(await post(url, HELD, { ds: dataset })).heldChanges.nodes;
    expect(new Map(backlog.map((h) => [h.changeId, h.entityId]))).toEqual(held);
    for (const [changeId, entityId] of held) {
      expect(data(await post(url, CHANGE, { id: changeId })).change).toEqual({ id: changeId, outcome: 'HELD', version: null, entityId });
    }
  }

  /** Notes what a batch's answer acknowledged; asserts each change was (APPLIED or HELD, first time or as a DUPLICATE). */
  function acknowledge(batch: (ChangeInput & { id: string })[], answer: RunResult[]): void {
    answer.forEach((r, i) => {
      const c = batch[i]!;
      expect(r.changeId).toBe(c.id);
      const set = { ...((c.data as Record<string, unknown>) ?? {}) };
      const duplicate = r.outcome === 'DUPLICATE';
      const outcome = duplicate ? r.originalOutcome : r.outcome;
      expect(['APPLIED', 'HELD'], JSON.stringify(r)).toContain(outcome);
      if (outcome === 'HELD') {
        expect(r.version).toBeNull();
        // First acknowledged now (HELD, or a DUPLICATE of a HELD the lost answer never reported).
        if (!expected.get(c.entityId!)?.versions.some((v) => v.changeId === c.id)) held.set(c.id, c.entityId!);
        return;
      }
      if (duplicate && expected.get(c.entityId!)?.versions.some((v) => v.changeId === c.id)) {
        // Already acknowledged (a resend): same version as before.
        expect(expected.get(c.entityId!)!.versions.find((v) => v.changeId === c.id)!.version).toBe(r.version);
        return;
      }
      record(c.entityId!, r.version!, c.id, set);
      // A change released from the backlog by this one: applied right after it, in the same transaction.
      for (const rel of r.released) {
        expect(rel.outcome).toBe('APPLIED');
        const heldEntity = held.get(rel.changeId);
        expect(heldEntity, `released ${rel.changeId} was acknowledged as HELD`).toBe(c.entityId);
        held.delete(rel.changeId);
        record(c.entityId!, rel.version!, rel.changeId, heldData.get(rel.changeId)!);
      }
    });
  }

  /** What each held update sets, for when it is released. */
  const heldData = new Map<string, Record<string, unknown>>();
  /** Offline runs begun with an update of an entity not created yet (HELD), to be created in a later batch. */
  let pendingRuns: ReturnType<typeof offlineRun>[] = [];

  /**
   * One batch: new entities, one update of every live entity at its current version, an offline
   * run's update before its create (HELD), and the creates of the runs held in the previous
   * batch (APPLIED, releasing the held update: only if the backlog survived).
   */
  function nextBatch(round: number, creates: number): (ChangeInput & { id: string })[] {
    const batch: (ChangeInput & { id: string })[] = [];
    for (const [entityId, e] of expected) {
      batch.push({ id: randomUUID(), dataset, entityId, action: 'UPDATE', baseVersion: e.versions.length, data: { n: e.versions.length + 1, round } });
    }
    for (let i = 0; i < creates; i++) {
      batch.push({ id: randomUUID(), dataset, entityId: randomUUID(), action: 'CREATE', label: `r${round} #${i}`, data: { n: 1, round } });
    }
    for (const run of pendingRuns) batch.push(run.create(`run r${round}`, { n: 1, round }));
    pendingRuns = [offlineRun(dataset, randomUUID(), null), offlineRun(dataset, randomUUID(), null)];
    for (const run of pendingRuns) {
      const u = run.update(1, { note: `held in round ${round}` });
      heldData.set(u.id, u.data as Record<string, unknown>);
      batch.push(u);
    }
    return batch;
  }

  it('every change acknowledged APPLIED or HELD is there after a kill -9 right after the answer', async () => {
    for (let round = 1; round <= 3; round++) {
      const s = service!;
      const batch = nextBatch(round, 4);
      const res = await post(s.url, SUBMIT, { c: batch });
      // The answer is in: kill at once, before anything else runs in this test.
      process.kill(s.pid, 'SIGKILL');
      const answer = results(res, batch.length);
      const live = expected.size;
      const runsCreated = answer.filter((r) => r.released.length > 0).length;
      acknowledge(batch, answer);
      expect(answer.filter((r) => r.outcome === 'APPLIED')).toHaveLength(batch.length - 2);
      // An update of a run begun offline with a create waits for that create (client baseVersion 0).
      expect(answer.filter((r) => r.outcome === 'HELD').map((r) => r.waitsFor)).toEqual([0, 0]);
      // From round 2 on, the runs held before the previous kill were released by their create.
      expect(runsCreated).toBe(round === 1 ? 0 : 2);
      expect(expected.size).toBe(live + 4 + (round === 1 ? 0 : 2));
      await gone(s);
      service = await start();
      await verify(service.url);
    }
    expect(held.size).toBe(2);
    expect([...expected.values()].reduce((n, e) => n + e.versions.length, 0)).toBe(/* creates */ 12 + /* runs */ 4 * 2 + /* updates */ 4 + 10);
  }, 180_000);

  /**
   * Makes every version insert of this database slow (busy work per row), so a batch's one
   * transaction stays open for seconds: a kill lands inside it, not by luck (the resend is slow
   * too). On PGlite the folder is the service's: it is stopped, the folder opened here, and the
   * service started again.
   */
  async function slowVersionInserts(): Promise<void> {
    const statements = [
      `create or replace function slow_version() returns trigger language plpgsql as $$ begin perform count(*) from generate_series(1, 60000); return new; end $$`,
      `create trigger slow_version before insert on entity_versions for each row execute function slow_version()`,
    ];
    if (kind === 'postgres') {
      for (const q of statements) await database!.sql!.unsafe(q);
      return;
    }
    await service!.stop();
    const folder = await openDatabase({ dataDir: env.DATA_DIR!, migrate: false });
    for (const q of statements) await folder.db.execute(sql.raw(q));
    await folder.close();
    service = await start();
  }

  it('a batch whose answer never came (kill -9 inside its transaction) lands exactly once when resent', async () => {
    // A first batch, answered: live entities for the big batch to update, and runs held for its creates to release.
    const first = nextBatch(4, 10);
    acknowledge(first, results(await post(service!.url, SUBMIT, { c: first }), first.length));
    await slowVersionInserts();
    const s = service!;
    const batch = nextBatch(5, 250 - expected.size - pendingRuns.length - 2);
    expect(batch).toHaveLength(250);
    const sent = post(s.url, SUBMIT, { c: batch }).then(
      () => 'answered' as const,
      () => 'no answer' as const,
    );
    // On Postgres the test sees the batch's transaction writing its versions; on PGlite, whose
    // database runs in the service's thread, it sees the service stop answering /health.
    if (kind === 'postgres') {
      await waitUntil(
        async () => (await database!.sql!<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where datname = current_database() and query like '%writeVersions%' and state = 'active'`)[0]!.n > 0 || null,
        'the batch to be writing its versions',
        30_000,
        5,
      );
    } else {
      await stalled(s.url.replace(/\/graphql$/, '/health'), 1000);
    }
    process.kill(s.pid, 'SIGKILL');
    expect(await within(sent, 10_000, 'the in-flight request to fail')).toBe('no answer');
    await gone(s);
    service = await start();
    // One transaction per batch: nothing of it was committed.
    if (recorded) expect(await recorded(batch.map((c) => c.id))).toBe(0);

    // The same batch, same change ids: it lands now, whole, and nothing is a DUPLICATE.
    const answer = results(await post(service!.url, SUBMIT, { c: batch }), batch.length);
    expect(answer.filter((r) => r.outcome === 'DUPLICATE')).toEqual([]);
    expect(answer.map((r) => r.outcome)).toEqual(batch.map((c) => (c.action === 'UPDATE' && c.trunkVersion === null && c.branchId ? 'HELD' : 'APPLIED')));
    acknowledge(batch, answer);

    // Sent a third time: every change is a DUPLICATE of what it became, nothing new is written.
    const again = results(await post(service!.url, SUBMIT, { c: batch }), batch.length);
    expect(again.map((r) => r.outcome)).toEqual(batch.map(() => 'DUPLICATE'));
    expect(again.map((r) => r.version)).toEqual(answer.map((r) => r.version));
    await verify(service!.url);
    // Each change of the batch made at most one version, and each entity's history is 1..n.
    for (const e of expected.values()) {
      const ids = e.versions.map((v) => v.changeId);
      expect(new Set(ids).size).toBe(ids.length);
      expect(e.versions.map((v) => v.version)).toEqual(ids.map((_, i) => i + 1));
    }
    expect(held.size).toBe(2);
  }, 180_000);
});
