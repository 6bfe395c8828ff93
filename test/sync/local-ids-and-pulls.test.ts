import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/core/errors.js';
import { changesSince, encodeCursor, pullPage, VERSION_COLUMNS, type VersionColumn } from '../../src/sync/changes-since.js';
import { useSyncContext, type Change } from '../helpers/sync-context.js';

/**
 * DESIGN "Client-local ids and pulling" through src/sync (the medium layer): a device names an
 * entity by its own local id, the server mints the UUID and resolves it in the device's later
 * changes (even ones that overtake the create); changesSince hands out versions after a cursor,
 * each once, with the calling device's mappings. Both back ends.
 */

const ctx = useSyncContext();
/** postgres.js answers rows as an array, PGlite as `{ rows }`. */
const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? (r as T[]) : ((r as { rows: T[] }).rows ?? []));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const localCreate = (dataset: string, deviceId: string, localId: string, label: string, data = {}): Change => ({ dataset, deviceId, localId, action: 'CREATE', label, data });
const localUpdate = (dataset: string, deviceId: string, localId: string, n: number, data = {}): Change => ({ dataset, deviceId, localId, action: 'UPDATE', baseVersion: n, data });

describe('local ids', () => {
  it('the create returns the minted entity id beside the local id; later changes by the local id reach it', async () => {
    const ds = await ctx.newDataset(['a', 'b']);
    const [created] = await ctx.submit(localCreate(ds, 'phone-1', 'tree-1', 'Oak', { a: 1 }));
    expect(created).toMatchObject({ outcome: 'APPLIED', version: 1, localId: 'tree-1' });
    expect(created!.entityId).toMatch(UUID);
    expect(await ctx.submit(localUpdate(ds, 'phone-1', 'tree-1', 1, { b: 2 }))).toMatchObject([{ outcome: 'APPLIED', version: 2, entityId: created!.entityId, localId: 'tree-1' }]);
    await ctx.expectHistory(created!.entityId!, [
      { action: 'CREATE', deviceId: 'phone-1', data: { a: 1 } },
      { action: 'UPDATE', data: { a: 1, b: 2 }, conflict: null },
    ]);
  });

  it('updates overtaking their create are held and released by it, in run order', async () => {
    const ds = await ctx.newDataset(['a']);
    const [u2, u1] = await ctx.submit(localUpdate(ds, 'phone-2', 'early', 2, { a: 2 }), localUpdate(ds, 'phone-2', 'early', 1, { a: 1 }));
    expect([u2, u1]).toMatchObject([
      { outcome: 'HELD', waitsFor: 1 },
      { outcome: 'HELD', waitsFor: 0 },
    ]);
    expect(u1!.entityId).toBe(u2!.entityId);
    const [c] = await ctx.submit(localCreate(ds, 'phone-2', 'early', 'Birch', { a: 0 }));
    expect(c).toMatchObject({ outcome: 'APPLIED', version: 1, entityId: u1!.entityId });
    expect(c!.released.map((r) => [r.changeId, r.version])).toEqual([
      [u1!.changeId, 2],
      [u2!.changeId, 3],
    ]);
    expect((await ctx.entity(u1!.entityId!))!).toMatchObject({ version: 3, data: { a: 2 }, conflict: null });
  });

  it('two devices using one local id name two entities; a local id needs a device', async () => {
    const ds = await ctx.newDataset(['a']);
    const [x] = await ctx.submit(localCreate(ds, 'phone-a', 'same', 'A'));
    const [y] = await ctx.submit(localCreate(ds, 'phone-b', 'same', 'B'));
    expect(x!.entityId).not.toBe(y!.entityId);
    const [refused] = await ctx.submit({ dataset: ds, localId: 'same', action: 'CREATE', label: 'C' });
    expect(refused).toMatchObject({ outcome: 'REJECTED', error: { code: 'MISSING_DEVICE_ID' } });
    expect((await ctx.logOf(refused!.changeId))!).toMatchObject({ outcome: 'REJECTED', errorCode: 'MISSING_DEVICE_ID' });
  });
});

describe('pulls', () => {
  it('pages follow the cursor: every version once, in commit order; an unchanged cursor when nothing is new', async () => {
    const ds = await ctx.newDataset(['a']);
    const other = await ctx.newDataset(['a']);
    const e1 = await ctx.newEntity(ds, 'One');
    const e2 = await ctx.newEntity(ds, 'Two');
    await ctx.newEntity(other, 'Elsewhere');
    await ctx.submit({ dataset: ds, entityId: e1, action: 'UPDATE', baseVersion: 1, data: { a: 1 } }, { dataset: ds, entityId: e2, action: 'UPDATE', baseVersion: 1, data: { a: 2 } });

    const all = await ctx.pullAll(ds, null, { limit: 2 });
    expect(all.pages).toBe(2);
    expect(all.versions.map((v) => [v.entityId, v.version])).toEqual([
      [e1, 1],
      [e2, 1],
      [e1, 2],
      [e2, 2],
    ]);
    const empty = await ctx.pull(ds, all.cursor);
    expect({ versions: empty.versions, cursor: empty.cursor, hasMore: empty.hasMore }).toEqual({ versions: [], cursor: all.cursor, hasMore: false });

    await ctx.submit({ dataset: ds, entityId: e2, action: 'DELETE', baseVersion: 2 });
    const next = await ctx.pull(ds, all.cursor);
    expect(next.versions.map((v) => [v.entityId, v.version, v.deleted])).toEqual([[e2, 3, true]]);
  });

  it("a device's pull carries its own local-id mappings, and only those", async () => {
    const ds = await ctx.newDataset(['a']);
    const [mine] = await ctx.submit(localCreate(ds, 'phone-m', 'm-1', 'Mine'));
    await ctx.submit(localCreate(ds, 'phone-o', 'o-1', 'Theirs'));
    expect((await ctx.pull(ds, null, { deviceId: 'phone-m' })).localIds).toEqual([{ localId: 'm-1', entityId: mine!.entityId }]);
    expect((await ctx.pull(ds, null)).localIds).toEqual([]);
  });

  it('a pull of any columns reads those columns of the same versions, prepared for its first 32 shapes and unnamed past them', async () => {
    const ds = await ctx.newDataset(['a']);
    const e = await ctx.newEntity(ds, 'One');
    await ctx.submit({ dataset: ds, entityId: e, action: 'UPDATE', baseVersion: 1, data: { a: 7 } });
    const full = await ctx.pull(ds);
    expect(full.versions.map((v) => [v.entityId, v.version])).toEqual([
      [e, 1],
      [e, 2],
    ]);
    // 40 shapes (each a different set of columns, with and without a device): past the bound.
    const others = VERSION_COLUMNS.filter((c) => c !== 'seq');
    for (let n = 0; n < 40; n++) {
      const columns = others.filter((_, i) => ((n + 1) >> i) & 1 || i === n % others.length);
      // A transaction elsewhere on the server may hold the horizon back for a moment (CI saw shape 30 empty).
      await ctx.pullable();
      const page = await pullPage(ctx.db, { dataset: ds, deviceId: n % 2 ? 'phone-s' : null }, columns);
      const want = full.versions.map((v) => Object.fromEntries(['seq', ...columns].map((c) => [c, v[c as keyof typeof v]])));
      expect(page.versions, `shape ${n}: ${columns.join(',')}`).toEqual(want);
    }
  });

  it('refuses a cursor it did not hand out, an unknown dataset and a page size out of range', async () => {
    const ds = await ctx.newDataset(['a']);
    const code = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => (e instanceof DomainError ? e.code : String(e)));
    expect(await code(changesSince(ctx.db, { dataset: ds, cursor: 'not-a-cursor' }))).toBe('INVALID_CURSOR');
    expect(await code(changesSince(ctx.db, { dataset: `missing_${randomUUID().slice(0, 8)}` }))).toBe('UNKNOWN_DATASET');
    expect(await code(changesSince(ctx.db, { dataset: ds, limit: 0 }))).toBe('TOO_LARGE');
    expect(await code(changesSince(ctx.db, { dataset: ds, limit: 1001 }))).toBe('TOO_LARGE');
    expect(await code(changesSince(ctx.db, { dataset: ds, limit: 1.5 }))).toBe('TOO_LARGE');
  });

  it('the bounds: pages of 1 and of 1,000, a cursor up to transaction 2^63 - 1; refused: 2^63, anything around a cursor, a NUL in a name; each refusal says what it refused', async () => {
    const ds = await ctx.newDataset(['a']);
    const id = await ctx.newEntity(ds, 'One');
    await ctx.submit({ dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { a: 1 } });
    const one = await ctx.pull(ds, null, { limit: 1 });
    expect([one.versions.map((v) => v.version), one.hasMore]).toEqual([[1], true]);
    const most = await changesSince(ctx.db, { dataset: ds, limit: 1000 });
    expect([most.versions.map((v) => v.version), most.hasMore]).toEqual([[1, 2], false]);
    // The largest transaction id xid8 takes as a cursor: nothing after it (yet); the cursor stays.
    const last = encodeCursor('9223372036854775807', 0);
    expect(await changesSince(ctx.db, { dataset: ds, cursor: last })).toMatchObject({ versions: [], cursor: last, hasMore: false });
    const lastV2 = encodeCursor('9223372036854775807', 0, { txid: '9223372036854775807', seq: 0 });
    expect(await changesSince(ctx.db, { dataset: ds, cursor: lastV2 })).toMatchObject({ versions: [], cursor: lastV2, hasMore: false });

    const refusal = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => (e instanceof DomainError ? { code: e.code, message: e.message } : String(e)));
    const wrapped = (text: string) => Buffer.from(text).toString('base64url');
    // v2 (part way through a token's moves from its whole dataset) carries a second position, checked alike.
    const v2 = [encodeCursor('1', 1, { txid: '9223372036854775808', seq: 0 }), wrapped('v2:1:1'), wrapped('v2:1:1:1'), wrapped('v1:1:1:1:1'), wrapped('v2:1:1:1:1x')];
    for (const cursor of [encodeCursor('9223372036854775808', 0), wrapped('xv1:1:1'), wrapped('v1:1:1x'), wrapped(`v1:1:1${' '.repeat(60)}`), ...v2]) {
      expect(await refusal(changesSince(ctx.db, { dataset: ds, cursor })), cursor).toEqual({ code: 'INVALID_CURSOR', message: `"${cursor.slice(0, 60)}" is not a cursor this server handed out` });
    }
    expect((await refusal(changesSince(ctx.db, { dataset: ds, cursor: 'c'.repeat(100) })))).toEqual({ code: 'INVALID_CURSOR', message: `"${'c'.repeat(60)}" is not a cursor this server handed out` });
    const long = `missing_${'m'.repeat(100)}`;
    expect(await refusal(changesSince(ctx.db, { dataset: long }))).toEqual({ code: 'UNKNOWN_DATASET', message: `no dataset named "${long.slice(0, 60)}"` });
    expect(await refusal(changesSince(ctx.db, { dataset: `${ds}\u0000` }))).toMatchObject({ code: 'UNKNOWN_DATASET' });
    expect(await refusal(changesSince(ctx.db, { dataset: ds, limit: 0 }))).toEqual({ code: 'TOO_LARGE', message: 'limit must be 1 to 1000' });
  });

  it("a device's pull is noted for the devices view (its last pull); a device id no change could carry is not", async () => {
    const ds = await ctx.newDataset(['a']);
    const pulled = async () =>
      rowsOf<{ device_id: string }>(await ctx.db.execute(sql`select device_id from device_pulls where dataset_name = ${ds} order by device_id`)).map((r) => r.device_id);
    await ctx.pull(ds, null, { deviceId: 'phone-p' });
    await ctx.pull(ds, null);
    await ctx.pull(ds, null, { deviceId: 'd'.repeat(201) });
    await ctx.pull(ds, null, { deviceId: 'tab\u0000x' });
    expect(await pulled()).toEqual(['phone-p']);
  });

  it('a column that is not a version column is not read (the request asked for a field that is no column)', async () => {
    const ds = await ctx.newDataset(['a']);
    await ctx.newEntity(ds, 'One');
    const page = await pullPage(ctx.db, { dataset: ds }, ['version', 'entity' as VersionColumn]);
    expect(page.versions.map((v) => Object.keys(v).sort())).toEqual([['seq', 'version']]);
    expect(page.versions[0]).toMatchObject({ version: 1 });
  });
});
