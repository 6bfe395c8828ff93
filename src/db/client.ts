import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { PgAsyncDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { relations } from './schema.js';

/** The one database type the rest of the code sees, whichever back end is behind it. */
export type Db = PgAsyncDatabase<PgQueryResultHKT, typeof relations>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** The postgres.js client, for LISTEN/NOTIFY; absent on PGlite. */
  sql?: postgres.Sql;
  pglite?: PGlite;
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

export interface OpenOptions {
  /** postgres:// URL; when absent PGlite is used. */
  url?: string;
  /** PGlite data folder; absent or 'memory://' keeps it in memory. */
  dataDir?: string;
  /** An already open PGlite (a test clone). */
  pglite?: PGlite;
  /** Pool size for a real Postgres. */
  max?: number;
  migrate?: boolean;
}

export async function openDatabase(opts: OpenOptions = {}): Promise<Database> {
  const shouldMigrate = opts.migrate ?? true;
  if (opts.url) {
    const client = postgres(opts.url, { max: opts.max ?? 10, onnotice: () => {} });
    const db = drizzlePostgres({ client, relations });
    if (shouldMigrate) await migratePostgres(db, { migrationsFolder });
    return { db: db as unknown as Db, kind: 'postgres', sql: client, close: () => client.end({ timeout: 5 }) };
  }
  const client = opts.pglite ?? (opts.dataDir && opts.dataDir !== 'memory://' ? new PGlite(opts.dataDir) : new PGlite());
  const db = drizzlePglite({ client, relations });
  if (shouldMigrate) await migratePglite(db, { migrationsFolder });
  return { db: db as unknown as Db, kind: 'pglite', pglite: client, close: () => client.close() };
}

/** True when the database answers a trivial query: what /ready reports. */
export async function databaseAnswers(db: Db): Promise<boolean> {
  try {
    await db.execute(sql`select /* ready */ 1`);
    return true;
  } catch {
    return false;
  }
}

/**
 * An error of postgres.js for a connection that went away (cut, terminated by the server, ended).
 * 3.4.9 can reject a query nobody awaits any more when its connection is cut under load (seen in
 * the fault test); the driver reconnects by itself, so such a stray rejection is no reason to die.
 * (Its unawaited type fetch on connect, whose 57P01 was no such code, is fixed in patches/.)
 */
export function isDroppedConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'CONNECTION_CLOSED' || code === 'CONNECTION_DESTROYED' || code === 'CONNECTION_ENDED';
}
