import { sql, type SQL } from 'drizzle-orm';
import type { heldChanges } from '../db/changes.js';
import type { entities } from '../db/entities.js';

/**
 * Sort keys for paged lists ordered by a time, as fixed-width UTC text with microseconds: they
 * sort as the times compare, so a page cursor carries them exactly (plugin-drizzle writes a Date
 * to a cursor in milliseconds, and a row within the same millisecond would be repeated or
 * skipped on the next page). For plugin-drizzle `extras`, like lastConflictAtOf.
 */
const utcText = (column: SQL | unknown): SQL<string> => sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** When a held change was held (the backlog's order). */
export const heldSinceKeyOf = (h: typeof heldChanges): SQL<string> => utcText(h.heldSince);

/** When an entity's current version or conflict state was written (the conflicts list's order). */
export const updatedAtKeyOf = (e: typeof entities): SQL<string> => utcText(e.updatedAt);

/** A page cursor of such a list: plugin-drizzle's (key, id) tuple, checked before it reaches SQL. */
export function isTimeKeyCursor(cursor: string, isId: (id: string) => boolean): boolean {
  const decoded = Buffer.from(cursor, 'base64').toString('utf8');
  let parts: unknown = null;
  try {
    parts = decoded.startsWith('DC:T:') ? JSON.parse(decoded.slice(5)) : null;
  } catch {
    return false;
  }
  if (!Array.isArray(parts) || parts.length !== 2) return false;
  const [at, id] = parts as unknown[];
  return typeof at === 'string' && /^S:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(at) && typeof id === 'string' && id.startsWith('S:') && isId(id.slice(2));
}
