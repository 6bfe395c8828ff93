import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../../src/db/client.js';

/**
 * On PGlite, initdb plus migrations cost seconds per database. Do them once here: a dump of the
 * migrated data folder, which each file's fresh in-process database loads (PGlite's loadDataDir),
 * and the same migrated folder on disk, which a spawned service's fresh data folder is copied
 * from (test/helpers/live.ts). Spawned PGlite services run on Postgres runs too.
 */
export const templatePath = fileURLToPath(new URL('../../.tmp/pglite-template.tar', import.meta.url));
export const templateFolder = fileURLToPath(new URL('../../.tmp/pglite-template-folder', import.meta.url));

export default async function setup(): Promise<void> {
  mkdirSync(fileURLToPath(new URL('../../.tmp', import.meta.url)), { recursive: true });
  // Built beside and renamed into place, each whole: another vitest run on this checkout (a
  // browser run, a developer's second terminal) may be copying the current ones meanwhile.
  const building = `${templateFolder}.${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const folder = await openDatabase({ dataDir: building });
  await folder.close();
  if (existsSync(`${building}/entity-sync.lock`)) throw new Error('the template folder kept its lock');
  const old = `${templateFolder}.old.${process.pid}`;
  if (existsSync(templateFolder)) renameSync(templateFolder, old);
  renameSync(building, templateFolder);
  rmSync(old, { recursive: true, force: true });
  if (process.env.DATABASE_URL) return;
  const database = await openDatabase({});
  const dump = await database.pglite!.dumpDataDir('none');
  writeFileSync(`${templatePath}.${process.pid}`, Buffer.from(await dump.arrayBuffer()));
  renameSync(`${templatePath}.${process.pid}`, templatePath);
  await database.close();
}
