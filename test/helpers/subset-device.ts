import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { expect } from 'vitest';
import { inSubset, type Subset, type SubsetRuleInput } from '../../src/core/subsets.js';
import type { ChangeInput } from '../../src/core/types.js';
import type { Db } from '../../src/db/client.js';
import { rowsOf } from '../../src/sync/batch-store.js';
import { changesSince, type ChangesPage } from '../../src/sync/changes-since.js';
import { submitChanges } from '../../src/sync/submit-changes.js';
import { createToken, setTokenSubset } from '../../src/sync/tokens.js';
import { pullable, settledRead } from './horizon.js';

/**
 * A field device with a subset token, over src/sync: it pulls pages as a client library would
 * apply them (versions and entered: keep each entity's highest version; then drop left) and
 * submits as its token. `expectInSync` compares what it holds with the server's share.
 */

// Tests import pullable from here, beside the device that uses it.
export { pullable };

export interface Held {
  version: number;
  data: Record<string, unknown>;
  deleted: boolean;
  label: string;
}

export interface Device {
  tokenId: string;
  dataset: string;
  cursor: string | null;
  held: Map<string, Held>;
  /** Every page pulled, for tests that look at what came when. */
  pages: ChangesPage[];
  /** One page, read until its horizon passed everything written before it (unless `settle` is false). */
  pullPage(limit?: number, settle?: boolean): Promise<ChangesPage>;
  /** Pages until there is no more; the pages of this sync. */
  sync(limit?: number): Promise<ChangesPage[]>;
  submit(...changes: (Omit<ChangeInput, 'id' | 'dataset'> & { id?: string })[]): Promise<Awaited<ReturnType<typeof submitChanges>>['results']>;
  reassign(subset: SubsetRuleInput[]): Promise<void>;
  expectInSync(): Promise<void>;
}

/** A device-bound collector token of one dataset, with a subset (or none), and its device. */
export async function newDevice(db: Db, dataset: string, subset: SubsetRuleInput[] | null, name = 'tablet'): Promise<Device> {
  const deviceId = `${name}-${randomUUID().slice(0, 8)}`;
  // null: a token of the whole dataset (until it is reassigned).
  const { token } = await createToken(db, { name, role: 'collector', deviceId, datasets: [dataset], ...(subset ? { subset } : {}) });
  const device: Device = {
    tokenId: token.id,
    dataset,
    cursor: null,
    held: new Map(),
    pages: [],
    async pullPage(limit, settle = true) {
      const read = () => changesSince(db, { dataset, cursor: device.cursor, limit: limit ?? null, deviceId, tokenId: token.id });
      const page = settle ? await settledRead(db, read) : await read();
      for (const v of [...page.versions, ...page.entered]) {
        const known = device.held.get(v.entityId);
        if (!known || known.version < v.version) device.held.set(v.entityId, { version: v.version, data: v.data, deleted: v.deleted, label: v.label });
      }
      for (const id of page.left) device.held.delete(id);
      device.cursor = page.cursor;
      device.pages.push(page);
      return page;
    },
    async sync(limit) {
      const pages: ChangesPage[] = [];
      for (let i = 0; ; i++) {
        const page = await device.pullPage(limit);
        pages.push(page);
        if (!page.hasMore) return pages;
        if (i > 10_000) throw new Error('a sync that never ends');
      }
    },
    async submit(...changes) {
      const r = await submitChanges(
        db,
        changes.map((c) => ({ id: randomUUID(), dataset, deviceId, ...c })),
        undefined,
        token.id,
      );
      return r.results;
    },
    async reassign(rules) {
      await setTokenSubset(db, token.id, rules);
    },
    async expectInSync() {
      const expected = await share(db, dataset, token.id);
      // Deleted entities: a device keeps those it had when they were deleted; it is never handed new ones.
      const live = (m: Map<string, Held>) => new Map([...m].filter(([, h]) => !h.deleted));
      expect(Object.fromEntries(live(device.held)), 'the device holds exactly its share, at the current versions').toEqual(Object.fromEntries(live(expected)));
      for (const [id, h] of device.held) if (h.deleted) expect(expected.get(id), `deleted ${id} is in the share`).toEqual(h);
    },
  };
  return device;
}

/** The server's share of a token now: every entity of the dataset whose current properties match its subset. */
export async function share(db: Db, dataset: string, tokenId: string): Promise<Map<string, Held>> {
  const [token] = rowsOf<{ subset: unknown }>(await db.execute(sql`select subset from api_tokens where id = ${tokenId}::uuid`));
  const raw = token?.subset ?? null;
  const subset = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Subset | null;
  const rows = rowsOf<{ id: string; version: number; data: unknown; deleted: boolean; label: string }>(
    await db.execute(sql`select e.id, e.version, e.data, e.deleted, e.label from entities e join datasets d on d.id = e.dataset_id where d.name = ${dataset}`),
  );
  const out = new Map<string, Held>();
  for (const r of rows) {
    const data = (typeof r.data === 'string' ? JSON.parse(r.data) : r.data) as Record<string, never>;
    if (inSubset(subset, data)) out.set(r.id, { version: Number(r.version), data, deleted: r.deleted, label: r.label });
  }
  return out;
}

/**
 * Nothing handed twice: within a page each entity gets a version at most once, and only one newer
 * than what the device held before the page (unless the device dropped it on a LEFT since).
 */
export function expectNoRepeats(device: Device): void {
  const held = new Map<string, number>();
  device.pages.forEach((page, n) => {
    const inPage = new Map<string, number[]>();
    for (const v of [...page.versions, ...page.entered]) inPage.set(v.entityId, [...(inPage.get(v.entityId) ?? []), v.version]);
    for (const [id, versions] of inPage) {
      expect(new Set(versions).size, `page ${n}: ${id} handed versions ${versions} `).toBe(versions.length);
      const had = held.get(id);
      for (const v of versions) expect(had === undefined || had < v, `page ${n}: ${id} v${v} handed again while held at v${had}`).toBe(true);
      held.set(id, Math.max(...versions));
    }
    for (const id of page.left) held.delete(id);
  });
}
