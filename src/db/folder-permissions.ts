import { chmodSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A PGlite data folder is the database: its WAL and tables hold every entity in clear, and a byte
 * changed in `pg_control` stops the service from starting. PGlite writes the files of a new folder
 * with mode 0666 and its folders 0755 whatever the umask (issue 17: another local user read a
 * confidential entity from the WAL and broke the folder by overwriting 8 KB), so the folder is
 * made owner-only here: folders 0700, files 0600 (what Postgres itself insists on for its data
 * directory). Files Postgres creates later come with its own 0600.
 */

/** What a walk changed: entries it made owner-only, and entries it could not (not owned by this user). */
export interface Tightened {
  tightened: number;
  untouchable: number;
}

/** Takes group and other bits off `dir` and everything under it (symlinks are not followed). */
export function tightenFolder(dir: string): Tightened {
  const result: Tightened = { tightened: 0, untouchable: 0 };
  const visit = (path: string) => {
    let stat;
    try {
      stat = lstatSync(path);
    } catch (error) {
      // Gone meanwhile (a temporary file): nothing to protect.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    if (stat.isSymbolicLink()) return;
    const mode = stat.mode & 0o7777;
    if (mode & 0o077) {
      try {
        chmodSync(path, mode & ~0o077);
        result.tightened += 1;
      } catch (error) {
        // Another user's file (a volume prepared by root): counted and reported, not a reason to stop.
        if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
        result.untouchable += 1;
      }
    }
    if (stat.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return result;
}
