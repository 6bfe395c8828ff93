import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { openDatabase, type Database } from '../../src/db/client.js';
import { templatePath } from './global-setup.js';

/**
 * A fresh, migrated database for one test file: PGlite in memory by default, or a new
 * database on the Postgres server named by DATABASE_URL (dropped again on close).
 */
export async function freshDatabase(opts: { max?: number } = {}): Promise<Database & { url?: string }> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    // A copy of the migrated template made once by global-setup.ts (a fresh PGlite per file).
    if (!existsSync(templatePath)) return openDatabase({});
    const pglite = new PGlite({ loadDataDir: new Blob([readFileSync(templatePath)]) });
    return openDatabase({ pglite, migrate: false });
  }
  const name = `es_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = await openDatabase({ url: url.toString(), max: opts.max ?? 10 });
  return {
    ...database,
    url: url.toString(),
    close: async () => {
      await database.close();
      const drop = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await drop.unsafe(`drop database if exists ${name} with (force)`);
      await drop.end();
    },
  };
}

export const backend = process.env.DATABASE_URL ? 'postgres' : 'pglite';
