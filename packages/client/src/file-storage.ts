import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StorageAdapter } from './storage.js';

/**
 * NODE ONLY (imports node:fs): a StorageAdapter keeping one JSON file per key in `dir`.
 * Each write goes to a temporary file first and is renamed over the old one, so a crash
 * leaves the previous document or the new one, never half of one. Import it as
 * `@entity-sync/client/file-storage`; the portable client never imports it.
 */
export function createFileStorage(dir: string): StorageAdapter {
  const file = (key: string) => join(dir, `${encodeURIComponent(key)}.json`);
  let made: Promise<unknown> | null = null;
  let seq = 0;
  return {
    get: async (key) => {
      try {
        return JSON.parse(await readFile(file(key), 'utf8'));
      } catch (error) {
        if ((error as { code?: string }).code === 'ENOENT') return null;
        throw error;
      }
    },
    set: async (key, value) => {
      made ??= mkdir(dir, { recursive: true });
      await made;
      const tmp = `${file(key)}.${process.pid}.${++seq}.tmp`;
      await writeFile(tmp, JSON.stringify(value), { flush: true });
      await rename(tmp, file(key));
    },
  };
}
