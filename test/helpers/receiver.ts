import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { waitUntil } from './live.js';

/**
 * A real webhook receiver on 127.0.0.1: every request's signature is checked with the Standard
 * Webhooks library a receiver would use; what it answers is scripted (`mode`), and it can be
 * taken down and brought back on the same port.
 */

export interface Received {
  id: string;
  timestamp: string;
  /** The parsed body: { type, timestamp, data }. */
  body: { type: string; timestamp: string; data: Record<string, any> };
  /** The signature verified with the webhook's secret. */
  verified: boolean;
  /** Why it did not, when it did not. */
  verifyError?: string;
}

/** ok: 204. fail: 500. hang: never answers (until the receiver stops). redirect: 302 elsewhere. */
export type Mode = 'ok' | 'fail' | 'hang' | 'redirect';

export interface Receiver {
  url: string;
  port: number;
  /** Every request in order of arrival, duplicates included. */
  requests: Received[];
  /** Requests that are being held (mode hang). */
  held: number;
  mode: Mode;
  /** Verifies signatures with this secret from now on (the secret is known once the webhook is made). */
  secret: string;
  /** Events by id, first arrival of each: what a deduplicating receiver keeps. */
  unique(): Received[];
  /** Waits until `n` distinct event ids arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  /** Closes the port (connections refused) and drops held requests. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(opts: { mode?: Mode; port?: number } = {}): Promise<Receiver> {
  const held = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  const r: Receiver = {
    url: '',
    port: opts.port ?? 0,
    requests: [],
    mode: opts.mode ?? 'ok',
    secret: '',
    get held() {
      return held.size;
    },
    unique() {
      const seen = new Map<string, Received>();
      for (const q of r.requests) if (!seen.has(q.id)) seen.set(q.id, q);
      return [...seen.values()];
    },
    waitFor: async (n, timeoutMs = 20_000) => {
      await waitUntil(() => r.unique().length >= n, `${n} distinct webhook events (got ${r.unique().length})`, timeoutMs, 20);
      return r.unique();
    },
    down: async () => {
      if (!server) return;
      const s = server;
      server = null;
      for (const res of held) res.destroy();
      held.clear();
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    up: async () => {
      server = createServer((req, res) => void handle(req, res));
      server.on('connection', (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => server!.listen(r.port, '127.0.0.1', () => resolve()));
      r.port = (server.address() as AddressInfo).port;
      r.url = `http://127.0.0.1:${r.port}/hook`;
    },
    close: () => r.down(),
  };
  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const headers = { 'webhook-id': String(req.headers['webhook-id']), 'webhook-timestamp': String(req.headers['webhook-timestamp']), 'webhook-signature': String(req.headers['webhook-signature']) };
    let verified = false;
    let verifyError: string | undefined;
    try {
      new Webhook(r.secret).verify(raw, headers);
      verified = true;
    } catch (error) {
      verifyError = (error as Error).message;
    }
    r.requests.push({ id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], body: JSON.parse(raw), verified, ...(verifyError ? { verifyError } : {}) });
    if (r.mode === 'hang') {
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    if (r.mode === 'redirect') {
      res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' });
      res.end();
      return;
    }
    res.writeHead(r.mode === 'ok' ? 204 : 500);
    res.end(r.mode === 'ok' ? undefined : 'receiver broke');
  }
  await r.up();
  return r;
}
