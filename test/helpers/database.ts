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
    if (process.env.PGLITE_REUSE === '1') return reusedPglite();
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

/**
 * PGLITE_REUSE=1 (vitest.sync.config.ts, for `npm run mutate:sync`): one PGlite per worker, put
 * back as the template left it between files instead of loaded again (300-500 ms a file, a third
 * of the suite StrykerJS runs once per mutant). What a file may have left is undone: an open
 * transaction, session state, rows (TRUNCATE ... RESTART IDENTITY), and the tables, sequences,
 * functions and triggers the template does not have (a test's fault injection whose test failed).
 * The template's own objects are listed once, when the PGlite is first loaded.
 */
let reusable: { pglite: PGlite; template: Set<string>; busy: boolean } | null = null;

const OBJECTS = `
  select 'table ' || quote_ident(c.relname) as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind in ('r', 'p')
  union all select 'sequence ' || quote_ident(c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'S'
  union all select 'function ' || p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'
  union all select 'trigger ' || quote_ident(t.tgname) || ' on ' || quote_ident(c.relname) from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and not t.tgisinternal`;

async function reusedPglite(): Promise<Database> {
  if (!reusable || reusable.busy) {
    const pglite = new PGlite({ loadDataDir: new Blob([readFileSync(templatePath)]) });
    const template = new Set((await pglite.query<{ name: string }>(OBJECTS)).rows.map((r) => r.name));
    // Only one database per worker is kept; a file that opens a second gets its own.
    if (reusable?.busy) return openDatabase({ pglite, migrate: false });
    reusable = { pglite, template, busy: false };
  } else {
    await reset(reusable.pglite, reusable.template);
  }
  const kept = reusable;
  kept.busy = true;
  const database = await openDatabase({ pglite: kept.pglite, migrate: false });
  return { ...database, close: async () => void (kept.busy = false) };
}

async function reset(pglite: PGlite, template: Set<string>): Promise<void> {
  await pglite.exec('rollback; reset all; unlisten *; select pg_advisory_unlock_all();').catch(() => {});
  const extra = (await pglite.query<{ name: string }>(OBJECTS)).rows.map((r) => r.name).filter((n) => !template.has(n));
  // Triggers before their functions and tables; cascade takes what hangs on the rest.
  for (const kind of ['trigger', 'function', 'sequence', 'table']) for (const name of extra.filter((n) => n.startsWith(`${kind} `))) await pglite.exec(`drop ${name} cascade`).catch(() => {});
  const tables = [...template].filter((n) => n.startsWith('table ')).map((n) => n.slice('table '.length));
  await pglite.exec(`truncate ${tables.join(', ')} restart identity cascade`);
}
