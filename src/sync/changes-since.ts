import { and, eq, inArray, sql } from 'drizzle-orm';
import { DomainError } from '../core/errors.js';
import { hasNul } from '../core/json.js';
import { netOfPage, type LogRow } from '../core/subsets.js';
import { isValidDeviceId } from '../core/validate.js';
import { localIds } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { entityVersions } from '../db/entities.js';
import { rowsOf } from './batch-store.js';
import { recordPull } from './devices.js';

export type VersionRow = typeof entityVersions.$inferSelect;

/** A page as positions: which versions to hand out, which entities left, where to continue. */
export interface PullPositions {
  /** Seqs of the versions to hand out, in commit order. */
  versionSeqs: number[];
  /** Seqs of the versions of entities that entered the token's subset by a reassignment (older than the cursor). */
  enteredSeqs: number[];
  /** Entities that left the token's subset: the device drops them. */
  left: string[];
  /** Opaque; pass it back to continue. Unchanged when nothing new was handed out. */
  cursor: string;
  hasMore: boolean;
  /** The calling device's local ids among the entities of this page. */
  localIds: { localId: string; entityId: string }[];
}

export interface ChangesPage extends Omit<PullPositions, 'versionSeqs' | 'enteredSeqs'> {
  versions: VersionRow[];
  entered: VersionRow[];
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

const unknownDataset = (name: string) => new DomainError('UNKNOWN_DATASET', `no dataset named "${name.slice(0, 60)}"`);

export interface PullOptions {
  dataset: string;
  cursor?: string | null;
  limit?: number | null;
  deviceId?: string | null;
  /** The API token pulling: with a subset, its share is pulled from its subset log. */
  tokenId?: string | null;
}

/**
 * A page of a dataset after `cursor`, in (transaction id, sequence) order. Only rows written
 * below the pull horizon are handed out: a slow transaction that commits after a faster one
 * cannot be skipped, it is simply handed out by a later pull. Cursors come from the database,
 * never from clocks.
 *
 * A token without a subset reads the dataset's versions; a token with one reads its subset log
 * (db/subsets.ts): the versions of its share, ENTERED rows (reassignments) and LEFT rows, so a
 * page costs what the device's share costs (issue 20). Whether the token has a subset is read in
 * the same statement as the rows, so a reassignment committing meanwhile is either wholly before
 * the page or wholly after it. The log shares the versions' sequence, so a cursor from before a
 * reassignment continues in it.
 */
export async function pullPositions(db: Db, opts: PullOptions): Promise<PullPositions> {
  const limit = opts.limit ?? DEFAULT_PULL;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PULL) throw new DomainError('TOO_LARGE', `limit must be 1 to ${MAX_PULL}`);
  const from = opts.cursor != null ? decodeCursor(opts.cursor) : { txid: '0', seq: 0 };
  if (hasNul(opts.dataset)) throw unknownDataset(opts.dataset);
  const token = opts.tokenId ?? null;
  const logged = sql`coalesce((select subset is not null from api_tokens where id = ${token}::uuid), false)`;
  const after = sql`(${from.txid}::xid8, ${from.seq}::bigint)`;
  // One statement: the dataset (a first row, absent when there is no such dataset), the horizon,
  // and the rows of whichever of the two sources the token reads.
  const all = rowsOf<{ kind: 'DATASET' | 'VERSION' | 'ENTERED' | 'LEFT'; entity_id: string; txid: string; seq: string | number; version_seq: string | number | null }>(
    await db.execute(sql`
      with ds as (select id from datasets where name = ${opts.dataset}), horizon as (select ${sql.raw(PULL_HORIZON)} as x)
      select 'DATASET' as kind, null::uuid as entity_id, null::text as txid, null::bigint as seq, null::bigint as version_seq from ds
      union all
      (select /* changesSince */ 'VERSION', v.entity_id, v.txid::text, v.seq, v.seq from entity_versions v
        where not ${logged} and v.dataset_id = (select id from ds) and (v.txid, v.seq) > ${after} and v.txid < (select x from horizon)
        order by v.txid, v.seq limit ${limit + 1})
      union all
      (select /* subsetSince */ l.kind, l.entity_id, l.txid::text, l.seq, l.version_seq from subset_log l
        where ${logged} and l.token_id = ${token}::uuid and l.dataset_id = (select id from ds) and (l.txid, l.seq) > ${after} and l.txid < (select x from horizon)
        order by l.txid, l.seq limit ${limit + 1})`),
  );
  if (!all.some((r) => r.kind === 'DATASET')) throw unknownDataset(opts.dataset);
  const rows = all.filter((r) => r.kind !== 'DATASET');
  // The devices view's "last pull", at most about once a minute per device. After the read, so its
  // write is never a transaction in progress that holds back this pull's horizon.
  if (opts.deviceId && isValidDeviceId(opts.deviceId)) await recordPull(db, opts.dataset, opts.deviceId);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const { versionSeqs, enteredSeqs, left } = netOfPage(page.map((r) => ({ kind: r.kind as LogRow['kind'], entityId: r.entity_id, versionSeq: r.version_seq === null ? null : Number(r.version_seq) })));
  const ids = [...new Set(page.filter((r) => r.kind !== 'LEFT').map((r) => r.entity_id))];
  const mappings =
    opts.deviceId && ids.length > 0 && !hasNul(opts.deviceId)
      ? await db
          .select({ localId: localIds.localId, entityId: localIds.entityId })
          .from(localIds)
          .where(and(eq(localIds.datasetName, opts.dataset), eq(localIds.deviceId, opts.deviceId), inArray(localIds.entityId, ids)))
      : [];
  return {
    versionSeqs,
    enteredSeqs,
    left,
    cursor: last ? encodeCursor(last.txid, Number(last.seq)) : (opts.cursor ?? encodeCursor(from.txid, from.seq)),
    hasMore: rows.length > limit,
    localIds: mappings,
  };
}

/** pullPositions with the rows of the versions it names (src/graphql loads them through the graph instead). */
export async function changesSince(db: Db, opts: PullOptions): Promise<ChangesPage> {
  const { versionSeqs, enteredSeqs, ...rest } = await pullPositions(db, opts);
  const seqs = [...versionSeqs, ...enteredSeqs];
  const rows = seqs.length === 0 ? [] : await db.select().from(entityVersions).where(inArray(entityVersions.seq, seqs));
  const bySeq = new Map(rows.map((r) => [r.seq, r]));
  return { ...rest, versions: versionSeqs.map((s) => bySeq.get(s)!), entered: enteredSeqs.map((s) => bySeq.get(s)!) };
}
