import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backend } from '../helpers/database.js';
import { runMain, spawnService, waitUntil, type Service } from '../helpers/live.js';

/**
 * Issue 17 item 10: the control port of a PGlite folder's owner can be impersonated. During a
 * shutdown the lock still named the port after its listener closed; another local user bound it,
 * received the control secret from `npm run token -- revoke`, and answered like the service, so
 * the CLI printed "revoked" though nothing was. Now the listener must prove it knows the secret
 * before the CLI sends anything, the secret never crosses the wire, and the lock stops naming the
 * port before the listener closes. Real processes: the CLI is `node src/main.ts token …`.
 */

const LOCK = 'entity-sync.lock';

interface Received {
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A listener that answers every request like the service of before did: a 200 saying it revoked the token. */
async function impostor(tokenId: string): Promise<{ server: Server; port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      // To a challenge, something shaped like the service's answer (it cannot compute the proof).
      if (req.url === '/challenge') res.end(JSON.stringify({ serverNonce: randomBytes(32).toString('base64url'), proof: randomBytes(32).toString('base64url') }));
      else res.end(JSON.stringify({ ok: true, lines: [`revoked token ${tokenId}`], revoked: tokenId }));
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  return { server, port, received };
}

/** This process's start time (field 22 of /proc/self/stat), as a lock names its holder's. */
function ownStart(): string {
  const stat = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

describe.runIf(backend === 'pglite')('the control port is authenticated', () => {
  const dirs: string[] = [];
  const servers: Server[] = [];
  let service: Service | undefined;
  afterAll(async () => {
    await service?.stop().catch(() => {});
    for (const s of servers) s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('a listener on the port the lock names that cannot prove the secret gets neither the secret nor the command, and the CLI does not say "revoked"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'es-impostor-'));
    dirs.push(dir);
    const tokenId = randomUUID();
    const fake = await impostor(tokenId);
    servers.push(fake.server);
    const secret = randomBytes(32).toString('base64url');
    // The lock as the real owner wrote it (a live holder: this test process), naming the port the impostor now holds.
    writeFileSync(
      join(dir, LOCK),
      JSON.stringify({
        pid: process.pid,
        command: 'server',
        hostname: 'here',
        startedAt: new Date().toISOString(),
        bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
        processStart: ownStart(),
        nonce: 'the-real-owner',
        control: { port: fake.port, secret },
      }),
      { mode: 0o600 },
    );

    const out = await runMain(['token', 'revoke', tokenId], { DATA_DIR: dir, DATABASE_URL: '' });
    expect(out.stdout).not.toContain('revoked');
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`whatever answers on the control port 127.0.0.1:${fake.port} named by the data folder's lock did not prove it is the service that holds the folder (its proof is wrong); nothing was sent to it`);
    // It was asked to prove itself, and was sent nothing else: no secret, no command.
    expect(fake.received.map((r) => r.url)).toEqual(['/challenge']);
    for (const r of fake.received) {
      expect(JSON.stringify(r.headers)).not.toContain(secret);
      expect(r.body).not.toContain(secret);
      expect(r.body).not.toContain(tokenId);
    }
  }, 120_000);

  it('beside the real service the same CLI works, and at shutdown the lock stops naming the control port before the port closes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'es-control-'));
    dirs.push(dir);
    const env = { DATA_DIR: dir, DATABASE_URL: '', SHUTDOWN_TIMEOUT_SECONDS: '8' };
    service = await spawnService(env);
    const lock = () => JSON.parse(readFileSync(join(dir, LOCK), 'utf8')) as { pid: number; control?: { port: number } };
    const port = lock().control!.port;

    // The real service proves itself: a token made and revoked through it, confirmed.
    const made = await runMain(['token', 'create', '--role', 'collector'], env);
    expect(made.code, made.stderr).toBe(0);
    const id = /^created collector token ([0-9a-f-]{36})/.exec(made.stdout)![1]!;
    const revoked = await runMain(['token', 'revoke', id], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toBe(`revoked token ${id}\n`);

    // A request whose body never ends keeps the shutdown draining (and the folder held) for seconds.
    const slow = connect(Number(new URL(service.url).port), '127.0.0.1');
    await new Promise((resolve) => slow.once('connect', resolve));
    slow.write('POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"query":');
    slow.on('error', () => {});
    await new Promise((r) => setTimeout(r, 300));
    process.kill(service.pid, 'SIGTERM');
    // Once the control port refuses connections, the lock (still held) names no port.
    await waitUntil(
      () =>
        new Promise<boolean>((resolve) => {
          const probe = connect(port, '127.0.0.1');
          probe.once('connect', () => (probe.destroy(), resolve(false)));
          probe.once('error', () => resolve(true));
        }),
      'the control port to close',
      10_000,
      20,
    );
    const during = lock();
    expect(during.pid).toBe(service.pid);
    expect(during.control).toBeUndefined();
    slow.destroy();
    await service.stop();
    service = undefined;
  }, 180_000);
});
