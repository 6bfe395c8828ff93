/**
 * A dataset's daily series for the reviewer's charts: conflicts opened, conflicts resolved and the
 * size of the held backlog, per UTC day, drawn from what is stored (src/sync/activity.ts loads the
 * counts). Pure: days and sums only.
 */

export interface DailyActivity {
  /** The UTC day, `YYYY-MM-DD`. */
  day: string;
  /** Versions applied in conflict that day (SOFT or HARD). */
  conflictsOpened: number;
  /** Conflicting versions reviewers marked resolved that day. */
  conflictsResolved: number;
  /** Changes held in the backlog at the end of that day (for today: now). */
  backlog: number;
}

export const MAX_ACTIVITY_DAYS = 90;

const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` of a moment, in UTC. */
export const utcDay = (at: Date): string => at.toISOString().slice(0, 10);

/** The last `days` UTC days up to the one `now` falls in, oldest first, and the moment the first begins. */
export function lastDays(now: Date, days: number): { days: string[]; from: Date } {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const from = today - (days - 1) * DAY_MS;
  return { days: Array.from({ length: days }, (_, i) => utcDay(new Date(from + i * DAY_MS))), from: new Date(from) };
}

/** What the series is made of: counts per day, and how many changes were held when the first day began. */
export interface ActivityCounts {
  opened: ReadonlyMap<string, number>;
  resolved: ReadonlyMap<string, number>;
  /** Held before the first day and still held when it began. */
  heldAtStart: number;
  /** Changes that entered the backlog, per day they were held. */
  entered: ReadonlyMap<string, number>;
  /** Changes that left it (released or forced), per day they left. */
  left: ReadonlyMap<string, number>;
}

/** One entry per day, oldest first; the backlog carried from day to day. */
export function dailySeries(days: readonly string[], counts: ActivityCounts): DailyActivity[] {
  let backlog = counts.heldAtStart;
  return days.map((day) => {
    backlog += (counts.entered.get(day) ?? 0) - (counts.left.get(day) ?? 0);
    return { day, conflictsOpened: counts.opened.get(day) ?? 0, conflictsResolved: counts.resolved.get(day) ?? 0, backlog };
  });
}
