import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder of entity-sync's package.json, beside which the migrations (drizzle/) and the built
 * dashboard (dist/dashboard) are. Found by walking up from this file, because the code runs from
 * two depths: src/db/ under tsx (development, tests) and dist/server/db/ under node (npm start).
 */
export const PACKAGE_ROOT = packageRoot(dirname(fileURLToPath(import.meta.url)));

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`entity-sync cannot find its package.json above ${from}`);
  }
}
