import { sql } from 'drizzle-orm';
import { beforeEach, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/sync/batch-store.js';
import { dispatchEvents, startWebhookWorker } from '../../src/sync/webhook-delivery.js';
import { createWebhook } from '../../src/sync/webhooks.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * Dispatching the outbox (src/sync/webhook-delivery.ts `dispatchEvents`): events in commit order
 * become one delivery per webhook that wants them, a bounded number per statement, so that one
 * dispatch of a long outbox to many webhooks is a short transaction (it holds back every pull's
 * horizon while it runs, and a shutdown waits for it).
 */
const ctx = useSyncContext();

/** `n` events of `dataset`, committed now or `secondsAgo` (a webhook made now is later then, whatever the clock's resolution). */
async function outboxOf(dataset: string, n: number, secondsAgo = 0): Promise<void> {
  await ctx.db.execute(sql`insert into webhook_events (type, dataset_name, entity_key, payload, created_at)
    select 'entityChanged', ${dataset}, 'entity-' || i, '{}'::jsonb, now() - make_interval(secs => ${secondsAgo}) from generate_series(1, ${n}) as i`);
}

/** Each test starts with no webhook and an empty outbox (the file's tests share one database). */
beforeEach(async () => {
  await ctx.db.execute(sql`delete from webhooks`);
  await ctx.db.execute(sql`delete from webhook_events`);
});

const count = async (query: ReturnType<typeof sql>) => Number(rowsOf<{ n: number }>(await ctx.db.execute(query))[0]!.n);

describe('dispatchEvents', () => {
  it('100 webhooks, 120 events: 50 events (5,000 deliveries) per call, in order, each delivery once, then nothing more', async () => {
    const ds = await ctx.newDataset(['n']);
    for (let i = 0; i < 100; i++) await createWebhook(ctx.db, { url: `https://hooks.example.org/${i}`, datasets: [ds], events: ['entityChanged'] });
    await outboxOf(ds, 120);
    expect(await dispatchEvents(ctx.db)).toEqual({ events: 50, deliveries: 5000, more: true });
    // The first 50 in commit order, each to every webhook.
    expect(await count(sql`select count(*)::int as n from webhook_deliveries`)).toBe(5000);
    expect(await count(sql`select max(substr(entity_key, 8)::int) as n from webhook_deliveries`)).toBe(50);
    expect(await dispatchEvents(ctx.db)).toEqual({ events: 50, deliveries: 5000, more: true });
    expect(await dispatchEvents(ctx.db)).toEqual({ events: 20, deliveries: 2000, more: false });
    expect(await dispatchEvents(ctx.db)).toEqual({ events: 0, deliveries: 0, more: false });
    expect(await count(sql`select count(*)::int as n from webhook_deliveries`)).toBe(12_000);
    expect(await count(sql`select count(*)::int as n from (select event_seq, webhook_id from webhook_deliveries group by 1, 2 having count(*) > 1) twice`)).toBe(0);
    expect(await count(sql`select count(*)::int as n from webhook_events where not dispatched`)).toBe(0);
  });

  it('events no webhook wants are marked without deliveries, 1,000 a call; a webhook made later gets none of them', async () => {
    const [ds, other] = [await ctx.newDataset(['n']), await ctx.newDataset(['n'])];
    await outboxOf(other, 1500, 1);
    await createWebhook(ctx.db, { url: 'https://hooks.example.org/late', datasets: [ds, other], events: ['entityChanged'] });
    expect(await dispatchEvents(ctx.db)).toEqual({ events: 1000, deliveries: 0, more: true });
    expect(await dispatchEvents(ctx.db)).toEqual({ events: 500, deliveries: 0, more: false });
    expect(await count(sql`select count(*)::int as n from webhook_deliveries`)).toBe(0);
  });
});

describe('the worker analyzes webhook_deliveries after a burst', () => {
  /** What the planner believes the table holds (-1: never analyzed). */
  const believed = () => count(sql`select reltuples::int as n from pg_class where oid = 'webhook_deliveries'::regclass`);
  const allDispatched = () => count(sql`select count(*)::int as n from webhook_events where not dispatched`).then((n) => n === 0);

  async function waitFor(what: string, until: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await until())) {
      if (Date.now() > deadline) throw new Error(`not within 10 s: ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('analyzeAfter 20: 30 made, analyzed (30); 25 more, under the 30 it held, not; 10 more, 35 since, analyzed (65)', async () => {
    const ds = await ctx.newDataset(['n']);
    await createWebhook(ctx.db, { url: 'https://hooks.example.org/burst', datasets: [ds], events: ['entityChanged'] });
    expect(await believed()).not.toBe(30);
    const errors: unknown[] = [];
    const worker = startWebhookWorker(ctx.db, { send: async () => ({ ok: true, status: 200 }), leaseMs: 30_000, pollMs: 20, analyzeAfter: 20, onError: (e) => errors.push(e) });
    try {
      await outboxOf(ds, 30);
      await waitFor('analyzed at 30', async () => (await believed()) === 30);
      await outboxOf(ds, 25);
      await waitFor('25 more dispatched', allDispatched);
      // The tick that dispatched them has decided by the time the next one runs.
      await new Promise((r) => setTimeout(r, 100));
      expect(await believed()).toBe(30);
      await outboxOf(ds, 10);
      await waitFor('analyzed at 65', async () => (await believed()) === 65);
    } finally {
      await worker.stop();
    }
    expect(errors).toEqual([]);
  });
});
