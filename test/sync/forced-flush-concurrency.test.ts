import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { LOCK } from '../../src/sync/batch-store.js';
import { flushListingAll } from '../helpers/flush.js';
import type { ChangeResult } from '../../src/core/results.js';
import { backend } from '../helpers/database.js';
import { appliedOf, useSyncContext, type Sent } from '../helpers/sync-context.js';

/**
 * Forcing the backlog of one entity while many clients submit to it (issue 12): the forced flush
 * writes the entity's next version, so it must serialise with the submissions (and with the other
 * instances' flushes) on that entity. Without that, two transactions both write version v+1: one
 * fails (INTERNAL_ERROR, a held change rejected) or, worse, a version is lost. Real concurrency
 * needs Postgres (PGlite has one connection).
 *
 * Each round: one entity; SUBMITTERS clients each alternate an online update and the second change
 * of a new offline run (HELD: its first change never comes) while FLUSHERS instances, each on its
 * own connection pool, flush the backlog again and again. Afterwards the entity's versions are
 * 1..n, every change made exactly one of them, nothing is held, and no answer was an internal error.
 */

const ROUNDS = 6;
const SUBMITTERS = 8;
const PER_SUBMITTER = 6;
const FLUSHERS = 3;

describe.runIf(backend === 'postgres')('a forced flush racing submissions to the same entity', () => {
  const ctx = useSyncContext({ max: SUBMITTERS + 2 });
  const flushers: Database[] = [];
  beforeAll(async () => {
    for (let i = 0; i < FLUSHERS; i++) flushers.push(await openDatabase({ url: ctx.database.url!, migrate: false, max: 2 }));
  });
  afterAll(async () => {
    for (const f of flushers) await f.close();
  });

  it(`${ROUNDS} rounds: versions dense, each change applied once, no INTERNAL_ERROR`, async () => {
    const ds = await ctx.newDataset(['n', 'by', 'note']);
    for (let round = 0; round < ROUNDS; round++) {
      const entityId = await ctx.newEntity(ds, `round ${round}`, { n: 0 });
      const submitted: { change: Sent; result: ChangeResult }[] = [];
      const forced: ChangeResult[] = [];
      // A few held already, so the flushers have work from the first instant.
      const early = Array.from({ length: 6 }, (_, i) => ctx.run(ds, entityId, 1).update(2, { note: `early ${i}` }));
      for (const [i, r] of (await ctx.submitSent(early)).entries()) {
        expect(r, JSON.stringify(r)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
        submitted.push({ change: early[i]!, result: r });
      }

      let submitting = true;
      const clients = Array.from({ length: SUBMITTERS }, async (_, c) => {
        for (let k = 0; k < PER_SUBMITTER; k++) {
          // An online update made on version 1 (always applicable: a conflict, never a rejection).
          const online: Sent = { id: crypto.randomUUID(), dataset: ds, entityId, action: 'UPDATE', baseVersion: 1, data: { n: k, by: `c${c}` } };
          const later = ctx.run(ds, entityId, 1).update(2, { note: `c${c} k${k}` });
          const results = await ctx.submitSent([online]);
          submitted.push({ change: online, result: results[0]! });
          submitted.push({ change: later, result: (await ctx.submitSent([later]))[0]! });
        }
      });
      const flushing = flushers.map(async (f) => {
        while (submitting) {
          const r = await flushListingAll(f.db, { olderThanSeconds: 0 });
          forced.push(...r.forced);
        }
      });
      await Promise.all(clients);
      submitting = false;
      await Promise.all(flushing);
      // What arrived after the last run of each flusher.
      forced.push(...(await ctx.flush(0)));

      const context = `round ${round}`;
      const internal = [...submitted.map((s) => s.result), ...forced].filter((r) => r.error?.code === 'INTERNAL_ERROR' || r.outcome === 'REJECTED');
      expect(internal.map((r) => ({ id: r.changeId, outcome: r.outcome, error: r.error })), context).toEqual([]);
      for (const s of submitted) {
        expect(s.result.outcome, `${context}: ${JSON.stringify(s.result)}`).toBe(s.change.branchId ? 'HELD' : 'APPLIED');
      }

      // Each held change was forced exactly once, by one of the flushers.
      const heldIds = submitted.filter((s) => s.change.branchId).map((s) => s.change.id);
      const forcedIds = appliedOf(forced).map((r) => r.changeId);
      expect([...forcedIds].sort(), context).toEqual([...heldIds].sort());
      expect(await ctx.held({ entityId }), context).toEqual([]);

      const history = await ctx.history(entityId);
      const n = 1 + submitted.length;
      expect(history.map((v) => v.version), context).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(new Set(history.map((v) => v.changeId)).size, context).toBe(n);
      expect((await ctx.entity(entityId))!.version, context).toBe(n);
      // What the answers said is what the history holds.
      const versionOf = new Map(history.map((v) => [v.changeId, v.version]));
      for (const s of submitted.filter((s) => !s.change.branchId)) expect(versionOf.get(s.change.id), context).toBe(s.result.version);
      for (const r of appliedOf(forced)) expect(versionOf.get(r.changeId), context).toBe(r.version);
      for (const s of submitted) {
        const log = await ctx.logOf(s.change.id);
        expect({ outcome: log?.outcome, version: log?.version }, `${context}: ${s.change.id}`).toEqual({ outcome: 'APPLIED', version: versionOf.get(s.change.id) });
      }
    }
  });
});

describe.runIf(backend === 'postgres')('a flush meeting an entity another transaction holds', () => {
  const ctx = useSyncContext({ max: 4 });

  it('forces the others first without waiting, then waits for that entity once (no polling), and forces it when released', async () => {
    const ds = await ctx.newDataset(['n']);
    const held: { entityId: string; changeId: string }[] = [];
    for (const label of ['a', 'busy', 'b']) {
      const entityId = await ctx.newEntity(ds, label, { n: 0 });
      const step2 = ctx.run(ds, entityId, 1).update(2, { n: 1 });
      expect(await ctx.submitSent([step2])).toMatchObject([{ outcome: 'HELD' }]);
      held.push({ entityId, changeId: step2.id });
    }
    const [a, busy, b] = held as [(typeof held)[0], (typeof held)[0], (typeof held)[0]];
    // Another transaction (a submission, another instance's flush) holds the busy entity.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = ctx.database.sql!.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${LOCK.entity}, hashtext(${busy.entityId}))`;
      locked();
      await released;
    });
    await isLocked;
    const told: string[][] = [];
    const flush = flushListingAll(ctx.db, {
      olderThanSeconds: 0,
      dataset: ds,
      onBatch: (events) => void told.push(events.flatMap((e) => (e.type === 'backlogFlushed' ? e.changes.map((c) => c.changeId) : []))),
    });
    try {
      // The flush waits for the busy entity's lock (a waiting lock in pg_locks), having forced the others.
      const waiting = async () => {
        const [row] = await ctx.database.sql!`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted
          and classid = ${LOCK.entity} and objsubid = 2 and objid::text::bigint = (hashtext(${busy.entityId})::bigint & 4294967295)`;
        return row!.n > 0;
      };
      const until = Date.now() + 10_000;
      while (!(await waiting())) {
        if (Date.now() > until) throw new Error('the flush never waited for the busy entity');
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(told).toEqual([[a.changeId, b.changeId]]);
      expect((await ctx.held({ entityId: busy.entityId })).map((h) => h.changeId)).toEqual([busy.changeId]);
    } finally {
      release();
      await holder;
    }
    const r = await flush;
    expect(r.forced.map((f) => [f.changeId, f.outcome])).toEqual([
      [a.changeId, 'APPLIED'],
      [b.changeId, 'APPLIED'],
      [busy.changeId, 'APPLIED'],
    ]);
    expect(told).toEqual([[a.changeId, b.changeId], [busy.changeId]]);
    expect(await ctx.held({ entityId: busy.entityId })).toEqual([]);
  });
});
