import { sql } from 'drizzle-orm';
import { dailySeries, lastDays, type DailyActivity } from '../core/activity.js';
import type { Db } from '../db/client.js';
import { rowsOf } from './batch-store.js';

const byDay = (rows: readonly Record<string, unknown>[]): Map<string, number> => new Map(rows.map((r) => [r.day as string, Number(r.n)]));

/**
 * A dataset's daily series over the last `days` UTC days (core/activity.ts), from what is stored:
 * conflicting versions by the day they were made; resolutions by day with the conflicts each
 * resolved; and the backlog from the held changes and the versions released or forced out of it
 * (a change held from its receipt to its version). A held change later refused (its entity deleted
 * meanwhile) leaves no version, so it is not counted while it was held.
 */
export async function datasetActivity(db: Db, dataset: { id: string; name: string }, days: number, now = new Date()): Promise<DailyActivity[]> {
  const window = lastDays(now, days);
  const from = window.from.toISOString();
  const day = (column: string) => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD')`);
  const [opened, resolved, backlog] = await Promise.all([
    db.execute(sql`
      select /* conflictsOpenedByDay */ ${day('v.created_at')} as day, count(*)::int as n
        from entity_versions v join entities e on e.id = v.entity_id
       where e.dataset_id = ${dataset.id}::uuid and v.conflict is not null and v.created_at >= ${from}::timestamptz
       group by 1`),
    db.execute(sql`
      select /* conflictsResolvedByDay */ ${day('created_at')} as day, sum(conflicts_resolved)::int as n
        from resolutions where dataset_id = ${dataset.id}::uuid and kind = 'RESOLVE' and created_at >= ${from}::timestamptz
       group by 1`),
    db.execute(sql`
      with stays as (
        select held_since as entered, null::timestamptz as left_at from held_changes where dataset_name = ${dataset.name}
        union all
        select c.received_at, v.created_at
          from entity_versions v
          join entities e on e.id = v.entity_id
          join changes c on c.change_id = v.change_id and c.original
         where e.dataset_id = ${dataset.id}::uuid and v.source in ('RELEASED', 'FORCED') and v.created_at >= ${from}::timestamptz
      )
      select /* backlogByDay */ 'start' as kind, null as day, count(*)::int as n from stays where entered < ${from}::timestamptz
      union all
      select 'in', ${day('entered')}, count(*)::int from stays where entered >= ${from}::timestamptz group by 2
      union all
      select 'out', ${day('left_at')}, count(*)::int from stays where left_at is not null group by 2`),
  ]);
  const stays = rowsOf<Record<string, unknown>>(backlog);
  const of = (kind: string) => stays.filter((r) => r.kind === kind);
  return dailySeries(window.days, {
    opened: byDay(rowsOf(opened)),
    resolved: byDay(rowsOf(resolved)),
    heldAtStart: Number(of('start')[0]?.n ?? 0),
    entered: byDay(of('in')),
    left: byDay(of('out')),
  });
}
