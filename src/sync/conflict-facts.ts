import { sql, type SQL } from 'drizzle-orm';
import type { entities } from '../db/entities.js';
import { entityVersions } from '../db/entities.js';

/**
 * What an entity's open conflict consists of, read from its history: the versions applied in
 * conflict that no reviewer has resolved yet (resolveConflict marks them resolved). Derived, not
 * stored, so it can never disagree with the history. It is an SQL expression over the entity
 * row (the table alias the relational query passes in), for plugin-drizzle `extras`: selected
 * in the same statement as the entity, so a page of entities costs one query.
 */
const unresolvedOf = (e: typeof entities): SQL =>
  sql`${entityVersions.entityId} = ${e.id} and ${entityVersions.conflict} is not null and not ${entityVersions.resolved}`;

/** The sorted union of the conflictingProperties of those versions (byte order, as JavaScript sorts). */
export const conflictingPropertiesOf = (e: typeof entities): SQL<string[]> =>
  sql<string[]>`(select /* conflictingProperties */ coalesce(jsonb_agg(distinct p.name collate "C" order by p.name collate "C"), '[]'::jsonb)
    from ${entityVersions} cross join lateral unnest(${entityVersions.conflictingProperties}) as p(name) where ${unresolvedOf(e)})`;
