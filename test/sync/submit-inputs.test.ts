import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, type ChangeInput } from '../../src/core/types.js';
import { changes } from '../../src/db/changes.js';
import { submitChanges } from '../../src/sync/submit-changes.js';
import { createWebhook } from '../../src/sync/webhooks.js';
import { refuse } from '../helpers/refuse.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * What submitChanges does with inputs at and past their bounds, and what it records of them:
 * the batch's size, ids too long to be keys, payloads too large to keep, a device id that is not a
 * string, and a poison change with a local id in a batch a webhook listens to. The API tests reach
 * these through a server; here each is pinned where `npm run mutate:sync` breaks it.
 */
const ctx = useSyncContext();
const limits = { ...DEFAULT_LIMITS, maxBatch: 3, maxChangeBytes: 2048 };
const create = (dataset: string, extra: Partial<ChangeInput> = {}): ChangeInput => ({ id: randomUUID(), dataset, entityId: randomUUID(), action: 'CREATE', label: 'Oak', data: { n: 1 }, ...extra });
/** Every change log row of a change id, oldest first. */
const logs = (changeId: string) =>
  ctx.db
    .select({ changeId: changes.changeId, original: changes.original, outcome: changes.outcome, deviceId: changes.deviceId, errorCode: changes.errorCode, payload: changes.payload })
    .from(changes)
    .where(eq(changes.changeId, changeId))
    .orderBy(changes.receiptId);
const codeOf = (p: Promise<unknown>) => p.then(() => 'none', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);

describe('the size of a batch', () => {
  it('none is EMPTY_BATCH; up to maxBatch is taken; one more is BATCH_TOO_LARGE, and nothing of it is stored', async () => {
    const ds = await ctx.newDataset(['n']);
    expect(await codeOf(submitChanges(ctx.db, [], limits))).toMatch(/^EMPTY_BATCH: /);
    const three = [create(ds), create(ds), create(ds)];
    expect((await submitChanges(ctx.db, three, limits)).results.map((r) => r.outcome)).toEqual(['APPLIED', 'APPLIED', 'APPLIED']);
    const four = [create(ds), create(ds), create(ds), create(ds)];
    expect(await codeOf(submitChanges(ctx.db, four, limits))).toBe('BATCH_TOO_LARGE: the batch holds 4 changes; the limit is 3');
    expect(await logs(String(four[0]!.id))).toEqual([]);
  });
});

describe('what the change log keeps of a change', () => {
  it('a malformed id of 200 characters is recorded under itself, an original; of 201, under its first 200 and not an original (it is no key: a resend is judged afresh)', async () => {
    const ds = await ctx.newDataset(['n']);
    const [ok, long] = [create(ds, { id: 'k'.repeat(200) }), create(ds, { id: 'l'.repeat(201) })];
    const r = await submitChanges(ctx.db, [ok, long], limits);
    expect(r.results.map((x) => [x.changeId.length, x.outcome, x.error?.code ?? null])).toEqual([
      [200, 'REJECTED', 'MALFORMED_ID'],
      [201, 'REJECTED', 'MALFORMED_ID'],
    ]);
    expect((await logs('k'.repeat(200))).map((l) => [l.original, l.outcome])).toEqual([[true, 'REJECTED']]);
    expect((await logs('l'.repeat(200))).map((l) => [l.original, l.outcome])).toEqual([[false, 'REJECTED']]);
  });

  it('a change too large to keep is recorded without its label and data, marked truncated; a smaller invalid one whole', async () => {
    const ds = await ctx.newDataset(['n']);
    const big = create(ds, { data: { n: 'x'.repeat(4096) } });
    const invalid = create(ds, { label: '', data: { n: 2 } });
    const r = await submitChanges(ctx.db, [big, invalid], limits);
    expect(r.results.map((x) => [x.outcome, x.error?.code])).toEqual([
      ['REJECTED', 'TOO_LARGE'],
      ['REJECTED', 'MISSING_LABEL'],
    ]);
    const [kept] = await logs(String(big.id));
    expect(kept!.payload).toMatchObject({ id: big.id, label: null, data: null, truncated: true });
    const [whole] = await logs(String(invalid.id));
    expect(whole!.payload).toMatchObject({ id: invalid.id, label: '', data: { n: 2 } });
    expect(whole!.payload).not.toHaveProperty('truncated');
  });

  it('the device id is recorded when it is a string, else none', async () => {
    const ds = await ctx.newDataset(['n']);
    const [named, numbered] = [create(ds, { deviceId: 'tab-7' }), create(ds, { deviceId: 42 as unknown as string })];
    await submitChanges(ctx.db, [named, numbered], limits);
    expect((await logs(String(named.id))).map((l) => l.deviceId)).toEqual(['tab-7']);
    expect((await logs(String(numbered.id))).map((l) => l.deviceId)).toEqual([null]);
  });
});

describe('a poison change by local id, in a batch a webhook listens to', () => {
  it('answered with its local id and INTERNAL_ERROR, with why; the others land, announced and outboxed once', async () => {
    const ds = await ctx.newDataset(['n']);
    await createWebhook(ctx.db, { url: 'https://hooks.example.org/p', datasets: [ds], events: ['entityChanged'] });
    const [first, poison, last] = [create(ds), { ...create(ds), entityId: undefined, deviceId: 'tab-9', localId: 'plot-3' }, create(ds)];
    const undo = await refuse(ctx, String(poison.id));
    try {
      const r = await submitChanges(ctx.db, [first, poison, last], limits);
      expect(r.oneByOne).toBe(true);
      expect(r.outboxed).toBe(true);
      expect(r.results.map((x) => [x.changeId, x.outcome, x.localId ?? null, x.error?.code ?? null])).toEqual([
        [first.id, 'APPLIED', null, null],
        [poison.id, 'REJECTED', 'plot-3', 'INTERNAL_ERROR'],
        [last.id, 'APPLIED', null, null],
      ]);
      expect(r.events.map((e) => [e.type, 'entityId' in e ? e.entityId : null])).toEqual([
        ['entityChanged', first.entityId],
        ['entityChanged', last.entityId],
      ]);
      const [recorded] = await logs(String(poison.id));
      expect([recorded!.original, recorded!.outcome, recorded!.errorCode]).toEqual([false, 'REJECTED', 'INTERNAL_ERROR']);
    } finally {
      await undo();
    }
  });
});
