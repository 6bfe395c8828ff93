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
import { changesSince } from '../../src/sync/changes-since.js';
import { backend } from '../helpers/database.js';

/**
 * The subsets migration runs on an existing database (issue 20 item 7): versions stored before it
 * get their entity's dataset (backfilled in the migration), and pulls read them by dataset after.
 * The database is migrated to the migration before, filled as the service filled it then, and
 * migrated again.
 */

const all = fileURLToPath(new URL('../../drizzle', import.meta.url));
const folders = readdirSync(all).filter((f) => /^\d{14}_/.test(f)).sort();
const mine = folders.findIndex((f) => f.endsWith('_subsets'));
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

describe('the subsets migration on a database with data', () => {
  it('backfills every stored version with its dataset; pulls read them by dataset after', async () => {
    expect(mine).toBeGreaterThan(0);
    const { db, migrate } = await emptyDatabase();
    await migrate(before);
    const [trees, birds] = [randomUUID(), randomUUID()];
    const [oak, owl] = [randomUUID(), randomUUID()];
    await db.execute(sql`insert into datasets (id, name, properties) values (${trees}, 'trees', '{height}'), (${birds}, 'birds', '{height}')`);
    await db.execute(sql`insert into entities (id, dataset_id, label, data, version) values (${oak}, ${trees}, 'Oak', '{"height": 2}', 2), (${owl}, ${birds}, 'Owl', '{"height": 1}', 1)`);
    await db.execute(sql`insert into entity_versions (entity_id, version, action, label, data, changed, source, change_id) values
      (${oak}, 1, 'CREATE', 'Oak', '{"height": 1}', '{"height": 1}', 'ONLINE', ${randomUUID()}),
      (${owl}, 1, 'CREATE', 'Owl', '{"height": 1}', '{"height": 1}', 'ONLINE', ${randomUUID()}),
      (${oak}, 2, 'UPDATE', 'Oak', '{"height": 2}', '{"height": 2}', 'ONLINE', ${randomUUID()})`);

    await migrate(all);
    const rows = rowsOf<{ entity_id: string; version: number; dataset_id: string }>(await db.execute(sql`select entity_id, version, dataset_id from entity_versions order by seq`));
    expect(rows).toEqual([
      { entity_id: oak, version: 1, dataset_id: trees },
      { entity_id: owl, version: 1, dataset_id: birds },
      { entity_id: oak, version: 2, dataset_id: trees },
    ]);
    const [column] = rowsOf<{ is_nullable: string }>(await db.execute(sql`select is_nullable from information_schema.columns where table_name = 'entity_versions' and column_name = 'dataset_id'`));
    expect(column).toEqual({ is_nullable: 'NO' });
    const page = await changesSince(db, { dataset: 'trees' });
    expect(page.versions.map((v) => [v.entityId, v.version])).toEqual([
      [oak, 1],
      [oak, 2],
    ]);
    expect([page.entered, page.left]).toEqual([[], []]);
  });
});
