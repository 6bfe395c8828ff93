import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../../src/db/client.js';

/**
 * On PGlite, initdb plus migrations cost seconds per test file. Do them once here and dump
 * the data folder; each file's fresh database loads that dump (PGlite's loadDataDir).
 */
export const templatePath = fileURLToPath(new URL('../../.tmp/pglite-template.tar', import.meta.url));

export default async function setup(): Promise<void> {
  if (process.env.DATABASE_URL) return;
  const database = await openDatabase({});
  const dump = await database.pglite!.dumpDataDir('none');
  mkdirSync(fileURLToPath(new URL('../../.tmp', import.meta.url)), { recursive: true });
  writeFileSync(templatePath, Buffer.from(await dump.arrayBuffer()));
  await database.close();
}
