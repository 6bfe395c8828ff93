import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStorage } from '../../packages/client/src/file-storage.js';
import type { FetchLike } from '../../packages/client/src/http.js';
import type { SyncClient } from '../../packages/client/src/sync-client.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createDataset, newClient, record, serverEntity } from './helpers.js';

/**
 * The outbox is durable (issue 6): a client restarted from its file storage resumes what it
 * had not finished, and a batch whose answer was lost lands once when the restarted client
 * sends it again (the server answers DUPLICATE, the client takes it as applied).
 */

let t: TestApp;
let dir: string;
const clients: SyncClient[] = [];
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0 });
  dir = await mkdtemp(join(tmpdir(), 'entity-sync-client-'));
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

/** Real fetch, but the answers to submitChanges are lost (after the server processed them) while `lose` is set. */
function lossyFetch(): { fetchImpl: FetchLike; lose: (on: boolean) => void } {
  let losing = false;
  return {
    lose: (on) => (losing = on),
    fetchImpl: async (url, init) => {
      const res = await fetch(url, init);
      if (losing && init.body.includes('submitChanges')) {
        await res.text();
        throw new TypeError('fetch failed: connection reset');
      }
      return res;
    },
  };
}

const start = async (folder: string, deviceId: string, extra: { fetchImpl?: FetchLike } = {}) => {
  const c = await newClient(t.url, { storage: createFileStorage(folder), deviceId, webSocketImpl: null, ...extra });
  clients.push(c);
  return c;
};

describe('a client restarted from its file storage', () => {
  it('resumes its outbox: a batch whose answer was lost lands once, local ids and runs carry over', async () => {
    const ds = await createDataset(t, ['height', 'tags']);
    const folder = join(dir, 'tablet-1');
    const net = lossyFetch();
    const first = await start(folder, 'tablet-1', { fetchImpl: net.fetchImpl });
    const id = await first.create(ds, { label: 'Oak', data: { height: 1 } });
    await first.sync();
    const ids = [
      await first.update(id, { height: 2 }),
      await first.update(id, [{ op: 'LIST_ADD', property: 'tags', value: 'old' }]),
      await first.update(id, { height: 3 }),
    ];
    await first.create(ds, { label: 'Sapling', localId: 'sap-1', data: { height: 0 } });
    net.lose(true);
    await expect(first.sync()).rejects.toThrow(/connection reset/);
    // The server has them all; the client never heard.
    expect((await serverEntity(t, id))!).toMatchObject({ version: 4, data: { height: 3, tags: ['old'] } });
    expect(first.pending().map((e) => e.status)).toEqual(['pending', 'pending', 'pending', 'pending']);
    await first.close();

    const again = await start(folder, 'tablet-1');
    const events = record(again);
    expect(again.view(id)).toMatchObject({ data: { height: 3, tags: ['old'] }, serverVersion: 1, pending: 3 });
    expect(again.view('sap-1')).toMatchObject({ id: null, label: 'Sapling', pending: 1 });
    expect(await again.sync()).toMatchObject({ pushed: 4, pending: 0, held: 0 });
    expect(events.applied.map((a) => a.duplicate)).toEqual([true, true, true, true]);
    expect(events.rejected).toEqual([]);

    const e = (await serverEntity(t, id))!;
    expect(e.versions.map((v) => v.changeId).slice(1)).toEqual(ids);
    expect(again.view(id)).toMatchObject({ data: { height: 3, tags: ['old'] }, serverVersion: 4, pending: 0 });
    const sapling = again.entityId('sap-1')!;
    expect((await serverEntity(t, sapling))!).toMatchObject({ label: 'Sapling', version: 1 });
    expect(again.view('sap-1')).toMatchObject({ id: sapling, serverVersion: 1, pending: 0 });
    expect((await readdir(folder)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('edits made before a restart, never sent, go out once after it, in their run', async () => {
    const ds = await createDataset(t, ['height']);
    const folder = join(dir, 'tablet-2');
    const first = await start(folder, 'tablet-2');
    const id = await first.create(ds, { label: 'Ash', data: { height: 1 } });
    await first.sync();
    await first.update(id, { height: 2 });
    await first.close();

    const second = await start(folder, 'tablet-2');
    await second.update(id, { height: 3 });
    expect(second.pending().map((e) => [e.change.trunkVersion, e.change.baseVersion])).toEqual([[1, 1], [1, 2]]);
    expect(second.pending()[0]!.change.branchId).toBe(second.pending()[1]!.change.branchId);
    await second.close();

    // One change per batch, one batch in flight: two requests, one after the other.
    let inFlight = 0;
    const batches: number[] = [];
    const counting: FetchLike = async (url, init) => {
      if (!init.body.includes('submitChanges')) return fetch(url, init);
      batches.push(JSON.parse(init.body).variables.changes.length);
      expect(++inFlight).toBe(1);
      try {
        return await fetch(url, init);
      } finally {
        inFlight -= 1;
      }
    };
    const third = await newClient(t.url, { storage: createFileStorage(folder), deviceId: 'tablet-2', webSocketImpl: null, fetchImpl: counting, batchSize: 1 });
    clients.push(third);
    const events = record(third);
    expect(await third.sync()).toMatchObject({ pushed: 2, pending: 0 });
    expect(batches).toEqual([1, 1]);
    expect(events.synced).toEqual([{ pushed: 2, pulled: 2, pending: 0, held: 0 }]);
    expect(await third.sync()).toMatchObject({ pushed: 0, pulled: 0, pending: 0 });
    expect((await serverEntity(t, id))!).toMatchObject({ version: 3, data: { height: 3 }, conflict: null });
  });
});
