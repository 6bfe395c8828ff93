import { sql, type AnyColumn } from 'drizzle-orm';
import { inSubsetSql } from '../sync/subset-sql.js';
import type { Context } from './context.js';

/**
 * The subset rule on a path to an entity (DESIGN "Subsets"): a token with a subset never sees an
 * entity, or a version of one, whose properties are outside its share, and gets the same answer as
 * for a missing one (null, no error). A where-clause for a relational query of `entities` or
 * `entity_versions` (both keep the full state in `data`), composed with whatever else the query
 * filters on (the dataset rule among them); empty for a token without a subset.
 */
export function inSubsetWhere(ctx: Pick<Context, 'principal'>): { RAW?: (table: { data: AnyColumn }) => ReturnType<typeof sql> } {
  const subset = ctx.principal.subset;
  if (!subset || subset.length === 0) return {};
  return { RAW: (table) => inSubsetSql(sql`${table.data}`, subset) };
}
