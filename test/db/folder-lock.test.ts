import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { FolderLockedError, folderHolder, LOCK_FILE, lockFolder, type Holder } from '../../src/db/folder-lock.js';

/**
 * The lock on a PGlite data folder (src/db/folder-lock.ts): one holder at a time, named in the
 * refusal; a lock whose process is gone is taken over, however it went (exited, killed, a pid
 * now used by another process, an earlier boot). The end-to-end cases (a second server, the CLI
 * beside a server) are in test/server/cli.test.ts.
 */

const dirs: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'es-lock-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const lockPath = (dir: string) => join(dir, LOCK_FILE);
const readLock = (dir: string) => JSON.parse(readFileSync(lockPath(dir), 'utf8')) as Holder;
const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};

/** A lock file as another process would have left it. */
function leave(dir: string, holder: Partial<Holder> & { pid: number }): Holder {
  const h: Holder = { command: 'server', hostname: 'elsewhere', startedAt: '2026-01-01T00:00:00.000Z', nonce: 'theirs', ...holder };
  writeFileSync(lockPath(dir), JSON.stringify(h));
  return h;
}

/** A live process that is not this one, until `stop`. */
async function otherProcess() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('spawn', resolve));
  return { pid: child.pid!, stop: () => new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGKILL'))) };
}

describe('the data folder lock', () => {
  it('one holder at a time: a second lock is refused naming the first, and is granted once it is released', () => {
    const dir = folder();
    const first = lockFolder(dir, 'server');
    expect(statSync(lockPath(dir)).mode & 0o777).toBe(0o600);
    expect(readLock(dir)).toMatchObject({ pid: process.pid, command: 'server', bootId, processStart: startOf(process.pid) });
    let refused: unknown;
    try {
      lockFolder(dir, 'token');
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(FolderLockedError);
    expect((refused as FolderLockedError).holder).toEqual(readLock(dir));
    expect((refused as Error).message).toBe(`the data folder ${dir} is in use by entity-sync server (pid ${process.pid} on ${first.holder.hostname}, since ${first.holder.startedAt})`);
    first.release();
    expect(existsSync(lockPath(dir))).toBe(false);
    first.release(); // twice is nothing
    const second = lockFolder(dir, 'token');
    expect(readLock(dir)).toMatchObject({ command: 'token', nonce: second.holder.nonce });
    second.release();
  });

  it('advertise adds the control address without letting go; folderHolder reads it', () => {
    const dir = folder();
    const lock = lockFolder(dir, 'server');
    lock.advertise({ port: 4321, secret: 's' });
    expect(readLock(dir)).toEqual({ ...lock.holder, control: { port: 4321, secret: 's' } });
    expect(statSync(lockPath(dir)).mode & 0o777).toBe(0o600);
    expect(folderHolder(dir)?.control).toEqual({ port: 4321, secret: 's' });
    expect(() => lockFolder(dir, 'token')).toThrow(FolderLockedError);
    lock.release();
    expect(folderHolder(dir)).toBeNull();
  });

  it('a live holder that is another process is respected', async () => {
    const dir = folder();
    const other = await otherProcess();
    try {
      const theirs = leave(dir, { pid: other.pid, bootId, processStart: startOf(other.pid) });
      expect(() => lockFolder(dir, 'server')).toThrow(`is in use by entity-sync server (pid ${other.pid} on elsewhere, since 2026-01-01T00:00:00.000Z)`);
      expect(readLock(dir)).toEqual(theirs);
    } finally {
      await other.stop();
    }
  });

  it.each([
    ['its process exited (a kill -9)', async (dir: string) => {
      const gone = await otherProcess();
      await gone.stop();
      leave(dir, { pid: gone.pid, bootId });
    }],
    ['its pid is ours but the lock is not (pid 1 in a restarted container)', async (dir: string) => void leave(dir, { pid: process.pid, bootId })],
    ['its pid now belongs to a process started later', async (dir: string) => {
      const other = await otherProcess();
      leave(dir, { pid: other.pid, bootId, processStart: '1' });
      return other.stop;
    }],
    ['it was written in an earlier boot', async (dir: string) => {
      const other = await otherProcess();
      leave(dir, { pid: other.pid, bootId: 'an-earlier-boot', processStart: startOf(other.pid) });
      return other.stop;
    }],
    ['it is not a lock file at all', async (dir: string) => void writeFileSync(lockPath(dir), 'garbage')],
  ])('a lock is taken over when %s', async (_, leaveStale) => {
    const dir = folder();
    const cleanup = await leaveStale(dir);
    try {
      const lock = lockFolder(dir, 'flush');
      expect(readLock(dir)).toEqual(lock.holder);
      expect(lock.holder).toMatchObject({ pid: process.pid, command: 'flush' });
      lock.release();
    } finally {
      await cleanup?.();
    }
  });

  it('a process that exits without releasing lets go of the lock', async () => {
    const dir = folder();
    const script = `import { lockFolder } from './src/db/folder-lock.ts'; lockFolder(${JSON.stringify(dir)}, 'token'); console.log('locked'); process.exit(3);`;
    const run = promisify(execFile);
    const failed = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../..', import.meta.url)) }).catch((e: { code: number; stdout: string }) => e);
    expect([(failed as { code: number }).code, (failed as { stdout: string }).stdout]).toEqual([3, 'locked\n']);
    expect(existsSync(lockPath(dir))).toBe(false);
  });

  it('processes that find the same stale lock at once: exactly one takes it, the others are refused naming it', async () => {
    const dir = folder();
    const gone = await otherProcess();
    await gone.stop();
    leave(dir, { pid: gone.pid, bootId });
    // Each tries once, says how it went, and holds on until its stdin closes.
    const script = `import { lockFolder } from './src/db/folder-lock.ts';
      try { lockFolder(${JSON.stringify(dir)}, 'token'); console.log('won'); } catch (e) { console.log(e.holder ? 'refused ' + e.holder.pid : 'refused'); }
      process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`;
    const children = Array.from({ length: 3 }, () =>
      spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    try {
      const said = await Promise.all(children.map((c) => new Promise<string>((resolve) => c.stdout.once('data', (b) => resolve(String(b).trim())))));
      const winner = children[said.indexOf('won')]?.pid;
      expect(said.filter((s) => s === 'won')).toHaveLength(1);
      expect(said.filter((s) => s !== 'won')).toEqual([`refused ${winner}`, `refused ${winner}`]);
      expect(readLock(dir).pid).toBe(winner);
    } finally {
      await Promise.all(children.map((c) => new Promise((resolve) => (c.once('exit', resolve), c.stdin.end()))));
    }
    expect(existsSync(lockPath(dir))).toBe(false);
  });
});
