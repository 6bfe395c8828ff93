import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seeded, waitUntil, within } from '../helpers/live.js';

/**
 * Issue 18 item 5, "production runs compiled JavaScript": `npm start` runs node on the JavaScript
 * that `npm install` builds into dist/server (here rebuilt from this source first, as prepare
 * does), not TypeScript through tsx; it prints its URL and answers /health; the operator commands
 * run from the built files too. Linux: the processes are read from /proc.
 */

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
let dir = '';
let cleanup = () => {};
let npm: ChildProcess;
let output = '';
let url = '';

interface Proc {
  pid: number;
  argv: string[];
  exe: string;
}

/** The process `pid` and all its descendants, with their command lines and executables. */
function processTree(pid: number): Proc[] {
  const parents = new Map<number, number[]>();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const ppid = Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${name}/status`, 'utf8'))![1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: Proc[] = [];
  const walk = (p: number) => {
    try {
      out.push({ pid: p, argv: readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean), exe: readlinkSync(`/proc/${p}/exe`) });
    } catch {
      return;
    }
    for (const child of parents.get(p) ?? []) walk(child);
  };
  walk(pid);
  return out;
}

/** The environment of the service and of the commands run beside it: its own PGlite folder. */
const serviceEnv = () => ({ ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, DATABASE_URL: '', GRAPHIQL: 'false', FLUSH_INTERVAL_SECONDS: '0' });

beforeAll(async () => {
  // What `npm install` does through prepare, so the test runs this source's build.
  await run('npm', ['run', 'build:server'], { cwd: root });
  dir = mkdtempSync(join(tmpdir(), 'es-npm-start-'));
  // A copy of the migrated template folder: the start costs no initdb (seeded() in live.ts).
  cleanup = seeded({ DATA_DIR: dir }).cleanup;
  // Its own process group, so that the whole tree (npm, its shell, node) can be stopped at once.
  npm = spawn('npm', ['start'], { cwd: root, env: serviceEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  npm.stdout!.on('data', (b) => (output += b));
  npm.stderr!.on('data', (b) => (output += b));
  const line = await waitUntil(() => npm.exitCode !== null || /entity-sync listening on (http:\/\/\S+)/.exec(output), 'the "listening on" line', 60_000, 50).catch((e: Error) => {
    throw new Error(`${e.message}\n${output}`);
  });
  if (line === true) throw new Error(`npm start exited before listening:\n${output}`);
  url = line[1]!;
}, 240_000);

afterAll(async () => {
  if (npm?.pid && npm.exitCode === null) {
    const exited = new Promise((r) => npm.once('exit', r));
    process.kill(-npm.pid, 'SIGTERM');
    await within(exited, 15_000, 'npm start to stop').catch(() => process.kill(-npm.pid!, 'SIGKILL'));
  }
  // The service, not npm, holds the folder: wait until no process of the group is left before removing it.
  await waitUntil(() => processTree(npm.pid!).length === 0, 'the service process to exit', 15_000).catch(() => {});
  cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('npm start', () => {
  it('prints its URL and the first admin token, and answers /health', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
    expect(output).toContain(`entity-sync listening on ${url} (PGlite in ${dir})`);
    expect(output).toMatch(/admin token \(shown once[^\n]*\n(est_[\w-]+)/);
    const res = await fetch(url.replace(/\/graphql$/, '/health'));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('finds what ships beside the built files: the migrations ran, and the built dashboard is served', async () => {
    // The first admin token (printed above) is a row of a migrated table; the dashboard's bundle comes from dist/dashboard.
    const page = await fetch(url.replace(/\/graphql$/, '/'));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<title>entity-sync dashboard</title>');
    const script = /<script type="module" crossorigin src="(\/assets\/[^"]+\.js)"/.exec(html);
    expect(script, html).not.toBeNull();
    expect((await fetch(new URL(script![1]!, url))).status).toBe(200);
  });

  it('runs node on the built dist/server/main.js in production mode: one process, no tsx, no loader', () => {
    const tree = processTree(npm.pid!);
    const node = realpathSync(process.execPath);
    // npm (a node process too, titled "npm start") and the shell it runs the script in, then the service.
    expect(tree.filter((p) => !p.argv[0]!.startsWith('npm') && realpathSync(p.exe) !== node).map((p) => p.argv[0])).toEqual(['sh']);
    const services = tree.filter((p) => !p.argv[0]!.startsWith('npm') && realpathSync(p.exe) === node);
    expect(services.map((p) => p.argv)).toEqual([['node', '--expose-gc', 'dist/server/main.js']]);
    // In production mode: graphql-js skips its development-only checks (a cost on every field of every answer).
    const environ = readFileSync(`/proc/${services[0]!.pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain('NODE_ENV=production');
    expect(tree.flatMap((p) => p.argv).filter((a) => /tsx|--import|--require|--loader/.test(a))).toEqual([]);
  });

  it('npm run token and npm run flush run the built files, through the running service', async () => {
    const token = await run('npm', ['run', 'token', '--', 'list'], { cwd: root, env: serviceEnv() });
    expect(token.stdout).toContain('> node dist/server/main.js token list');
    expect(token.stdout).toMatch(/^[0-9a-f-]{36}\tadmin\t[^\n]*\t\*\t\*\tactive$/m);
    const flush = await run('npm', ['run', 'flush', '--', '--older-than', '0'], { cwd: root, env: serviceEnv() });
    expect(flush.stdout).toContain('> node dist/server/main.js flush --older-than 0');
    expect(flush.stdout).toContain('forced 0 held change(s), released 0 successor(s)');
  });
});
