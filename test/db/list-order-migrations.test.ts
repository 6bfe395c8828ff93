import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/client.js';
import { relations } from '../../src/db/schema.js';
import { createToken } from '../../src/sync/tokens.js';
import { backend } from '../helpers/database.js';

/**
 * The migrations that give the token list and the conflict inbox a stored order (issue 17 item 2)
 * run on an existing database: tokens made before are numbered in the order they were made, and
 * entities in conflict get the time of their newest unresolved conflicting version. The database
 * is migrated to the migration before, filled as the service filled it then, and migrated again.
 */

const all = fileURLToPath(new URL('../../drizzle', import.meta.url));
const folders = readdirSync(all).filter((f) => /^\d{14}_/.test(f)).sort();
const mine = folders.findIndex((f) => f.endsWith('_token_seq'));
const before = mkdtempSync(join(tmpdir(), 'es-migrations-'));
for (const f of folders.slice(0, mine)) cpSync(join(all, f), join(before, f), { recursive: true });

function rowsOf<T>(result: unknown): T[] {
  return Array.isArray(result) ? (result as T[]) : ((result as { rows: T[] }).rows ?? []);
}

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  rmSync(before, { recursive: true, force: true });
});

/** An empty database of the back end in use, and how to migrate it from a folder. */
async function emptyDatabase(): Promise<{ db: Db; migrate: (folder: string) => Promise<unknown> }> {
  if (backend === 'pglite') {
    const client = new PGlite();
    closers.push(() => client.close());
    const db = drizzlePglite({ client, relations });
    return { db: db as unknown as Db, migrate: (migrationsFolder) => migratePglite(db, { migrationsFolder }) };
  }
  const adminUrl = process.env.DATABASE_URL!;
  const name = `es_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const client = postgres(url.toString(), { max: 2, onnotice: () => {} });
  closers.push(async () => {
    await client.end({ timeout: 5 });
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  });
  const db = drizzlePostgres({ client, relations });
  return { db: db as unknown as Db, migrate: (migrationsFolder) => migratePostgres(db, { migrationsFolder }) };
}

describe('the list order migrations on a database with data', () => {
  it('number the tokens in the order they were made and give conflicted entities their newest open conflict time', async () => {
    expect(mine).toBeGreaterThan(0);
    const { db, migrate } = await emptyDatabase();
    await migrate(before);
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

    await migrate(all);
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
