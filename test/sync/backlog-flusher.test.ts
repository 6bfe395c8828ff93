import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../../src/core/events.js';
import { startBacklogFlusher, type FlushResult } from '../../src/sync/flush-backlog.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * The periodic task (startBacklogFlusher) in the medium layer, both back ends: every interval it
 * forces what waited past the hold timeout, publishes each batch's events, tells `onRun` of each
 * finished run, runs one run at a time, and stop() waits for the run under way and starts no
 * other. test/server reaches it through a started server; here StrykerJS (`npm run mutate:sync`)
 * can break it.
 */

const ctx = useSyncContext();
const INTERVAL = 0.02;

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A held change of `ds`: the second step of an offline run whose first never came. */
async function hold(ds: string): Promise<{ entityId: string; changeId: string }> {
  const entityId = await ctx.newEntity(ds, 'Waiting', { n: 0 });
  const step2 = ctx.run(ds, entityId, 1).update(2, { n: 2 });
  expect(await ctx.submitSent([step2])).toMatchObject([{ outcome: 'HELD' }]);
  return { entityId, changeId: step2.id };
}

const forcedIn = (events: readonly SyncEvent[]) => events.flatMap((e) => (e.type === 'backlogFlushed' && e.reason === 'FORCED' ? e.changes.map((c) => c.changeId) : []));

describe('the periodic flusher', () => {
  it('forces what is due, run after run; publishes each batch’s events and tells onRun of each run; after stop() nothing more', async () => {
    const ds = await ctx.newDataset(['n']);
    const published: SyncEvent[][] = [];
    const runs: { result: FlushResult; ms: number }[] = [];
    const errors: unknown[] = [];
    const first = await hold(ds);
    const flusher = startBacklogFlusher(ctx.db, {
      intervalSeconds: INTERVAL,
      holdTimeoutSeconds: 0,
      publish: (events) => void published.push([...events]),
      onError: (e) => void errors.push(e),
      onRun: (result, ms) => void runs.push({ result, ms }),
      listed: 5,
    });
    try {
      await until('the first held change forced', () => forcedIn(published.flat()).includes(first.changeId));
      await until('its run told', () => runs.some((r) => r.result.listed.some((f) => f.changeId === first.changeId)));
      const run = runs.find((r) => r.result.listed.some((f) => f.changeId === first.changeId))!;
      expect(run.result.listed.map((f) => [f.changeId, f.outcome, f.version])).toEqual([[first.changeId, 'APPLIED', 2]]);
      expect(run.result).toMatchObject({ forced: 1, forcedApplied: 1, released: 0, releasedApplied: 0, refused: 0, oneByOne: 0 });
      // What the run forced is what it published, batch by batch.
      expect(forcedIn(published.flat())).toContain(first.changeId);
      expect(run.ms).toBeGreaterThanOrEqual(0);
      expect(run.ms).toBeLessThan(10_000);
      // Runs that found nothing publish nothing.
      expect(published.every((batch) => batch.length > 0)).toBe(true);

      // A later run (the first one ended) takes what was held since.
      const second = await hold(ds);
      await until('the second held change forced', () => forcedIn(published.flat()).includes(second.changeId));
      expect(await ctx.held({ entityId: second.entityId })).toEqual([]);
    } finally {
      await flusher.stop();
    }
    const told = runs.length;
    const late = await hold(ds);
    await pause(10 * INTERVAL * 1000);
    expect((await ctx.held({ entityId: late.entityId })).map((h) => h.changeId)).toEqual([late.changeId]);
    expect(runs.length).toBe(told);
    expect(errors).toEqual([]);
    await ctx.flush(0);
  });

  it('one run at a time: while a run waits for its publish no other run starts; stop() waits for it', async () => {
    const ds = await ctx.newDataset(['n']);
    const h = await hold(ds);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let publishing = 0;
    const runs: FlushResult[] = [];
    const errors: unknown[] = [];
    const flusher = startBacklogFlusher(ctx.db, {
      intervalSeconds: INTERVAL,
      holdTimeoutSeconds: 0,
      // Typed as returning nothing, awaited all the same (flushBacklog's onBatch): the run waits here.
      publish: ((events: readonly SyncEvent[]) => {
        if (forcedIn(events).includes(h.changeId)) {
          publishing++;
          return released;
        }
      }) as (events: readonly SyncEvent[]) => void,
      onError: (e) => void errors.push(e),
      onRun: (result) => void runs.push(result),
    });
    let stopped = false;
    try {
      await until('the run to publish', () => publishing > 0);
      // Many intervals pass while the run waits: no other run starts (none would end meanwhile).
      await pause(10 * INTERVAL * 1000);
      expect(runs).toEqual([]);
      expect(publishing).toBe(1);
      // stop() ends only once the run under way has.
      const stopping = flusher.stop().then(() => (stopped = true));
      await pause(5 * INTERVAL * 1000);
      expect(stopped).toBe(false);
      release();
      await stopping;
      expect(runs.map((r) => [r.forced, r.listed])).toEqual([[1, []]]);
    } finally {
      release();
      if (!stopped) await flusher.stop();
    }
    expect(errors).toEqual([]);
  });

  it('a run that fails is told to onError, and the next run goes on', async () => {
    const ds = await ctx.newDataset(['n']);
    const h = await hold(ds);
    const errors: unknown[] = [];
    const runs: FlushResult[] = [];
    let failing = true;
    const flusher = startBacklogFlusher(ctx.db, {
      intervalSeconds: INTERVAL,
      holdTimeoutSeconds: 0,
      // A listener that throws fails the run after its batch committed.
      publish: () => {
        if (failing) {
          failing = false;
          throw new Error('the listener broke');
        }
      },
      onError: (e) => void errors.push(e),
      onRun: (result) => void runs.push(result),
    });
    try {
      await until('the failure told', () => errors.length > 0);
      expect((errors[0] as Error).message).toBe('the listener broke');
      // Its batch had committed: the change is forced, and the next runs find nothing more.
      expect(await ctx.held({ entityId: h.entityId })).toEqual([]);
      await until('a later run', () => runs.length > 0);
    } finally {
      await flusher.stop();
    }
    expect(errors).toHaveLength(1);
  });
});
