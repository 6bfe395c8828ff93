import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { PgAsyncDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { lockFolder, type FolderLock } from './folder-lock.js';
import { tightenFolder, type Tightened } from './folder-permissions.js';
import { PACKAGE_ROOT } from './package-root.js';
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
  /** The lock on the PGlite data folder this process owns while open (none in memory or on Postgres). */
  folder?: FolderLock;
  /** What opening found too open in an existing data folder and made owner-only (PGlite on disk only). */
  permissions?: Tightened;
  close(): Promise<void>;
}

const migrationsFolder = join(PACKAGE_ROOT, 'drizzle');

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
  /** What the data folder's lock names as its holder ("server", "token", "flush"). */
  owner?: string;
  /** PGlite's `shared_buffers` (a Postgres size, e.g. `32MB`); default DEFAULT_PGLITE_SHARED_BUFFERS. */
  sharedBuffers?: string;
}

/**
 * PGlite's buffer cache. Postgres's default, 128MB, lives inside PGlite's WebAssembly memory and
 * stays resident once touched (about 110 MB of an idle service's RSS); its files are read through
 * the OS, whose page cache keeps what the smaller cache drops. PGLITE_SHARED_BUFFERS raises it.
 */
export const DEFAULT_PGLITE_SHARED_BUFFERS = '32MB';

export async function openDatabase(opts: OpenOptions = {}): Promise<Database> {
  const shouldMigrate = opts.migrate ?? true;
  if (opts.url) {
    const client = postgres(opts.url, { max: opts.max ?? 10, onnotice: () => {} });
    const db = drizzlePostgres({ client, relations });
    try {
      if (shouldMigrate) await migrateAlone(opts.url, () => migratePostgres(db, { migrationsFolder }));
    } catch (error) {
      await client.end({ timeout: 1 }).catch(() => {});
      throw error;
    }
    return { db: db as unknown as Db, kind: 'postgres', sql: client, close: () => client.end({ timeout: 5 }) };
  }
  const onDisk = !opts.pglite && opts.dataDir && opts.dataDir !== 'memory://' ? opts.dataDir : null;
  // One process owns a data folder: take it before PGlite touches a file (throws FolderLockedError).
  const folder = onDisk ? lockFolder(onDisk, opts.owner ?? 'entity-sync') : undefined;
  let client: PGlite | undefined;
  try {
    // A folder of an earlier release (or copied with cp -r under umask 0) is made owner-only
    // before PGlite reads a file of it; the caller says so in its log.
    const permissions = onDisk ? tightenFolder(onDisk) : undefined;
    // Passed on the command line of each start (-c), not written into the folder's postgresql.conf.
    const options = { startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${opts.sharedBuffers ?? DEFAULT_PGLITE_SHARED_BUFFERS}`] };
    client = opts.pglite ?? (onDisk ? new PGlite(onDisk, options) : new PGlite(options));
    const db = drizzlePglite({ client, relations });
    if (shouldMigrate) await migratePglite(db, { migrationsFolder });
    // A new folder: PGlite's initdb wrote its files 0666 (whatever the umask); they were never
    // readable by others (the folder is 0700), and are owner-only from here on.
    if (onDisk) {
      await client.waitReady;
      tightenFolder(onDisk);
    }
    const pglite = client;
    const close = async () => {
      try {
        await pglite.close();
      } finally {
        folder?.release();
      }
    };
    return { db: db as unknown as Db, kind: 'pglite', pglite, ...(folder ? { folder } : {}), ...(permissions ? { permissions } : {}), close };
  } catch (error) {
    // A folder that failed to open or migrate is not left locked (nor open) behind the error.
    if (client && client !== opts.pglite) await client.close().catch(() => {});
    folder?.release();
    throw error;
  }
}

/**
 * Drizzle's migrator reads what is applied, then applies the rest, with no lock between: two
 * instances started at once on a new database both run the first migration, and the second
 * dies on "already exists" (drizzle-team/drizzle-orm#874). So each takes a session advisory lock
 * first, on a connection of its own (whatever the pool's size): the second waits, then finds
 * nothing left to apply. The lock goes with the connection, also when the process dies.
 */
async function migrateAlone(url: string, migrate: () => Promise<unknown>): Promise<void> {
  const lock = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await lock`select /* migrationLock */ pg_advisory_lock(hashtext('entity-sync migrations'))`;
    await migrate();
  } finally {
    await lock.end({ timeout: 1 });
  }
}

/** True when the database answers a trivial query: what /ready reports. */
export async function databaseAnswers(db: Db, timeoutMs = READY_TIMEOUT_MS): Promise<boolean> {
  // A database that does not answer in time (every pooled connection busy, a server that hangs)
  // is not ready either: the probe says so instead of leaving the load balancer to time out.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const answered = db.execute(sql`select /* ready */ 1`).then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([answered, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How long /ready waits for the database before it answers 503. */
export const READY_TIMEOUT_MS = 2000;

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

/** postgres.js and Node socket codes for a database that cannot be reached or went away. */
const UNREACHABLE_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  // SQLSTATE: shut down or terminated (57P01-57P03), the database gone (3D000), no connection
  // slot left (53300), refused credentials (28000, 28P01: the service cannot get in either).
  '57P01',
  '57P02',
  '57P03',
  '3D000',
  '53300',
  '28000',
  '28P01',
]);

/**
 * True when `error` (or what it wraps: Drizzle's DrizzleQueryError keeps the driver's error as
 * `cause`, GraphQL errors keep it as `originalError`) says the database cannot be reached: the
 * request may succeed later, unlike a failure of the request itself. Also SQLSTATE class 08
 * (connection exceptions), a database that takes no connections (`allow_connections false`)
 * and a closed PGlite.
 */
export function isDatabaseUnreachable(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || code.startsWith('08'))) return true;
    if (code === '55000' && typeof message === 'string' && message.includes('not currently accepting connections')) return true;
    if (message === 'PGlite is closed') return true;
    e = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}
