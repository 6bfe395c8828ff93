import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Ownership of a PGlite data folder (DESIGN "Storage and scale"): PGlite is Postgres in one
 * process without Postgres's own postmaster.pid check, so two processes on one folder both write
 * it and corrupt it (the CLI beside a running server lost tokens and crashed with `Aborted()`).
 * Whoever opens a folder first creates `entity-sync.lock` in it, naming itself; anyone else finds
 * it and refuses, or (the CLI) talks to the holder through the control address the lock carries.
 *
 * Why a pid lock file and not proper-lockfile: that library decides staleness by an mtime its
 * owner refreshes on a timer, and PGlite runs Postgres in WebAssembly on the main thread, so a
 * long statement stalls the timer and a live owner looks stale: the takeover it then allows is
 * the double writer this exists to prevent (ipfs hit the same, js-ipfs-repo#182), and after a
 * crash a supervisor's restart is refused until the threshold passes. It also records no holder
 * to name. A PGlite folder lives on a local disk, where "is that process alive" is exact: the pid,
 * checked against the process's start time (Linux /proc) so a reused pid is not taken for it.
 */

export const LOCK_FILE = 'entity-sync.lock';

/** Where a holder answers operator commands (loopback port and the secret it wants). */
export interface ControlAddress {
  port: number;
  secret: string;
}

/** What the lock file says about its holder. */
export interface Holder {
  pid: number;
  /** What holds it: "server", "token", "flush". */
  command: string;
  hostname: string;
  startedAt: string;
  /** Linux: this boot, and the process's start in clock ticks since boot (a pid is reused; this pair is not). */
  bootId?: string;
  processStart?: string;
  /** Unique per lock taken: tells our own lock from a lock a previous process of the same pid left. */
  nonce: string;
  control?: ControlAddress;
}

export class FolderLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: Holder | null,
  ) {
    super(
      holder
        ? `the data folder ${dir} is in use by entity-sync ${holder.command} (pid ${holder.pid} on ${holder.hostname}, since ${holder.startedAt})`
        : `the data folder ${dir} is being locked by another process right now`,
    );
    this.name = 'FolderLockedError';
  }
}

export interface FolderLock {
  readonly dir: string;
  readonly holder: Holder;
  /** Adds where this process answers operator commands; the lock stays held throughout (atomic replace). */
  advertise(control: ControlAddress): void;
  /**
   * Stops naming a control address (the lock stays held): done before the control listener
   * closes, so that no CLI is sent to a port that another process may bind next.
   */
  withdraw(): void;
  /** Removes the lock if it is still ours. Idempotent; also runs on process exit. */
  release(): void;
}

/** Nonces of the locks this process holds: a lock naming our pid is ours only if it is listed here. */
const held = new Set<string>();

function readSafely(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function parse(raw: string): Holder | null {
  try {
    const h = JSON.parse(raw) as Holder;
    return typeof h.pid === 'number' && typeof h.nonce === 'string' ? h : null;
  } catch {
    return null;
  }
}

const bootId = readSafely('/proc/sys/kernel/random/boot_id')?.trim();

/** Field 22 of /proc/PID/stat (start time); null: no such process; undefined: this system cannot tell. */
function processStart(pid: number): string | null | undefined {
  if (!bootId) return undefined;
  const stat = readSafely(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function isAlive(h: Holder): boolean {
  // Written in an earlier boot: whatever held it is gone (a PGlite folder lives on a local disk).
  if (h.bootId && bootId && h.bootId !== bootId) return false;
  // Our pid: ours if this process took it, else a previous process's that had our pid (pid 1 in a container).
  if (h.pid === process.pid) return held.has(h.nonce);
  if (h.processStart) {
    const start = processStart(h.pid);
    if (start !== undefined) return start === h.processStart;
  }
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Writes `content` to a private temporary file beside `path`; returns its name. */
function writeTemp(path: string, content: string): string {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, content, { mode: 0o600, flag: 'wx' });
  return temp;
}

/**
 * Removes a stale lock, unless someone replaced it meanwhile. Breakers take turns through a
 * second lock, so two processes that both found the same stale lock cannot remove each other's
 * fresh one. A break lock older than 10 s belongs to a breaker that died in those few lines.
 */
function breakStale(path: string, staleRaw: string): void {
  const breaker = `${path}.break`;
  try {
    writeFileSync(breaker, String(process.pid), { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    try {
      if (Date.now() - statSync(breaker).mtimeMs > 10_000) unlinkSync(breaker);
    } catch {
      // Gone already: its breaker finished.
    }
    pause(20);
    return;
  }
  try {
    if (readSafely(path) === staleRaw) unlinkSync(path);
  } finally {
    unlinkSync(breaker);
  }
}

/** The folder's holder as its lock file names it, or null when none holds it (or the holder is gone). */
export function folderHolder(dir: string): Holder | null {
  const raw = readSafely(join(dir, LOCK_FILE));
  const h = raw === null ? null : parse(raw);
  return h && isAlive(h) ? h : null;
}

/** Takes the folder (creating it if need be) for `command`, or throws FolderLockedError naming the holder. */
export function lockFolder(dir: string, command: string): FolderLock {
  // Owner-only from the start (folder-permissions.ts): what PGlite writes into it is the database.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, LOCK_FILE);
  const start = processStart(process.pid);
  const me: Holder = {
    pid: process.pid,
    command,
    hostname: hostname(),
    startedAt: new Date().toISOString(),
    ...(bootId ? { bootId } : {}),
    ...(start ? { processStart: start } : {}),
    nonce: randomBytes(12).toString('hex'),
  };
  let current = me;
  for (let attempt = 0; ; attempt++) {
    // Written in full first, then linked into place: the lock appears with its content or not at all.
    const temp = writeTemp(path, JSON.stringify(me));
    try {
      linkSync(temp, path);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      unlinkSync(temp);
    }
    const raw = readSafely(path);
    if (raw === null) continue; // released meanwhile
    const holder = parse(raw);
    if (holder && isAlive(holder)) throw new FolderLockedError(resolve(dir), holder);
    if (attempt > 100) throw new FolderLockedError(resolve(dir), null);
    breakStale(path, raw);
  }
  held.add(me.nonce);
  const ours = () => parse(readSafely(path) ?? '')?.nonce === me.nonce;
  const release = () => {
    if (!held.delete(me.nonce)) return;
    process.off('exit', release);
    if (ours()) unlinkSync(path);
  };
  // A process that exits without closing (an uncaught error, process.exit) lets go too; after a
  // kill -9 the next process finds the pid dead.
  process.on('exit', release);
  return {
    dir: resolve(dir),
    get holder() {
      return current;
    },
    advertise(control) {
      if (!held.has(me.nonce) || !ours()) throw new Error(`the lock on ${dir} is no longer this process's`);
      current = { ...me, control };
      renameSync(writeTemp(path, JSON.stringify(current)), path);
    },
    withdraw() {
      if (!held.has(me.nonce) || !ours() || !current.control) return;
      current = me;
      renameSync(writeTemp(path, JSON.stringify(current)), path);
    },
    release,
  };
}
