import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Bounds on TCP connections (issue 17 item 9, slowloris: 1,000 unauthenticated sockets that never
 * finished their headers made /health fail for 75 s). Three rules:
 * - a connection must finish its request headers within `headersTimeoutMs` (Node's
 *   server.headersTimeout, checked every `checkEveryMs`: a silent or dribbling socket gets 408 and
 *   is closed) and its whole request within `requestTimeoutMs`; an idle kept-alive one is closed
 *   after `idleTimeoutMs`;
 * - one remote address holds at most `maxPerAddress` connections (sockets included): more are
 *   closed at once;
 * - all together at most `maxConnections`: at the cap, a new connection takes the place of the
 *   oldest idle one (kept alive between requests, or still sending its headers) rather than being
 *   refused, so a flood of idle sockets from many addresses cannot shut out a /health probe; only
 *   when every connection is busy (a request in flight, or a WebSocket) is the newcomer closed.
 */
export interface ConnectionLimits {
  /** Connections open at once, sockets and SSE streams included (MAX_CONNECTIONS). */
  maxConnections: number;
  /** Connections from one remote address (MAX_CONNECTIONS_PER_ADDRESS); 0: no per-address cap (behind a proxy every connection comes from it). */
  maxPerAddress: number;
  /** Time to send the request line and headers (HEADERS_TIMEOUT_SECONDS). */
  headersTimeoutMs: number;
  /** Time to send a whole request, body included (REQUEST_TIMEOUT_SECONDS): a full 32 MiB batch needs room on a slow link. */
  requestTimeoutMs: number;
  /** How long a kept-alive connection may sit idle between requests (IDLE_TIMEOUT_SECONDS). */
  idleTimeoutMs: number;
  /** How often Node looks for connections past the headers and request timeouts. */
  checkEveryMs: number;
}

/**
 * A single service on one machine: thousands of field devices with a socket each fit, and one
 * address (a NAT in front of an office's tablets) may hold a few hundred. The idle timeout stays
 * above common load balancers' 60 s, so the server never closes a pooled connection under them.
 */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 4096,
  maxPerAddress: 256,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  idleTimeoutMs: 65_000,
  checkEveryMs: 1000,
};

/** The options of http.createServer that carry the timeouts (the checking interval can only be set there). */
export function serverTimeouts(limits: ConnectionLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    // Node refuses a request timeout shorter than the headers timeout.
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionsCheckingInterval: Math.min(limits.checkEveryMs, limits.headersTimeoutMs),
  };
}

interface Tracked {
  address: string;
  /** Requests in flight on it (more than one only with pipelining). */
  busy: number;
  /** Handed to the WebSocket server: long-lived and never idle in this sense. */
  upgraded: boolean;
}

/** Applies the caps to `server`; `refused` is told of each connection closed for them (metrics, logs). */
export function limitConnections(server: Server, limits: ConnectionLimits, refused?: (why: 'total' | 'address') => void) {
  // Insertion order is age: the first idle entry is the oldest idle connection.
  const open = new Map<Socket, Tracked>();
  const perAddress = new Map<string, number>();
  const forget = (socket: Socket) => {
    const t = open.get(socket);
    if (!t) return;
    open.delete(socket);
    const n = (perAddress.get(t.address) ?? 1) - 1;
    if (n > 0) perAddress.set(t.address, n);
    else perAddress.delete(t.address);
  };
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    if (limits.maxPerAddress > 0 && (perAddress.get(address) ?? 0) >= limits.maxPerAddress) {
      refused?.('address');
      socket.destroy();
      return;
    }
    if (open.size >= limits.maxConnections) {
      let oldestIdle: Socket | null = null;
      for (const [s, t] of open) {
        if (t.busy === 0 && !t.upgraded) {
          oldestIdle = s;
          break;
        }
      }
      if (!oldestIdle) {
        refused?.('total');
        socket.destroy();
        return;
      }
      forget(oldestIdle);
      oldestIdle.destroy();
    }
    open.set(socket, { address, busy: 0, upgraded: false });
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    socket.once('close', () => forget(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const t = open.get(req.socket);
    if (!t) return;
    t.busy += 1;
    res.once('close', () => (t.busy -= 1));
  });
  server.on('upgrade', (req: IncomingMessage) => {
    const t = open.get(req.socket);
    if (t) t.upgraded = true;
  });
  return {
    /** Connections open now (what the caps count). */
    get size() {
      return open.size;
    },
  };
}
