import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { rowsOf } from './batch-store.js';
import { pullPage, recordDevicePull, type JsonRow, type JsonShape, type PageBasis, type PulledPage, type PullOptions, type VersionColumn, type VersionRow } from './changes-since.js';

type Page = PulledPage<Partial<VersionRow> | JsonRow>;

/**
 * Pages read ahead (issue 20): a device syncing a share pulls page after page, each request
 * waiting for the one before. When a page says `hasMore`, the next page is read at once, while
 * this one is still being sent and decoded, and handed out when the device asks for it, so the
 * database's part of a page overlaps the rest of the round trip instead of adding to it.
 *
 * A page read ahead is handed out only when it is the page a read now would return
 * (`stillCurrent`, one small statement): the same dataset by that name, the same source (the
 * token's subset log or the dataset's versions), and, unless it was full, no row of that source
 * committed at or above the horizon it was read below; and no version of it with a conflict still
 * open (the one change a version row takes in place: a reviewer marks it resolved). A full page
 * cannot have changed otherwise: every row below its horizon was visible when it was read, later
 * rows sort after them, and rows are never deleted. So what a device is handed never depends on
 * whether it was read ahead.
 *
 * Bounded: at most `max` pages held, at most PER_TOKEN of them for one token (one per cursor:
 * none read ahead when full, or when that page is held already), each for at most TTL_MS, so the
 * server's memory and the database's extra reads stay flat whatever devices do.
 */
export interface ReadAhead {
  /** A page for `opts` (read ahead, or read now), and the next one read ahead when there is more. */
  pull(db: Db, opts: PullOptions, columns: readonly VersionColumn[], shape: JsonShape | null): Promise<Page>;
  /** Reads nothing ahead from now on, and settles once no read ahead is in flight (shutdown, before the database closes). */
  drain(): Promise<void>;
}

interface Held {
  expires: number;
  token: string | null;
  page: Promise<Page | null>;
}

/** Pages held at most for one token (a device syncs a dataset or two at a time). */
const PER_TOKEN = 4;
/** How long a page is held for the device's next request. */
const TTL_MS = 10_000;

/** `max`: pages held at most (0: nothing is read ahead). */
export function createReadAhead(max: number): ReadAhead {
  const held = new Map<string, Held>();
  const inFlight = new Set<Promise<unknown>>();
  let closed = false;

  const read = (db: Db, o: PullOptions, columns: readonly VersionColumn[], shape: JsonShape | null): Promise<Page> =>
    shape ? pullPage(db, o, columns, shape) : pullPage(db, o, columns);

  function prune(): void {
    const t = Date.now();
    for (const [key, h] of held) if (h.expires <= t) held.delete(key);
  }

  function ahead(db: Db, o: PullOptions, columns: readonly VersionColumn[], shape: JsonShape | null, page: Page): void {
    if (!page.hasMore || max === 0 || closed) return;
    prune();
    const token = o.tokenId ?? null;
    const next = { ...o, cursor: page.cursor, record: false };
    const key = keyOf(next, columns, shape);
    if (held.size >= max || held.has(key) || [...held.values()].filter((h) => h.token === token).length >= PER_TOKEN) return;
    // A read that fails is simply not used: the device's own request reads again and gets the error.
    const p = read(db, next, columns, shape).catch(() => null);
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    held.set(key, { expires: Date.now() + TTL_MS, token, page: p });
  }

  return {
    async pull(db, o, columns, shape) {
      const key = keyOf(o, columns, shape);
      const h = held.get(key);
      held.delete(key);
      let page: Page | null = null;
      if (h && h.expires > Date.now()) {
        const early = await h.page;
        if (early && (await stillCurrent(db, o, early))) {
          page = early;
          await recordDevicePull(db, o);
        }
      }
      page ??= await read(db, o, columns, shape);
      ahead(db, o, columns, shape, page);
      return page;
    },
    async drain() {
      closed = true;
      held.clear();
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

/** The request a page answers: everything that shapes it. */
function keyOf(o: PullOptions, columns: readonly VersionColumn[], shape: JsonShape | null): string {
  return JSON.stringify([o.dataset, o.tokenId ?? null, o.deviceId ?? null, o.cursor ?? null, o.limit ?? null, columns, shape]);
}

/** Whether a read now would return `page` (see ReadAhead). */
async function stillCurrent(db: Db, o: PullOptions, page: Page): Promise<boolean> {
  const b: PageBasis = page.basis;
  if (!b.settled) return false;
  const token = o.tokenId ?? null;
  const [row] = rowsOf<{ current: boolean }>(
    await db.execute(sql`
    select /* readAheadCurrent */ coalesce((select id from datasets where name = ${o.dataset}) = ${b.datasetId}::uuid, false)
      and coalesce((select subset is not null from api_tokens where id = ${token}::uuid), false) = ${b.logged}
      and (${page.hasMore} or not exists (
        select 1 from entity_versions v where not ${b.logged} and v.dataset_id = ${b.datasetId}::uuid and v.txid >= ${b.horizon}::xid8
        union all
        select 1 from subset_log l where ${b.logged} and l.token_id = ${token}::uuid and l.dataset_id = ${b.datasetId}::uuid and l.txid >= ${b.horizon}::xid8)) as current`),
  );
  return row?.current === true;
}
