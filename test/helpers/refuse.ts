import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { SyncContext } from './sync-context.js';

/**
 * A database trigger that refuses one change's version, standing in for a bug or a value the
 * database cannot take: raises `errcode` (P0001, a plain failure; 40001, a serialization failure)
 * whenever that change's version is inserted, or only the first time (`once`). Answers its undo.
 */
export async function refuse(c: SyncContext, changeId: string, errcode = 'P0001', once = false): Promise<() => Promise<void>> {
  const name = `refuse_${randomUUID().slice(0, 8)}`;
  // A sequence is not rolled back with the transaction it is used in: "once" survives the retry.
  if (once) await c.db.execute(sql.raw(`create sequence ${name}_seq`));
  const when = once ? `new.change_id = '${changeId}' and nextval('${name}_seq') = 1` : `new.change_id = '${changeId}'`;
  await c.db.execute(sql.raw(`create function ${name}() returns trigger language plpgsql as $$
    begin if ${when} then raise exception 'refused for the test' using errcode = '${errcode}'; end if; return new; end $$`));
  await c.db.execute(sql.raw(`create trigger ${name} before insert on entity_versions for each row execute function ${name}()`));
  return async () => {
    await c.db.execute(sql.raw(`drop trigger ${name} on entity_versions`));
    await c.db.execute(sql.raw(`drop function ${name}()`));
    if (once) await c.db.execute(sql.raw(`drop sequence ${name}_seq`));
  };
}
