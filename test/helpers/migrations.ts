import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import type { Db } from '../../src/db/client.js';
import { relations } from '../../src/db/schema.js';
import { backend } from './database.js';

/**
 * For a test of a migration on a database with data: an empty database of the back end in use,
 * migrated to just before the migration whose folder ends in `suffix`, and how to run the rest
 * (every migration). The database is filled as the service filled it then, and migrated again.
 */
export async function databaseBefore(suffix: string): Promise<{ db: Db; migrateAll: () => Promise<unknown>; close: () => Promise<void> }> {
  const all = fileURLToPath(new URL('../../drizzle', import.meta.url));
  const folders = readdirSync(all).filter((f) => /^\d{14}_/.test(f)).sort();
  const at = folders.findIndex((f) => f.endsWith(suffix));
  if (at <= 0) throw new Error(`no migration folder ends in ${suffix} (or it is the first)`);
  const before = mkdtempSync(join(tmpdir(), 'es-migrations-'));
  for (const f of folders.slice(0, at)) cpSync(join(all, f), join(before, f), { recursive: true });
  const removeFolder = async () => rmSync(before, { recursive: true, force: true });

  if (backend === 'pglite') {
    const client = new PGlite();
    const db = drizzlePglite({ client, relations });
    await migratePglite(db, { migrationsFolder: before });
    return { db: db as unknown as Db, migrateAll: () => migratePglite(db, { migrationsFolder: all }), close: async () => (await client.close(), await removeFolder()) };
  }
  const adminUrl = process.env.DATABASE_URL!;
  const name = `es_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const client = postgres(url.toString(), { max: 2, onnotice: () => {} });
  const db = drizzlePostgres({ client, relations });
  await migratePostgres(db, { migrationsFolder: before });
  return {
    db: db as unknown as Db,
    migrateAll: () => migratePostgres(db, { migrationsFolder: all }),
    close: async () => {
      await client.end({ timeout: 5 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
      await removeFolder();
    },
  };
}
