import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backend } from '../helpers/database.js';
import { waitUntil, within } from '../helpers/live.js';

/**
 * Issue 11 "Shutdown that always ends": a service whose stdout and stderr pipes have closed (a
 * log collector died, a supervisor went away), or whose reader stopped reading, must still exit
 * within SHUTDOWN_TIMEOUT_SECONDS of SIGTERM. pino's sonic-boom flushed its buffer at exit and
 * retried every failed write (EPIPE, EAGAIN) every 100 ms, for ever.
 */

const SHUTDOWN_TIMEOUT_SECONDS = 2;

const env = { DATABASE_URL: '', DATA_DIR: 'memory://' };

// The log pipes are the same whatever the database: the PGlite run covers them.
describe.runIf(backend === 'pglite')('SIGTERM whatever happened to the log pipes', () => {
  it.each([
    ['closed', 'info'],
    ['closed', 'debug'],
    ['full (never read)', 'debug'],
  ] as const)(`exits within SHUTDOWN_TIMEOUT_SECONDS: pipes %s, LOG_LEVEL=%s`, async (pipes, level) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', ANONYMOUS_ROLE: 'admin', FLUSH_INTERVAL_SECONDS: '0', LOG_LEVEL: level, SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_SECONDS) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      let output = '';
      child.stdout.on('data', (b) => (output += b));
      child.stderr.on('data', (b) => (output += b));
      const url = (await waitUntil(() => /listening on (http:\/\/\S+)/.exec(output)?.[1], 'the "listening on" line', 60_000, 50)) as string;
      // Requests that log at debug, and a live subscription the shutdown has to end and log.
      expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ datasets { name } }"}' })).status).toBe(200);
      if (pipes === 'closed') {
        // Our ends of both pipes go: every write of the child from now on fails with EPIPE.
        child.stdout.destroy();
        child.stderr.destroy();
      } else {
        // Nobody reads any more: once the pipe's 64 KiB are full, every write would block.
        child.stdout.pause();
        child.stderr.pause();
      }
      // It keeps serving (a failed log write is no reason to stop), and logs far more than a pipe holds…
      const requests = pipes === 'closed' ? 1 : 300;
      for (let i = 0; i < requests; i++) {
        expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ nope }"}' })).status).toBe(200);
      }
      const sent = Date.now();
      child.kill('SIGTERM');
      // …and stops within the timeout (plus the time a process needs to start exiting).
      const { code, signal } = await within(exited, (SHUTDOWN_TIMEOUT_SECONDS + 3) * 1000, 'the process to exit after SIGTERM');
      expect(Date.now() - sent).toBeLessThan((SHUTDOWN_TIMEOUT_SECONDS + 3) * 1000);
      expect({ code, signal }).toEqual({ code: 0, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});
