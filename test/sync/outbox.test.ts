import { randomUUID } from 'node:crypto';
import { asc } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { webhookEvents } from '../../src/db/webhooks.js';
import { submitChanges } from '../../src/sync/submit-changes.js';
import { createWebhook } from '../../src/sync/webhooks.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * The transactional outbox in the write path (src/sync/webhook-outbox.ts): a batch writes, in its
 * own transaction, exactly the events some webhook asks for (by type and dataset), in the order
 * the batch made them, and says whether it wrote any (so the delivery worker is woken only then).
 * The API tests see this through deliveries; here it is pinned where `npm run mutate:sync` breaks it
 * (mutants of the outbox all survived test/sync before this file).
 */
const ctx = useSyncContext();

const outbox = async () =>
  (await ctx.db.select({ type: webhookEvents.type, datasetName: webhookEvents.datasetName, entityKey: webhookEvents.entityKey, payload: webhookEvents.payload }).from(webhookEvents).orderBy(asc(webhookEvents.seq))).map(
    (r) => [r.type, r.datasetName, r.entityKey, r.payload],
  );
const create = (dataset: string, label: string) => ({ id: randomUUID(), dataset, entityId: randomUUID(), action: 'CREATE' as const, label, data: { n: 1 } });

describe('the outbox of a batch', () => {
  it('writes the events a webhook wants, in order, and only those; says whether it wrote any', async () => {
    const [a, b] = [await ctx.newDataset(['n']), await ctx.newDataset(['n'])];
    // No webhook yet: nothing written, nothing to wake.
    const before = await submitChanges(ctx.db, [create(a, 'early')]);
    expect(before.outboxed).toBe(false);
    expect(await outbox()).toEqual([]);

    await createWebhook(ctx.db, { url: 'https://hooks.example.org/a', datasets: [a], events: ['entityChanged', 'changeRejected'] });
    const [a1, b1, a2] = [create(a, 'A1'), create(b, 'B1'), create(a, 'A2')];
    // A change that cannot be stored: its refusal has no entity, so it is ordered by its change id.
    const bad = { id: randomUUID(), dataset: a, action: 'UPDATE' as const, data: { n: 2 } };
    const r = await submitChanges(ctx.db, [a1, b1, bad, a2]);
    expect(r.results.map((x) => x.outcome)).toEqual(['APPLIED', 'APPLIED', 'REJECTED', 'APPLIED']);
    expect(r.outboxed).toBe(true);
    // Each row is the event as the batch returned it: a1's and a2's entityChanged, bad's refusal.
    const stored = await outbox();
    expect(stored.map(([type, dataset, key]) => [type, dataset, key])).toEqual([
      ['entityChanged', a, a1.entityId],
      ['changeRejected', a, `change:${bad.id}`],
      ['entityChanged', a, a2.entityId],
    ]);
    const changed = (entityId: string) => r.events.find((e) => e.type === 'entityChanged' && e.entityId === entityId);
    const refused = r.events.find((e) => e.type === 'changeRejected' && e.changeId === bad.id);
    expect(stored.map((row) => row[3])).toEqual(JSON.parse(JSON.stringify([changed(a1.entityId), refused, changed(a2.entityId)])));

    // A batch of dataset b alone: no webhook wants its events.
    const other = await submitChanges(ctx.db, [create(b, 'B2')]);
    expect(other.outboxed).toBe(false);
    expect(await outbox()).toHaveLength(3);
  });
});
