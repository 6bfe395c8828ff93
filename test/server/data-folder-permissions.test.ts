import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backend } from '../helpers/database.js';
import { spawnService, type Service } from '../helpers/live.js';

/**
 * Issue 17 item 3: a PGlite data folder is the database in clear (the WAL holds every entity), so
 * no other local user may read or write it: folders 0700, files 0600, on a first start and after a
 * restart of a folder an earlier release left 0755/0666 (which the service tightens and logs).
 * Real processes (`node src/main.ts`), real files. PGlite only: Postgres keeps its own files.
 */

/** Every entry under `dir` (itself included) with its permission bits, symlinks skipped. */
function modes(dir: string): Map<string, number> {
  const found = new Map<string, number>();
  const visit = (path: string) => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return;
    found.set(path, stat.mode & 0o777);
    if (stat.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return found;
}

/** Entries another user could reach: any group or other bit, as `path mode` lines (empty: none). */
const open = (dir: string) => [...modes(dir)].filter(([, m]) => m & 0o077).map(([p, m]) => `${p.slice(dir.length) || '/'} ${m.toString(8)}`);

describe.runIf(backend === 'pglite')('the PGlite data folder is owner-only', () => {
  const parent = mkdtempSync(join(tmpdir(), 'es-perm-'));
  // Not there yet: the service creates it, and PGlite runs initdb in it (no template copy).
  const dir = join(parent, 'data');
  const env = { DATA_DIR: dir, DATABASE_URL: '', ANONYMOUS_ROLE: '' };
  let service: Service | undefined;
  afterAll(async () => {
    await service?.stop();
    rmSync(parent, { recursive: true, force: true });
  });

  it('on a first start, and a folder left 0755/0666 is tightened at the next start with one log line', async () => {
    service = await spawnService(env, 120_000);
    const first = modes(dir);
    expect(first.get(dir)).toBe(0o700);
    // The WAL, pg_control and the catalogs are there (it is a real folder), all owner-only.
    expect([...first.keys()].some((p) => p.includes('pg_wal'))).toBe(true);
    expect([...first.keys()].filter((p) => lstatSync(p).isFile()).length).toBeGreaterThan(900);
    expect(open(dir)).toEqual([]);
    for (const [path, mode] of first) expect([path, mode]).toEqual([path, lstatSync(path).isDirectory() ? 0o700 : 0o600]);
    // A first start has nothing to report.
    expect(service.output()).not.toContain('dataFolderTightened');
    expect(await service.stop()).toBe(0);
    service = undefined;

    // The folder as an earlier release left it: folders 0755, files 0666.
    let loosened = 0;
    for (const [path] of modes(dir)) {
      chmodSync(path, lstatSync(path).isDirectory() ? 0o755 : 0o666);
      loosened += 1;
    }
    expect(open(dir).length).toBe(loosened);

    service = await spawnService(env, 120_000);
    expect(open(dir)).toEqual([]);
    expect(modes(dir).get(dir)).toBe(0o700);
    const lines = service
      .output()
      .split('\n')
      .filter((l) => l.includes('"dataFolderTightened"'))
      .map((l) => JSON.parse(l) as { tightened: number; msg: string; level: number });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ tightened: loosened, level: 40 });
    expect(lines[0]!.msg).toBe(`the data folder let other users read or write ${loosened} of its files and folders: made owner-only (folders 0700, files 0600)`);
    // The service works on it: it serves and stops cleanly.
    expect((await fetch(service.url.replace('/graphql', '/health'))).status).toBe(200);
    expect(await service.stop()).toBe(0);
    service = undefined;
  }, 300_000);
});
