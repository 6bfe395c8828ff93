import { sql, type Column, type SQL } from 'drizzle-orm';

/** One member of an object written by `jsonObjectText`: its key, and a column or a constant text. */
export type JsonTextMember = { key: string; column: Column } | { key: string; text: string };

// Column types whose text output is already their JSON: numbers, booleans, and stored JSON
// (jsonb_out writes exactly what to_json and json_build_object write for it).
const AS_TEXT = new Set(['smallint', 'integer', 'bigint', 'serial', 'bigserial', 'smallserial', 'boolean', 'json', 'jsonb']);

/**
 * SQL writing one column's value as JSON text, never SQL null (JSON `null` instead). A uuid is
 * quoted as it is (its text needs no escaping); numbers, booleans and stored JSON are their own
 * text; anything else (text, arrays, times) goes through to_json, which escapes.
 */
function valueText(column: Column): SQL {
  const type = column.getSQLType();
  const array = ((column as { dimensions?: number }).dimensions ?? 0) > 0;
  const text = array ? sql`to_json(${column})::text` : type === 'uuid' ? sql`'"' || ${column}::text || '"'` : AS_TEXT.has(type) ? sql`${column}::text` : sql`to_json(${column})::text`;
  return column.notNull ? text : sql`coalesce(${text}, 'null')`;
}

/**
 * SQL writing a JSON object of `members` in their order, as text: the keys and constants are
 * encoded here and sent as parameters (a client's aliases change neither the statement's text,
 * its prepared shape, nor meet an identifier's length limit), each column by `valueText`.
 *
 * Concatenation rather than json_build_object, which looks up how to write each argument's type
 * on every row: a pull's page of 1,000 versions cost the database about 2 ms more that way
 * (issue 20). Written in jsonb's own style (`{"key": 1, "other": 2}`), so an answer shows which
 * way it went (test/graphql/raw-json.test.ts, which compares the answers with the executor's).
 */
export function jsonObjectText(members: readonly JsonTextMember[]): SQL {
  const parts: SQL[] = [];
  let pending = '{';
  let first = true;
  for (const m of members) {
    pending += `${first ? '' : ', '}${JSON.stringify(m.key)}: `;
    first = false;
    if ('text' in m) {
      pending += JSON.stringify(m.text);
      continue;
    }
    parts.push(sql`${pending}::text`, valueText(m.column));
    pending = '';
  }
  parts.push(sql`${`${pending}}`}::text`);
  return sql.join(parts, sql` || `);
}
