import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backend } from '../helpers/database.js';
import { domain, offline, offlineRun, type ChangeInput, type Domain, type Offline } from '../helpers/domain.js';

/**
 * Offline runs under real concurrency: PGlite has one connection and would serialise these by
 * construction, so they run on Postgres (DATABASE_URL set) only.
 */
describe.runIf(backend === 'postgres')('offline runs under concurrency on Postgres', () => {
  let t: TestApp;
  let d: Domain;
  let o: Offline;
  beforeAll(async () => {
    t = await startTestApp();
    d = domain(t);
    o = offline(t);
  });
  afterAll(() => t.close());

  it('50 times, a create and the first update of its run sent at the same instant: always version 2, nothing held', async () => {
    const ds = await d.createDataset(['species', 'height']);
    const orders = { createFirst: 0, updateFirst: 0 };
    for (let i = 0; i < 50; i++) {
      const id = randomUUID();
      const run = offlineRun(ds, id, null);
      const create = run.create(`Tree ${i}`, { species: 'oak' });
      const update = run.update(1, { height: i });
      // Two HTTP requests on two connections, started in the same tick; which one is sent first
      // alternates, so both orders of arrival happen.
      const [c, u] = i % 2 === 0 ? await Promise.all([o.one(create), o.one(update)]) : await Promise.all([o.one(update), o.one(create)]).then(([x, y]) => [y, x] as const);

      expect(c, `round ${i}`).toMatchObject({ outcome: 'APPLIED', version: 1, conflict: null, error: null });
      if (u.outcome === 'HELD') {
        orders.updateFirst++;
        expect(u, `round ${i}`).toMatchObject({ waitsFor: 0, version: null });
        expect(c.released.map((r) => [r.changeId, r.outcome, r.version]), `round ${i}`).toEqual([[update.id, 'APPLIED', 2]]);
      } else {
        orders.createFirst++;
        expect(u, `round ${i}`).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null, released: [] });
        expect(c.released, `round ${i}`).toEqual([]);
      }
      const e = (await o.entity(id))!;
      expect(e, `round ${i}`).toMatchObject({ label: `Tree ${i}`, version: 2, conflict: null, data: { species: 'oak', height: i } });
      expect(e.versions.map((v) => [v.version, v.changeId]), `round ${i}`).toEqual([[1, create.id], [2, update.id]]);
      expect(await o.held({ entityId: id }), `round ${i}`).toEqual([]);
    }
    // Which one won the lock varies; both orders must have happened (and ended the same, above),
    // or the test never raced and proved nothing about the held path.
    expect(orders.createFirst, JSON.stringify(orders)).toBeGreaterThanOrEqual(1);
    expect(orders.updateFirst, JSON.stringify(orders)).toBeGreaterThanOrEqual(1);
    expect(orders.createFirst + orders.updateFirst).toBe(50);
  });

  it('two server processes flush 200 held changes over 50 entities at once: each applied exactly once', async () => {
    // The second process must open this file's own database on the DATABASE_URL server.
    const own = new URL(t.databaseUrl!);
    expect([own.host, own.pathname]).toEqual([new URL(process.env.DATABASE_URL!).host, expect.stringMatching(/^\/es_test_[0-9a-f]{12}$/)]);
    const ds = await d.createDataset(['height', 'note']);
    const shuffle = <T>(xs: T[]): T[] => xs.map((x) => [Math.random(), x] as const).sort((a, b) => a[0] - b[0]).map(([, x]) => x);

    // 25 entities with a run on version 1 whose first change never comes (positions 2..5 held),
    // 25 whose offline create never comes (updates 1..4 held); each run sent in a random order.
    const existing = await Promise.all(Array.from({ length: 25 }, (_, i) => d.create(ds, `Known ${i}`, { height: 0 })));
    const unborn = Array.from({ length: 25 }, () => randomUUID());
    const runs: { entityId: string; changes: (ChangeInput & { id: string })[]; versions: number }[] = [
      ...existing.map((id) => {
        const run = offlineRun(ds, id, 1);
        return { entityId: id, changes: [2, 3, 4, 5].map((n) => run.update(n, { height: n, note: `n${n}` })), versions: 5 };
      }),
      ...unborn.map((id) => {
        const run = offlineRun(ds, id, null);
        return { entityId: id, changes: [1, 2, 3, 4].map((n) => run.update(n, { height: n })), versions: 4 };
      }),
    ];
    await Promise.all(
      runs.map(async (r) => {
        const results = await o.submit(...shuffle(r.changes));
        expect(results.map((x) => x.outcome)).toEqual(['HELD', 'HELD', 'HELD', 'HELD']);
      }),
    );
    const heldIds = runs.flatMap((r) => r.changes.map((c) => c.id));
    expect((await o.held({ dataset: ds })).map((h) => h.changeId).sort()).toEqual([...heldIds].sort());

    const root = fileURLToPath(new URL('../..', import.meta.url));
    const flushProcess = () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'flush', '--older-than', '0'], {
          cwd: root,
          env: { ...process.env, DATABASE_URL: t.databaseUrl },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (b) => (out += b));
        child.stderr.on('data', (b) => (err += b));
        child.on('error', reject);
        child.on('exit', (code) => resolve({ code, out, err }));
      });
    const both = await Promise.all([flushProcess(), flushProcess()]);
    let applied = 0;
    for (const p of both) {
      expect(p.code, p.err).toBe(0);
      const m = /forced (\d+) held change\(s\), released (\d+) successor\(s\)/.exec(p.out);
      expect(m, p.out + p.err).not.toBeNull();
      applied += Number(m![1]) + Number(m![2]);
    }
    // Together the two processes applied each held change once: none twice, none left.
    expect(applied).toBe(200);
    expect(await o.held({ dataset: ds })).toEqual([]);

    const seen = new Map<string, number>();
    for (const r of runs) {
      const e = (await o.entity(r.entityId))!;
      expect(e, r.entityId).not.toBeNull();
      expect(e.version).toBe(r.versions);
      expect(e.versions.map((v) => v.version)).toEqual(Array.from({ length: r.versions }, (_, i) => i + 1));
      for (const v of e.versions) seen.set(v.changeId, (seen.get(v.changeId) ?? 0) + 1);
      // Whatever order they were forced in, run order decides: the last change's values stand.
      expect(e.data.height, r.entityId).toBe(r.versions === 5 ? 5 : 4);
    }
    for (const id of heldIds) expect(seen.get(id), id).toBe(1);
    for (const id of heldIds.slice(0, 20)) expect((await d.change(id))!).toMatchObject({ outcome: 'APPLIED' });
  });

  it('20 times, one branch id on two entities at the same instant: one applies, the other is BRANCH_ON_OTHER_ENTITY', async () => {
    const ds = await d.createDataset(['height']);
    for (let i = 0; i < 20; i++) {
      const [e1, e2] = await Promise.all([d.create(ds, `a${i}`), d.create(ds, `b${i}`)]);
      const branchId = randomUUID();
      const first = (entityId: string): ChangeInput => ({ id: randomUUID(), dataset: ds, entityId, action: 'UPDATE', data: { height: i }, branchId, trunkVersion: 1, baseVersion: 1 });
      const results = await Promise.all([o.one(first(e1)), o.one(first(e2))]);
      expect(results.map((r) => r.outcome).sort(), `round ${i}`).toEqual(['APPLIED', 'REJECTED']);
      expect(results.find((r) => r.outcome === 'REJECTED')!.error!.code, `round ${i}`).toBe('BRANCH_ON_OTHER_ENTITY');
      const branch = (await o.branch(branchId))!;
      expect(branch.changes, `round ${i}`).toHaveLength(1);
      expect(branch.entityId).toBe(results.find((r) => r.outcome === 'APPLIED')!.entityId);
    }
  });
});
