import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backend } from '../helpers/database.js';
import { domain, type ChangeInput, type Domain } from '../helpers/domain.js';

/**
 * Real concurrency needs real connections: PGlite has one, so it would serialise these by
 * construction and prove nothing. These run on Postgres (DATABASE_URL set) only.
 */
describe.runIf(backend === 'postgres')('concurrent submissions on Postgres', () => {
  let t: TestApp;
  let d: Domain;
  beforeAll(async () => {
    t = await startTestApp();
    d = domain(t);
  });
  afterAll(() => t.close());

  it('20 clients update one entity at once from baseVersion 1: versions 2..21, none lost', async () => {
    const ds = await d.createDataset(['height']);
    const id = await d.create(ds, 'Contested', { height: 0 });
    const changes: ChangeInput[] = Array.from({ length: 20 }, (_, i) => ({ id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: i + 1 } }));

    const results = await Promise.all(changes.map((c) => d.one(c)));
    expect(results.map((r) => r.outcome)).toEqual(Array(20).fill('APPLIED'));
    expect(results.map((r) => r.version).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    // The first to land saw nothing unseen; every later one overwrote height someone else set.
    const conflicts = results.map((r) => r.conflict);
    expect(conflicts.filter((c) => c === null)).toHaveLength(1);
    expect(conflicts.filter((c) => c === 'HARD')).toHaveLength(19);
    expect(results.find((r) => r.version === 2)!.conflict).toBeNull();

    const e = (await d.entity(id))!;
    expect(e.version).toBe(21);
    expect(e.versions.map((v) => v.version)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    // Each version is the change that made it, applied against version 1 (the one it was made on).
    const byChange = new Map(changes.map((c) => [c.id, c]));
    for (const v of e.versions.slice(1)) {
      const c = byChange.get(v.changeId)!;
      expect(v).toMatchObject({ appliedOn: 1, baseVersion: 1, changed: c.data, data: c.data });
      byChange.delete(v.changeId);
    }
    expect(byChange.size).toBe(0);
    expect(e.data).toEqual(e.versions[20]!.data);
    for (const r of results) expect(await d.change(r.changeId)).toMatchObject({ outcome: 'APPLIED', version: r.version });
  });

  it('one change sent by 20 connections at once applies once; the rest are DUPLICATE', async () => {
    const ds = await d.createDataset(['height']);
    const id = await d.create(ds, 'Resent');
    const c: ChangeInput = { id: randomUUID(), dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 9 } };
    const results = await Promise.all(Array.from({ length: 20 }, () => d.one(c)));
    expect(results.filter((r) => r.outcome === 'APPLIED')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'DUPLICATE' && r.originalOutcome === 'APPLIED' && r.version === 2)).toHaveLength(19);
    expect((await d.entity(id))!.versions).toHaveLength(2);
  });

  it('20 racing creates of one entity id: one applies, the others are ENTITY_EXISTS', async () => {
    const ds = await d.createDataset(['n']);
    const id = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => d.one({ dataset: ds, entityId: id, action: 'CREATE', label: `racer ${i}`, data: { n: i } })),
    );
    expect(results.filter((r) => r.outcome === 'APPLIED')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'REJECTED' && r.error?.code === 'ENTITY_EXISTS')).toHaveLength(19);
    const e = (await d.entity(id))!;
    expect(e.versions).toHaveLength(1);
    const winner = results.find((r) => r.outcome === 'APPLIED')!;
    expect(e.versions[0]!.changeId).toBe(winner.changeId);
  });

  it('updates to 20 different entities at once all land as their version 2', async () => {
    const ds = await d.createDataset(['n']);
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => d.create(ds, `e${i}`, { n: 0 })));
    const results = await Promise.all(ids.map((id, i) => d.update(ds, id, 1, { n: i })));
    expect(results.map((r) => [r.outcome, r.version, r.conflict])).toEqual(Array(20).fill(['APPLIED', 2, null]));
    const entities = await Promise.all(ids.map((id) => d.entity(id)));
    expect(entities.map((e) => e!.data.n)).toEqual(ids.map((_, i) => i));
  });
});
