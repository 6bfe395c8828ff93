import { describe, expect, it } from 'vitest';
import { pullPage, type JsonRow, type JsonShape, type PulledPage, type PullOptions, type VersionColumn } from '../../src/sync/changes-since.js';
import { setTokenSubset } from '../../src/sync/tokens.js';
import { newDevice } from '../helpers/subset-device.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * A page but its rows, to compare two reads of it: the horizon each was read below may move in
 * between (another test file's transaction ending), and says nothing about the page.
 */
const besidesRows = (p: PulledPage<unknown>) => ({ ...p, versions: [], entered: [], basis: { ...p.basis, horizon: '' } });

/**
 * pullPage with a JSON shape (the page the database writes, src/graphql/raw-json.ts): the same
 * page as with columns, each version one JSON text with the shape's keys in its order, a constant
 * where the shape says so; the positions, the cursor, `entered`, `left` and the local ids as
 * without a shape. The API tests compare whole answers; this pins the statement where
 * `npm run mutate:sync` breaks it.
 */
const ctx = useSyncContext();

const SHAPE: JsonShape = [
  { key: 'v', column: 'version' },
  { key: '__typename', text: 'EntityVersion' },
  { key: 'id', column: 'entityId' },
  { key: 'data', column: 'data' },
  { key: 'conflictingProperties', column: 'conflictingProperties' },
  { key: 'deleted', column: 'deleted' },
];
const COLUMNS: VersionColumn[] = ['version', 'entityId', 'data', 'conflictingProperties', 'deleted'];

/** A version's row as the shape writes it, from its columns. */
const asShaped = (r: Record<string, unknown>) => ({ v: r.version, __typename: 'EntityVersion', id: r.entityId, data: r.data, conflictingProperties: r.conflictingProperties, deleted: r.deleted });

describe('pullPage with a JSON shape', () => {
  it('pages of a dataset: the same versions, keys in the shape order, the same cursors and local ids', async () => {
    const ds = await ctx.newDataset(['a', 'b']);
    const [created] = await ctx.submit({ dataset: ds, deviceId: 'phone-1', localId: 'tree-1', action: 'CREATE', label: 'Oak', data: { a: 'x "y"', b: [1, 2.5] } });
    const oak = created!.entityId!;
    const elm = await ctx.newEntity(ds, 'Elm', { a: 1 });
    await ctx.submit({ dataset: ds, entityId: oak, action: 'UPDATE', baseVersion: 1, data: { a: 'z' } });
    await ctx.submit({ dataset: ds, entityId: oak, action: 'UPDATE', baseVersion: 1, data: { a: 'w' } });
    await ctx.submit({ dataset: ds, entityId: elm, action: 'DELETE', baseVersion: 1 });
    await ctx.pullable();
    let cursor: string | null = null;
    const seen: string[] = [];
    for (;;) {
      const opts: PullOptions = { dataset: ds, cursor, limit: 2, deviceId: 'phone-1' };
      const plain = await pullPage(ctx.db, opts, COLUMNS);
      const shaped: PulledPage<JsonRow> = await pullPage(ctx.db, opts, COLUMNS, SHAPE);
      expect(shaped.versions.every((r) => Object.keys(r).join() === 'json')).toBe(true);
      const texts = shaped.versions.map((r) => r.json);
      // Keys in the shape's order, the constant where it says.
      for (const text of texts) expect(Object.keys(JSON.parse(text))).toEqual(['v', '__typename', 'id', 'data', 'conflictingProperties', 'deleted']);
      expect(texts.map((t) => JSON.parse(t))).toEqual(plain.versions.map(asShaped));
      expect(besidesRows(shaped)).toEqual(besidesRows(plain));
      seen.push(...texts.map((t) => `${JSON.parse(t).id === oak ? 'oak' : 'elm'}@${JSON.parse(t).v}`));
      cursor = shaped.cursor;
      if (!shaped.hasMore) break;
    }
    expect(seen).toEqual(['oak@1', 'elm@1', 'oak@2', 'oak@3', 'elm@2']);
    const first = await pullPage(ctx.db, { dataset: ds, limit: 1, deviceId: 'phone-1' }, COLUMNS, SHAPE);
    expect(first.localIds).toEqual([{ localId: 'tree-1', entityId: oak }]);
    expect(JSON.parse(first.versions[0]!.json)).toEqual({ v: 1, __typename: 'EntityVersion', id: oak, data: { a: 'x "y"', b: [1, 2.5] }, conflictingProperties: [], deleted: false });
  });

  it('a token with a subset: entered rows written the same way, a left entity only in `left`', async () => {
    const ds = await ctx.newDataset(['district']);
    const a = await ctx.newEntity(ds, 'A', { district: 'd1' });
    const b = await ctx.newEntity(ds, 'B', { district: 'd2' });
    const device = await newDevice(ctx.db, ds, [{ property: 'district', values: ['d1'] }]);
    await ctx.submit({ dataset: ds, entityId: a, action: 'UPDATE', baseVersion: 1, data: { district: 'd2' } });
    await setTokenSubset(ctx.db, device.tokenId, [{ property: 'district', values: ['d2'] }]);
    await ctx.pullable();
    const opts = { dataset: ds, cursor: null, limit: 100, tokenId: device.tokenId };
    const plain = await pullPage(ctx.db, opts, COLUMNS);
    const shaped = await pullPage(ctx.db, opts, COLUMNS, SHAPE);
    expect(shaped.entered.map((r) => JSON.parse(r.json))).toEqual(plain.entered.map(asShaped));
    expect(shaped.versions.map((r) => JSON.parse(r.json))).toEqual(plain.versions.map(asShaped));
    expect(besidesRows(shaped)).toEqual(besidesRows(plain));
    // Both now in d2: the share is A at 2 and B at 1, whichever way each came.
    const held = [...shaped.versions, ...shaped.entered].map((r) => JSON.parse(r.json) as { id: string; v: number });
    expect(new Map(held.map((r) => [r.id, r.v]))).toEqual(new Map([[a, 2], [b, 1]]));
  });
});
