import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { DomainError } from '../core/errors.js';
import { hasNul } from '../core/json.js';
import { isValidDeviceId } from '../core/validate.js';
import { localIds } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { datasets } from '../db/datasets.js';
import { entities, entityVersions } from '../db/entities.js';
import { recordPull } from './devices.js';

export type VersionRow = typeof entityVersions.$inferSelect;

export interface ChangesPage {
  versions: VersionRow[];
  /** Opaque; pass it back to continue. Unchanged when nothing new was handed out. */
  cursor: string;
  hasMore: boolean;
  /** The calling device's local ids among the entities of this page. */
  localIds: { localId: string; entityId: string }[];
}

export const MAX_PULL = 1000;
export const DEFAULT_PULL = 100;

/** Cursor = position (transaction id, sequence) of the last version handed out. */
export function encodeCursor(txid: string, seq: number): string {
  return Buffer.from(`v1:${txid}:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): { txid: string; seq: number } {
  const m = /^v1:(\d{1,20}):(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  // Transaction ids stay far below 2^63; a larger one was never handed out (and would be clamped or refused by xid8).
  if (!m || BigInt(m[1]!) >= 2n ** 63n) throw new DomainError('INVALID_CURSOR', `"${cursor.slice(0, 60)}" is not a cursor this server handed out`);
  return { txid: m[1]!, seq: Number(m[2]) };
}

/**
 * The pull horizon, as SQL over the statement's snapshot: every transaction id below it has
 * ended (committed or rolled back) or belongs to another database of the server. It is the
 * snapshot's xmax, or its oldest in-progress transaction unless pg_stat_activity shows that one
 * running in another database: so a long transaction elsewhere on the server (another app,
 * another test file) does not hold pulls back, as the snapshot's xmin would. Without the right
 * to see other roles' sessions their transactions count as ours: slower, never wrong.
 * (backend_xid is a 32-bit xid; it is widened to xid8 with the epoch of xmax.)
 */
export const PULL_HORIZON = `least(
  pg_snapshot_xmax(pg_current_snapshot()),
  (select min(x) from pg_snapshot_xip(pg_current_snapshot()) as x
    where x::text::bigint not in (
      select case when w > e then w - 4294967296 else w end
      from (select ((e0 >> 32) << 32) + a.backend_xid::text::bigint as w, e0 as e
            from pg_stat_activity a, (select pg_snapshot_xmax(pg_current_snapshot())::text::bigint as e0) s
            where a.datname <> current_database() and a.backend_xid is not null) other)))`;

/**
 * Versions of a dataset after `cursor`, in (transaction id, sequence) order. Only versions
 * written below the pull horizon are handed out: a slow transaction that commits after a
 * faster one cannot be skipped, it is simply handed out by a later pull. Cursors come from
 * the database, never from clocks.
 */
export async function changesSince(db: Db, opts: { dataset: string; cursor?: string | null; limit?: number | null; deviceId?: string | null }): Promise<ChangesPage> {
  const limit = opts.limit ?? DEFAULT_PULL;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PULL) throw new DomainError('TOO_LARGE', `limit must be 1 to ${MAX_PULL}`);
  const from = opts.cursor != null ? decodeCursor(opts.cursor) : { txid: '0', seq: 0 };
  const [dataset] = hasNul(opts.dataset) ? [] : await db.select({ id: datasets.id }).from(datasets).where(eq(datasets.name, opts.dataset)).limit(1);
  if (!dataset) throw new DomainError('UNKNOWN_DATASET', `no dataset named "${opts.dataset.slice(0, 60)}"`);

  const rows = await db
    .select({ v: entityVersions })
    .from(entityVersions)
    .innerJoin(entities, eq(entities.id, entityVersions.entityId))
    .where(
      and(
        eq(entities.datasetId, dataset.id),
        sql`/* changesSince */ (${entityVersions.txid}, ${entityVersions.seq}) > (${from.txid}::xid8, ${from.seq}::bigint)`,
        sql`${entityVersions.txid} < ${sql.raw(PULL_HORIZON)}`,
      ),
    )
    .orderBy(asc(entityVersions.txid), asc(entityVersions.seq))
    .limit(limit + 1);
  // The devices view's "last pull", at most about once a minute per device. After the read, so its
  // write is never a transaction in progress that holds back this pull's horizon.
  if (opts.deviceId && isValidDeviceId(opts.deviceId)) await recordPull(db, opts.dataset, opts.deviceId);
  const versions = rows.slice(0, limit).map((r) => r.v);
  const last = versions.at(-1);
  const ids = [...new Set(versions.map((v) => v.entityId))];
  const mappings =
    opts.deviceId && ids.length > 0 && !hasNul(opts.deviceId)
      ? await db
          .select({ localId: localIds.localId, entityId: localIds.entityId })
          .from(localIds)
          .where(and(eq(localIds.datasetName, opts.dataset), eq(localIds.deviceId, opts.deviceId), inArray(localIds.entityId, ids)))
      : [];
  return {
    versions,
    cursor: last ? encodeCursor(last.txid, last.seq) : (opts.cursor ?? encodeCursor(from.txid, from.seq)),
    hasMore: rows.length > limit,
    localIds: mappings,
  };
}
