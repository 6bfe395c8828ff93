import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { databaseBefore } from '../helpers/migrations.js';
import { rowsOf } from '../../src/sync/batch-store.js';

/**
 * The migrations that give the token list and the conflict inbox a stored order (issue 17 item 2)
 * run on an existing database: tokens made before are numbered in the order they were made, and
 * entities in conflict get the time of their newest unresolved conflicting version. The database
 * is migrated to the migration before, filled as the service filled it then, and migrated again.
 */

let close: () => Promise<void> = async () => {};
afterAll(() => close());

describe('the list order migrations on a database with data', () => {
  it('number the tokens in the order they were made and give conflicted entities their newest open conflict time', async () => {
    const before = await databaseBefore('_token_seq');
    close = before.close;
    const { db } = before;
    // Stored newest first, so the table's own order is not the order they were made.
    const tokens = [randomUUID(), randomUUID(), randomUUID()];
    await db.execute(sql`insert into api_tokens (id, name, secret_hash, role, created_at) values
      (${tokens[2]}, 'third', 'h3', 'admin', '2026-01-03T00:00:00.000001Z'),
      (${tokens[0]}, 'first', 'h1', 'admin', '2026-01-01T00:00:00.000001Z'),
      (${tokens[1]}, 'second', 'h2', 'admin', '2026-01-01T00:00:00.000002Z')`);
    const ds = randomUUID();
    const [torn, settled, calm] = [randomUUID(), randomUUID(), randomUUID()];
    await db.execute(sql`insert into datasets (id, name, properties) values (${ds}, 'trees', '{height}')`);
    await db.execute(sql`insert into entities (id, dataset_id, label, data, version, conflict) values
      (${torn}, ${ds}, 'Torn', '{}', 4, 'HARD'), (${settled}, ${ds}, 'Settled', '{}', 2, null), (${calm}, ${ds}, 'Calm', '{}', 1, null)`);
    const version = (entity: string, v: number, conflict: string | null, resolved: boolean, at: string) =>
      sql`(${entity}, ${ds}, ${v}, 'UPDATE', 'x', '{}', '{}', 'ONLINE', ${randomUUID()}, ${conflict}, ${resolved}, ${at}::timestamptz)`;
    await db.execute(sql`insert into entity_versions (entity_id, dataset_id, version, action, label, data, changed, source, change_id, conflict, resolved, created_at) values
      ${version(torn, 1, null, false, '2026-02-01T00:00:00Z')}, ${version(torn, 2, 'SOFT', true, '2026-02-02T00:00:00Z')}, ${version(torn, 3, 'HARD', false, '2026-02-03T00:00:00.123456Z')},
      ${version(torn, 4, null, false, '2026-02-04T00:00:00Z')}, ${version(settled, 1, null, false, '2026-02-01T00:00:00Z')}, ${version(settled, 2, 'SOFT', true, '2026-02-05T00:00:00Z')},
      ${version(calm, 1, null, false, '2026-02-01T00:00:00Z')}`);

    await before.migrateAll();
    const numbered = rowsOf<{ id: string; seq: number }>(await db.execute(sql`select id, seq::int as seq from api_tokens order by seq`));
    expect(numbered).toEqual([
      { id: tokens[0], seq: 1 },
      { id: tokens[1], seq: 2 },
      { id: tokens[2], seq: 3 },
    ]);
    // A token made after takes the next number.
    const made = await createToken(db, { name: 'fourth', role: 'admin' });
    expect(made.token.seq).toBe(4);
    const times = rowsOf<{ id: string; at: string | null }>(await db.execute(sql`select id, to_char(last_conflict_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as at from entities`));
    expect(Object.fromEntries(times.map((r) => [r.id, r.at]))).toEqual({ [torn]: '2026-02-03T00:00:00.123456', [settled]: null, [calm]: null });
  });
});
