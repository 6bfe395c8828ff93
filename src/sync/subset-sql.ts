import { sql, type SQL } from 'drizzle-orm';
import type { Subset } from '../core/subsets.js';

/**
 * core subsetKey in SQL, for one property of a jsonb document: a string as it is, a boolean as
 * `true`/`false`, an integer of up to 15 digits in decimal, else null. Numbers in jsonb were
 * written by JavaScript (JSON.stringify), so an integer's text has no exponent and no fraction,
 * as in subsetKey. test/sync/subset-sql.test.ts holds the two rules together.
 */
export function subsetKeySql(data: SQL, property: string): SQL {
  return sql`(case jsonb_typeof(${data} -> ${property}::text)
    when 'string' then ${data} ->> ${property}::text
    when 'boolean' then ${data} ->> ${property}::text
    when 'number' then case when (${data} ->> ${property}::text) ~ '^-?[0-9]{1,15}$' then ${data} ->> ${property}::text end end)`;
}

/**
 * core inSubset in SQL: true when the document matches every rule (null rules: the whole
 * datasets, always true). Each rule's values are one array parameter.
 */
export function inSubsetSql(data: SQL, subset: Subset | null): SQL {
  if (subset === null || subset.length === 0) return sql`true`;
  return sql.join(
    subset.map((rule) => sql`coalesce(${subsetKeySql(data, rule.property)} = any(${sql.param([...rule.values])}::text[]), false)`),
    sql` and `,
  );
}
