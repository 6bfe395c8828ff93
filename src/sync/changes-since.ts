import { getColumns, sql } from 'drizzle-orm';
import { DomainError } from '../core/errors.js';
import { hasNul } from '../core/json.js';
import { netOfPage, type LogRow } from '../core/subsets.js';
import { isValidDeviceId } from '../core/validate.js';
import { localIds } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { entityVersions } from '../db/entities.js';
import { jsonObjectText } from '../db/json-text.js';
import { boundedSet } from '../db/prepared.js';
import { recordPull } from './devices.js';

export type VersionRow = typeof entityVersions.$inferSelect;

export const MAX_PULL = 1000;
export const DEFAULT_PULL = 100;

/** A position in commit order: (transaction id, sequence). */
export interface Position {
  txid: string;
  seq: number;
}

/**
 * Cursor = position (transaction id, sequence) of the last row handed out. Part way through the
 * moves of a token that went from its whole datasets to a subset, it also carries `held`: the
 * position up to which the device had pulled the whole dataset, which decides which entering
 * entities it has already (subset-moves.ts).
 */
export function encodeCursor(txid: string, seq: number, held?: Position): string {
  return Buffer.from(held ? `v2:${txid}:${seq}:${held.txid}:${held.seq}` : `v1:${txid}:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): Position & { held?: Position } {
  const m = /^(?:v1:(\d{1,20}):(\d{1,18})|v2:(\d{1,20}):(\d{1,18}):(\d{1,20}):(\d{1,18}))$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const refuse = () => new DomainError('INVALID_CURSOR', `"${cursor.slice(0, 60)}" is not a cursor this server handed out`);
  if (!m) throw refuse();
  const [txid, seq, heldTxid, heldSeq] = m[1] !== undefined ? [m[1], m[2]!] : [m[3]!, m[4]!, m[5]!, m[6]!];
  // Transaction ids stay far below 2^63; a larger one was never handed out (and would be clamped or refused by xid8).
  if (BigInt(txid) >= 2n ** 63n || (heldTxid !== undefined && BigInt(heldTxid) >= 2n ** 63n)) throw refuse();
  return { txid, seq: Number(seq), ...(heldTxid !== undefined ? { held: { txid: heldTxid, seq: Number(heldSeq) } } : {}) };
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
  /** false: do not note the device's pull (a page read ahead, noted when it is handed out). */
  record?: boolean;
}

/** What a page was read against: a page read earlier is the same page now while these hold (read-ahead.ts). */
export interface PageBasis {
  datasetId: string;
  /** The pull horizon of the statement that read it (xid8 as text): every row below it was visible. */
  horizon: string;
  /** Whether the token read its subset log (else the dataset's versions). */
  logged: boolean;
  /**
   * No version of the page has a conflict still open. A version row is written once, except that
   * resolving a conflict marks it resolved in place (review-store.ts markResolved): a page
   * holding an open one may read differently later.
   */
  settled: boolean;
}

/** The columns of a version a pull can hand out (its `seq`, the key, always comes with them). */
export type VersionColumn = keyof VersionRow;
export const VERSION_COLUMNS = Object.keys(getColumns(entityVersions)) as VersionColumn[];

/**
 * One member of a version's JSON as the database writes it (`JsonShape`): the key, and the column
 * it copies, or a constant text (a `__typename`).
 */
export type JsonMember = { key: string; column: VersionColumn } | { key: string; text: string };
export type JsonShape = readonly JsonMember[];

/** A version written as JSON by the database, in the shape asked for. */
export interface JsonRow {
  json: string;
}

/** A page: the versions and entered entities as rows of the columns asked for (and `seq`), or as JSON rows. */
export interface PulledPage<R = Partial<VersionRow>> {
  /** The versions to hand out, in commit order. */
  versions: R[];
  /** The versions of entities that entered the token's subset by a reassignment (older than the cursor). */
  entered: R[];
  /** Entities that left the token's subset: the device drops them. */
  left: string[];
  /** Opaque; pass it back to continue. Unchanged when nothing new was handed out. */
  cursor: string;
  hasMore: boolean;
  /** The calling device's local ids among the entities of this page. */
  localIds: { localId: string; entityId: string }[];
  basis: PageBasis;
}

export type ChangesPage = PulledPage<VersionRow>;

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
 *
 * One statement reads the page (issue 22): the positions, each joined to its version's `columns`
 * and to the device's local id of its entity, so the page is read once, in one round trip.
 */
export async function pullPage(db: Db, opts: PullOptions, columns?: readonly VersionColumn[]): Promise<PulledPage>;
/**
 * The same page with each version written as JSON by the database, in `shape` (the keys in order):
 * no row is decoded into an object here, nor encoded again for the answer (src/graphql/raw-json.ts).
 */
export async function pullPage(db: Db, opts: PullOptions, columns: readonly VersionColumn[], shape: JsonShape): Promise<PulledPage<JsonRow>>;
export async function pullPage(db: Db, opts: PullOptions, columns: readonly VersionColumn[] = VERSION_COLUMNS, shape?: JsonShape): Promise<PulledPage<Partial<VersionRow> | JsonRow>> {
  const limit = opts.limit ?? DEFAULT_PULL;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PULL) throw new DomainError('TOO_LARGE', `limit must be 1 to ${MAX_PULL}`);
  const from = opts.cursor != null ? decodeCursor(opts.cursor) : { txid: '0', seq: 0 };
  if (hasNul(opts.dataset)) throw unknownDataset(opts.dataset);
  const token = opts.tokenId ?? null;
  const device = opts.deviceId && !hasNul(opts.deviceId) ? opts.deviceId : null;
  const logged = sql`coalesce((select subset is not null from api_tokens where id = ${token}::uuid), false)`;
  const after = sql`(${from.txid}::xid8, ${from.seq}::bigint)`;
  // Every version of the dataset up to here the device has pulled (subset-moves.ts, from_whole).
  const held = from.held ?? from;
  // The dataset (a first row, absent when there is no such dataset), the horizon, and the
  // positions of whichever of the two sources the token reads.
  const positions = sql`(
      with ds as (select id from datasets where name = ${opts.dataset}), horizon as (select ${sql.raw(PULL_HORIZON)} as x)
      -- The dataset row carries what the page was read against (PageBasis): the dataset's id, the
      -- horizon, and whether the token reads its subset log (1) or the versions (0).
      select 'DATASET' as kind, ds.id as entity_id, (select x from horizon) as txid, (case when ${logged} then 1 else 0 end)::bigint as seq, null::bigint as version_seq, false as from_whole from ds
      union all
      (select /* changesSince */ 'VERSION', v.entity_id, v.txid, v.seq, v.seq, false from entity_versions v
        where not ${logged} and v.dataset_id = (select id from ds) and (v.txid, v.seq) > ${after} and v.txid < (select x from horizon)
        order by v.txid, v.seq limit ${limit + 1})
      union all
      (select /* subsetSince */ l.kind, l.entity_id, l.txid, l.seq, l.version_seq, l.from_whole from subset_log l
        where ${logged} and l.token_id = ${token}::uuid and l.dataset_id = (select id from ds) and (l.txid, l.seq) > ${after} and l.txid < (select x from horizon)
        order by l.txid, l.seq limit ${limit + 1})) as p`;
  const all = getColumns(entityVersions);
  const picked = Object.fromEntries([...new Set<VersionColumn>(['seq', ...columns])].filter((c) => c in all).map((c) => [c, all[c]]));
  const query = db
    .select({
      kind: sql<'DATASET' | LogRow['kind']>`p.kind`,
      entityId: sql<string | null>`p.entity_id`,
      txid: sql<string | null>`p.txid::text`,
      seq: sql<string | number | null>`p.seq`,
      versionSeq: sql<string | number | null>`p.version_seq`,
      // An entity that entered when the token went from its whole datasets to a subset, at a
      // version this device pulled already (at or before its cursor): it has it (subset-moves.ts).
      pulled: sql<boolean | null>`p.from_whole and (${entityVersions.txid}, ${entityVersions.seq}) <= (${held.txid}::xid8, ${held.seq}::bigint)`,
      fromWhole: sql<boolean>`p.from_whole`,
      // A LEFT of those moves names the entity's version then, which the device holds only if it
      // had pulled that far; if not, the LEFT names none (so a later ENTERED of it is not netted out).
      leftHeld: sql<boolean | null>`p.from_whole and p.kind = 'LEFT' and exists (select from entity_versions hv where hv.seq = p.version_seq and (hv.txid, hv.seq) <= (${held.txid}::xid8, ${held.seq}::bigint))`,
      // A version whose conflict is not resolved yet: a reviewer may still mark it resolved in place.
      open: sql<boolean | null>`${entityVersions.conflict} is not null and not ${entityVersions.resolved}`,
      ...(shape
        ? {
            // Null where no version is joined (a LEFT row).
            json: sql<string | null>`case when ${entityVersions.seq} is null then null else ${jsonObjectText(shape.map((m) => ('column' in m ? { key: m.key, column: all[m.column] } : m)))} end`,
          }
        : { version: picked }),
      // The device's local ids only when a device pulls (else no join at all).
      localId: device === null ? sql<string | null>`null::text` : sql<string | null>`${localIds.localId}`,
    })
    .from(positions)
    // A LEFT row hands out no state, and maps no local id.
    .leftJoin(entityVersions, sql`${entityVersions.seq} = p.version_seq and p.kind <> 'LEFT'`)
    .$dynamic();
  if (device !== null) query.leftJoin(localIds, sql`${localIds.entityId} = p.entity_id and p.kind <> 'LEFT' and ${localIds.datasetName} = ${opts.dataset} and ${localIds.deviceId} = ${device}`);
  // Prepared: sent unnamed, as Drizzle sends a builder's statement, each pull paid a parse and a
  // plan (~2 ms). Its text depends on whether a device pulls and on the columns asked for, which a
  // client chooses: only the first few shapes are prepared (each stays in every connection).
  const ordered = query.orderBy(sql`p.kind <> 'DATASET', p.txid, p.seq`);
  // Keys and constants are parameters (json-text.ts): the statement's text depends on the columns alone.
  const statementShape = shape ? `json:${shape.flatMap((m) => ('column' in m ? [m.column] : [])).join(',')}` : Object.keys(picked).join(',');
  const rows = (await (preparedShapes.admit(`${device !== null}:${statementShape}`) ? ordered.prepare().execute() : ordered)) as {
    kind: 'DATASET' | LogRow['kind'];
    entityId: string | null;
    txid: string | null;
    seq: string | number | null;
    versionSeq: string | number | null;
    pulled: boolean | null;
    fromWhole: boolean;
    leftHeld: boolean | null;
    open: boolean | null;
    version?: Partial<VersionRow> | null;
    json?: string | null;
    localId: string | null;
  }[];
  const head = rows[0];
  if (head?.kind !== 'DATASET') throw unknownDataset(opts.dataset);
  // The devices view's "last pull", at most about once a minute per device. After the read, so its
  // write is never a transaction in progress that holds back this pull's horizon.
  if (opts.record !== false) await recordDevicePull(db, opts);
  // One pass over the page's rows (a page is up to 1,000 of them): its log, versions and local ids.
  const end = Math.min(rows.length, limit + 1);
  const log: LogRow[] = [];
  const bySeq = new Map<number, Partial<VersionRow> | JsonRow>();
  const mapped = new Map<string, string>();
  let settled = true;
  for (let i = 1; i < end; i++) {
    const r = rows[i]!;
    const versionSeq = r.versionSeq === null ? null : Number(r.versionSeq);
    if (r.open) settled = false;
    if (!r.pulled) log.push({ kind: r.kind as LogRow['kind'], entityId: r.entityId!, versionSeq: r.fromWhole && r.kind === 'LEFT' && !r.leftHeld ? null : versionSeq });
    if (r.version) bySeq.set(r.version.seq!, r.version);
    else if (r.json != null) bySeq.set(versionSeq!, { json: r.json });
    if (r.localId !== null) mapped.set(r.entityId!, r.localId);
  }
  const last = end > 1 ? rows[end - 1]! : undefined;
  const { versionSeqs, enteredSeqs, left } = netOfPage(log);
  return {
    versions: versionSeqs.map((s) => bySeq.get(s)!),
    entered: enteredSeqs.map((s) => bySeq.get(s)!),
    left,
    // Within the moves from the whole datasets, the cursor keeps where the device had pulled to.
    cursor: last ? encodeCursor(last.txid!, Number(last.seq), last.fromWhole ? held : undefined) : (opts.cursor ?? encodeCursor(from.txid, from.seq)),
    hasMore: rows.length - 1 > limit,
    localIds: [...mapped].map(([entityId, localId]) => ({ localId, entityId })),
    basis: { datasetId: head.entityId!, horizon: head.txid!, logged: Number(head.seq) === 1, settled },
  };
}

/** Notes a device's pull for the devices view (at most about once a minute per device). */
export async function recordDevicePull(db: Db, opts: PullOptions): Promise<void> {
  if (opts.deviceId && isValidDeviceId(opts.deviceId)) await recordPull(db, opts.dataset, opts.deviceId);
}

/** The pull statements' shapes that are prepared (docs/design.md, "Prepared statements"). */
const preparedShapes = boundedSet(32);

/** pullPage with every column of the versions (what src/graphql selects from is pullPage's). */
export async function changesSince(db: Db, opts: PullOptions): Promise<ChangesPage> {
  return (await pullPage(db, opts)) as ChangesPage;
}
