import { sql, type SQL } from 'drizzle-orm';
import type { Subset } from '../core/subsets.js';

/**
 * core subsetKey in SQL, for one property of a jsonb document: a string as it is, a boolean as
 * `true`/`false`, an integer of up to 15 digits in decimal, else null. Numbers in jsonb were
 * written by JavaScript (JSON.stringify), so an integer's text has no exponent and no fraction,
 * as in subsetKey. test/sync/subset-sql.test.ts holds the two rules together.
 */
export function subsetKeySql(data: SQL, property: string | SQL): SQL {
  const name = typeof property === 'string' ? sql`${property}::text` : property;
  return sql`(case jsonb_typeof(${data} -> ${name})
    when 'string' then ${data} ->> ${name}
    when 'boolean' then ${data} ->> ${name}
    when 'number' then case when (${data} ->> ${name}) ~ '^-?[0-9]{1,15}$' then ${data} ->> ${name} end end)`;
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

/**
 * core inSubset in SQL for rules stored as jsonb (a token's `subset` column), so one statement
 * judges many tokens: true when the document matches every rule (an empty list: always).
 */
export function inStoredSubsetSql(data: SQL, subset: SQL): SQL {
  return sql`not exists (select 1 from jsonb_array_elements(${subset}) as r(rule)
    where not coalesce(${subsetKeySql(data, sql`(r.rule ->> 'property')`)} = any(array(select jsonb_array_elements_text(r.rule -> 'values'))), false))`;
}
