import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { backend } from '../helpers/database.js';
import { spawnService, waitUntil, within } from '../helpers/live.js';

/**
 * Issue 17 item 9, slowloris: 1,000 unauthenticated sockets that never finished their headers made
 * /health fail for 75 s. Connections are now capped per remote address and in total (at the total
 * cap a newcomer takes an idle connection's place), headers must come within seconds, and /health
 * keeps answering through the flood (within 10 s here, a bound for a loaded 2-core machine, not a
 * speed claim: the flood of the issue kept it down for 75 s). Real sockets from several loopback
 * addresses (127.0.0.x).
 */

// A long headers timeout here, so that what the caps do is seen apart from it (the process test below times headers out).
const LIMITS = { maxConnections: 200, maxPerAddress: 30, headersTimeoutMs: 60_000 };
const t = useApp({ connections: LIMITS, flushIntervalSeconds: 0 });

interface Slow {
  socket: Socket;
  /** What the server sent before it closed the socket ('' for a socket closed without an answer). */
  received: () => string;
  closed: boolean;
  openedAt: number;
  closedAt: number | null;
}

/** A socket from `from` that begins a request and then sends one header line every 200 ms, never finishing. */
async function slowloris(port: number, from: string): Promise<Slow> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  let received = '';
  const slow: Slow = { socket, received: () => received, closed: false, openedAt: Date.now(), closedAt: null };
  socket.on('data', (b) => (received += b));
  socket.on('error', () => {});
  const drip = setInterval(() => socket.writable && socket.write(`X-Drip-${Date.now()}: 1\r\n`), 200);
  socket.on('close', () => {
    clearInterval(drip);
    slow.closed = true;
    slow.closedAt = Date.now();
  });
  await new Promise<void>((resolve) => {
    socket.once('connect', () => {
      socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      resolve();
    });
    socket.once('close', () => resolve());
  });
  return slow;
}

/** GET /health from `from`: its status and body. */
function health(port: number, from: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', localAddress: from, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The server accepts (and refuses) connections a moment after the client sees them connected. */
const refusedBy = (flood: Slow[], n: number) => waitUntil(() => flood.filter((s) => s.closed).length >= n, `${n} sockets to be refused`, 15_000);
const settle = () => new Promise((r) => setTimeout(r, 500));
const end = async (flood: Slow[]) => {
  for (const s of flood) s.socket.destroy();
  await settle();
};

describe('slowloris', () => {
  it('one address holds at most its cap of unfinished requests; the rest are closed at once, and /health answers meanwhile', async () => {
    const port = Number(new URL(t.url).port);
    const flood = await Promise.all(Array.from({ length: 60 }, () => slowloris(port, '127.0.0.1')));
    await refusedBy(flood, 60 - LIMITS.maxPerAddress);
    await settle();
    // Refused without an answer, long before any timeout. (At most the cap stays: on a loaded
    // machine the kernel may also drop a connection the server was too slow to accept.)
    const refused = flood.filter((s) => s.closed);
    for (const s of refused) expect(s.received()).toBe('');
    expect(flood.filter((s) => !s.closed).length).toBeLessThanOrEqual(LIMITS.maxPerAddress);
    expect(flood.filter((s) => !s.closed).length).toBeGreaterThan(0);
    expect(await within(health(port, '127.0.0.2'), 10_000, '/health beside the flood')).toEqual({ status: 200, body: '{"status":"ok"}' });
    await end(flood);
  }, 60_000);

  it('500 slow sockets from ten addresses stay under the total cap, and /health from other addresses still answers', async () => {
    const port = Number(new URL(t.url).port);
    const flood: Slow[] = [];
    for (let a = 0; a < 10; a++) flood.push(...(await Promise.all(Array.from({ length: 50 }, () => slowloris(port, `127.0.0.${10 + a}`)))));
    // Per address its cap (300 in all would pass those), in total the cap: 200 stay.
    await refusedBy(flood, 500 - LIMITS.maxConnections);
    await settle();
    const open = flood.filter((s) => !s.closed);
    expect(open.length).toBeLessThanOrEqual(LIMITS.maxConnections);
    expect(open.length).toBeGreaterThan(LIMITS.maxConnections / 2);
    for (let a = 0; a < 10; a++) expect(open.filter((s) => s.socket.localAddress === `127.0.0.${10 + a}`).length).toBeLessThanOrEqual(LIMITS.maxPerAddress);
    // At the total cap a newcomer takes the place of the oldest idle connection: /health gets in, again and again.
    for (const from of ['127.0.0.100', '127.0.0.101', '127.0.0.102']) {
      expect(await within(health(port, from), 10_000, `/health from ${from} through the flood`)).toEqual({ status: 200, body: '{"status":"ok"}' });
    }
    await end(flood);
  }, 60_000);
});

// A process that needs no database: run once, in the PGlite run.
describe.runIf(backend === 'pglite')('the limits from the environment', () => {
  it('MAX_CONNECTIONS_PER_ADDRESS and HEADERS_TIMEOUT_SECONDS reach the service', async () => {
    const service = await spawnService({ DATABASE_URL: '', DATA_DIR: 'memory://', MAX_CONNECTIONS_PER_ADDRESS: '3', HEADERS_TIMEOUT_SECONDS: '1' });
    try {
      const port = Number(new URL(service.url).port);
      const flood = await Promise.all(Array.from({ length: 5 }, () => slowloris(port, '127.0.0.1')));
      await refusedBy(flood, 2);
      expect(flood.filter((s) => s.closed && s.received() === '')).toHaveLength(2);
      await waitUntil(() => flood.every((s) => s.closed), 'the slow sockets to be closed', 10_000);
      expect(flood.filter((s) => s.received().startsWith('HTTP/1.1 408'))).toHaveLength(3);
      expect(await health(port, '127.0.0.2')).toEqual({ status: 200, body: '{"status":"ok"}' });
    } finally {
      await service.stop();
    }
  }, 120_000);
});
