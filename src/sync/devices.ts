import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { rowsOf } from './batch-store.js';

/** What a dataset knows of one device (the reviewer's devices view). */
export interface DeviceActivity {
  deviceId: string;
  /** When its newest change to the dataset was received (whatever its outcome); null if it never sent one. */
  lastChangeAt: Date | null;
  /** Its changes waiting in the backlog. */
  heldChanges: number;
  /** Its changes the service refused in the last 24 hours. */
  rejectedLastDay: number;
  /** When it last pulled the dataset (changesSince naming it; recorded at most about once a minute); null if never. */
  lastPullAt: Date | null;
}

export const DEVICES_PAGE = 50;
export const MAX_DEVICES_PAGE = 200;

const at = (v: unknown): Date | null => (v == null ? null : new Date(v as string | Date));

/**
 * The devices of a dataset, by id, a page at a time: every device that sent it a change or pulled
 * it. The distinct device ids are found by skipping through the change log's index (a recursive
 * scan: one index probe per device, not one row per change), then each device's facts by index.
 */
export async function datasetDevices(db: Db, datasetName: string, opts: { after: string | null; first: number }): Promise<{ devices: DeviceActivity[]; hasMore: boolean }> {
  const after = opts.after;
  const rows = rowsOf<Record<string, unknown>>(
    await db.execute(sql`
      with recursive sent(device_id) as (
        (select device_id from changes where dataset_name = ${datasetName} and device_id is not null and (${after}::text is null or device_id > ${after}::text) order by device_id limit 1)
        union all
        select (select c.device_id from changes c where c.dataset_name = ${datasetName} and c.device_id > s.device_id order by c.device_id limit 1) from sent s where s.device_id is not null
      ), page as (
        (select device_id from sent where device_id is not null limit ${opts.first + 1})
        union
        (select device_id from device_pulls where dataset_name = ${datasetName} and (${after}::text is null or device_id > ${after}::text) order by device_id limit ${opts.first + 1})
        order by device_id limit ${opts.first + 1}
      )
      select /* datasetDevices */ p.device_id,
             (select max(c.received_at) from changes c where c.dataset_name = ${datasetName} and c.device_id = p.device_id) as last_change_at,
             (select count(*)::int from held_changes h where h.dataset_name = ${datasetName} and h.device_id = p.device_id) as held,
             (select count(*)::int from changes c where c.dataset_name = ${datasetName} and c.device_id = p.device_id and c.outcome = 'REJECTED' and c.received_at > now() - interval '1 day') as rejected,
             (select d.pulled_at from device_pulls d where d.dataset_name = ${datasetName} and d.device_id = p.device_id) as last_pull_at
        from page p order by p.device_id`),
  );
  const devices = rows.slice(0, opts.first).map((r) => ({
    deviceId: r.device_id as string,
    lastChangeAt: at(r.last_change_at),
    heldChanges: Number(r.held),
    rejectedLastDay: Number(r.rejected),
    lastPullAt: at(r.last_pull_at),
  }));
  return { devices, hasMore: rows.length > opts.first };
}

/** A pull is recorded at most this often per device and dataset: the devices view shows minutes, not every request. */
const PULL_RECORD_MS = 60_000;
/** Pulls recorded lately, per database (a test process opens several), so most pulls cost no statement at all. */
const recorded = new WeakMap<Db, Map<string, number>>();

/**
 * Notes that a device pulled a dataset. Cheap: skipped when this process noted it in the last
 * minute, and the upsert itself writes nothing when another instance did (its where clause).
 */
export async function recordPull(db: Db, datasetName: string, deviceId: string): Promise<void> {
  const key = JSON.stringify([datasetName, deviceId]);
  let seen = recorded.get(db);
  if (!seen) recorded.set(db, (seen = new Map()));
  const now = Date.now();
  if (now - (seen.get(key) ?? 0) < PULL_RECORD_MS) return;
  // Bounded: many devices, one minute each; the oldest notes go first.
  if (seen.size >= 10_000) seen.clear();
  seen.set(key, now);
  await db.execute(sql`
    insert into device_pulls /* recordPull */ (dataset_name, device_id, pulled_at) values (${datasetName}, ${deviceId}, now())
    on conflict (dataset_name, device_id) do update set pulled_at = excluded.pulled_at
     where device_pulls.pulled_at < excluded.pulled_at - interval '1 minute'`);
}
