import { describe, expect, it } from 'vitest';
import { DEFAULT_PGLITE_SHARED_BUFFERS, openDatabase } from '../../src/db/client.js';
import { runMain } from '../helpers/live.js';

/**
 * PGlite's buffer cache is part of what the embedded service costs idle (issue 18 item 5): 32MB
 * by default instead of Postgres's 128MB, PGLITE_SHARED_BUFFERS to change it, passed on PGlite's
 * command line so the data folder's own postgresql.conf is left as initdb wrote it.
 */

async function sharedBuffers(opts: { sharedBuffers?: string }): Promise<{ setting: string; conf: string }> {
  const database = await openDatabase({ dataDir: 'memory://', migrate: false, ...opts });
  try {
    const pglite = database.pglite!;
    const setting = (await pglite.query<{ shared_buffers: string }>('show shared_buffers')).rows[0]!.shared_buffers;
    const conf = (await pglite.query<{ setting: string }>("select setting from pg_file_settings where name = 'shared_buffers'")).rows[0]?.setting ?? '';
    return { setting, conf };
  } finally {
    await database.close();
  }
}

describe("PGlite's shared_buffers", () => {
  it('is 32MB by default, and a given size replaces it; postgresql.conf keeps its 128MB', async () => {
    expect(DEFAULT_PGLITE_SHARED_BUFFERS).toBe('32MB');
    expect(await sharedBuffers({})).toEqual({ setting: '32MB', conf: '128MB' });
    expect(await sharedBuffers({ sharedBuffers: '16MB' })).toEqual({ setting: '16MB', conf: '128MB' });
  });

  it('PGLITE_SHARED_BUFFERS that is not a size stops the start with a sentence', async () => {
    for (const value of ['lots', '32']) {
      expect(await runMain([], { DATABASE_URL: '', DATA_DIR: 'memory://', PGLITE_SHARED_BUFFERS: value })).toMatchObject({
        code: 2,
        stderr: `PGLITE_SHARED_BUFFERS takes a size like 32MB or 1GB, not "${value}"\n`,
      });
    }
  });
});
