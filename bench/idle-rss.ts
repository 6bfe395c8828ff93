/**
 * `npm run bench:rss`: what the started service costs while it does nothing. Runs `npm start`
 * (or the command given after `--`) with a fresh PGlite folder, or on a fresh database of the
 * Postgres named by RSS_DATABASE_URL, waits for its "listening" line, lets it idle RSS_IDLE_SECONDS
 * (default 15), and prints the resident memory (VmRSS from /proc, Linux only) of every process it
 * runs as, and their sum without npm's own process (what `node dist/server/main.js` under a
 * supervisor would cost); on PGlite for a first start on a new folder and for a restart on it, on
 * Postgres with the memory of the service's connections on the database server (same machine).
 * The README's "What it costs idle" quotes it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';

const env = process.env;
const idleSeconds = Number(env.RSS_IDLE_SECONDS ?? 15);
const dashAt = process.argv.indexOf('--');
const command = dashAt >= 0 ? process.argv.slice(dashAt + 1) : ['npm', 'start'];

interface Proc {
  pid: number;
  ppid: number;
  rssKiB: number;
  argv: string;
}

/** Every process on the machine with its parent, resident memory and command line. */
function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const rss = /VmRSS:\s+(\d+) kB/.exec(status);
      const ppid = /PPid:\s+(\d+)/.exec(status);
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      out.push({ pid: Number(name), ppid: Number(ppid?.[1] ?? 0), rssKiB: Number(rss?.[1] ?? 0), argv });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function tree(root: number): Proc[] {
  const all = processes();
  const found: Proc[] = [];
  const walk = (pid: number) => {
    for (const p of all.filter((q) => q.ppid === pid)) {
      found.push(p);
      walk(p.pid);
    }
  };
  const self = all.find((p) => p.pid === root);
  if (self) found.push(self);
  walk(root);
  return found;
}

interface Measured {
  processes: Proc[];
  health: number;
  /** On Postgres: the service's connections (pg_stat_activity) and their backends' RSS. */
  backends?: { count: number; rssKiB: number };
}

/** Starts the command, waits for "listening", idles, and reads the memory of its process tree. */
async function measureOnce(serviceEnv: Record<string, string>, admin: postgres.Sql | undefined, database: string | undefined): Promise<Measured> {
  const child = spawn(command[0]!, command.slice(1), {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...env, PORT: '0', FLUSH_INTERVAL_SECONDS: env.FLUSH_INTERVAL_SECONDS ?? '30', ...serviceEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
    // Its own process group: npm does not pass a signal on to the node it started.
    detached: true,
  });
  const exited = new Promise((r) => child.once('exit', r));
  let output = '';
  child.stdout.on('data', (b) => (output += b));
  try {
    const start = Date.now();
    while (!/listening on (\S+)/.test(output)) {
      if (child.exitCode !== null) throw new Error(`the service exited:\n${output}`);
      if (Date.now() - start > 120_000) throw new Error(`no "listening" line in 120 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = /listening on (\S+)/.exec(output)![1]!;
    const health = (await fetch(url.replace(/\/graphql$/, '/health'))).status;
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const procs = tree(child.pid!);
    let backends: Measured['backends'];
    if (admin && database) {
      const pids = (await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${database}`).map((r) => r.pid);
      const all = processes();
      backends = { count: pids.length, rssKiB: all.filter((p) => pids.includes(p.pid)).reduce((s, p) => s + p.rssKiB, 0) };
    }
    return { processes: procs, health, ...(backends ? { backends } : {}) };
  } finally {
    const group = tree(child.pid!);
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
    for (let i = 0; i < 100 && processes().some((p) => group.some((g) => g.pid === p.pid)); i++) await new Promise((r) => setTimeout(r, 100));
  }
}

const mib = (kib: number) => (kib / 1024).toFixed(0);

function report(title: string, m: Measured): void {
  console.log(`${command.join(' ')} ${title}, idle ${idleSeconds} s after start (/health ${m.health}):`);
  for (const p of m.processes) console.log(`  ${mib(p.rssKiB).padStart(5)} MiB  pid ${p.pid}  ${p.argv.slice(0, 110)}`);
  const service = m.processes.filter((p) => !/(^|\/)npm(-cli\.js)?( |$)|npm-cli\.js/.test(p.argv) && !/^(\/bin\/)?sh -c/.test(p.argv));
  console.log(`  service without npm and its shell: ${mib(service.reduce((s, p) => s + p.rssKiB, 0))} MiB in ${service.length} process(es)`);
  if (m.backends) console.log(`  its Postgres connections: ${m.backends.count}, their backends ${mib(m.backends.rssKiB)} MiB on the database server`);
}

async function main(): Promise<void> {
  const base = env.RSS_DATABASE_URL;
  if (base) {
    const name = `es_rss_${randomBytes(4).toString('hex')}`;
    const admin = postgres(base, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    const url = new URL(base);
    url.pathname = `/${name}`;
    try {
      report('on Postgres', await measureOnce({ DATABASE_URL: url.toString() }, admin, name));
    } finally {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
    return;
  }
  // A new folder (initdb and every migration run on the first start), then a restart on it.
  const dataDir = mkdtempSync(join(tmpdir(), 'es-rss-'));
  try {
    report('on PGlite, first start on a new folder', await measureOnce({ DATA_DIR: dataDir, DATABASE_URL: '' }, undefined, undefined));
    report('on PGlite, restarted on that folder', await measureOnce({ DATA_DIR: dataDir, DATABASE_URL: '' }, undefined, undefined));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
