import { createClient, type Client, type Sink } from 'graphql-ws';
import { postGraphQL, type FetchLike, type GraphQLResponse } from './http.js';
import { openBatchSocket, type BatchSocket } from './socket.js';
import type { TransportMode } from './types.js';

/**
 * Socket first, HTTP when it fails (DESIGN "Transport"). A request goes over the socket with an
 * ack deadline; when the deadline passes, the socket closes or two pongs are missed, the same
 * request is sent over HTTP (change ids make a resend safe) and HTTP stays in use while the
 * socket is retried with exponential backoff and jitter; the first socket that answers takes
 * over again. Without a WebSocket implementation everything goes over HTTP.
 */
export interface TransportOptions {
  httpUrl: string;
  wsUrl: string;
  webSocketImpl: unknown;
  fetchImpl: FetchLike;
  /** Bearer token for HTTP requests and the sockets' connection_init. */
  token?: string;
  ackTimeoutMs: number;
  httpTimeoutMs: number;
  pingIntervalMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  onMode: (mode: TransportMode, reason: string) => void;
}

export interface Transport {
  mode(): TransportMode;
  /** Over the socket when it works, else over HTTP. */
  execute(query: string, variables: Record<string, unknown>): Promise<GraphQLResponse>;
  /** Over HTTP only (reads that need no socket). */
  post(query: string, variables: Record<string, unknown>): Promise<GraphQLResponse>;
  subscribe(query: string, variables: Record<string, unknown>, sink: Sink): () => void;
  close(): void;
}

export function createTransport(o: TransportOptions): Transport {
  let mode: TransportMode = o.webSocketImpl ? 'socket' : 'http';
  let socket: BatchSocket | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let attempt = 0;
  let closed = false;
  let events: Client | null = null;
  // Browsers cannot set headers on a WebSocket: the token goes in connection_init.
  const connectionParams = o.token ? { authorization: `Bearer ${o.token}` } : undefined;

  const open = (): BatchSocket => {
    const s: BatchSocket = openBatchSocket({
      url: o.wsUrl,
      webSocketImpl: o.webSocketImpl,
      connectionParams,
      pingIntervalMs: o.pingIntervalMs,
      onDead: (reason) => {
        if (socket === s) fallBack(reason);
      },
    });
    return s;
  };

  const fallBack = (reason: string) => {
    socket?.close();
    socket = null;
    if (mode === 'socket') {
      mode = 'http';
      o.onMode('http', reason);
    }
    scheduleRetry();
  };

  const scheduleRetry = () => {
    if (closed || retryTimer !== undefined || !o.webSocketImpl) return;
    const delay = Math.min(o.retryMaxMs, o.retryBaseMs * 2 ** attempt);
    attempt += 1;
    // Full spread between half and the whole delay, so many clients do not retry in step.
    const jittered = delay / 2 + (Math.random() * delay) / 2;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void probe();
    }, jittered);
  };

  const probe = async () => {
    const s = open();
    try {
      await s.execute('query Probe { __typename }', {}, o.ackTimeoutMs);
    } catch {
      s.close();
      scheduleRetry();
      return;
    }
    if (closed || mode === 'socket') return s.close();
    socket = s;
    attempt = 0;
    mode = 'socket';
    o.onMode('socket', 'the socket answered again');
  };

  const post = (query: string, variables: Record<string, unknown>) => postGraphQL(o.fetchImpl, o.httpUrl, query, variables, o.httpTimeoutMs, o.token);

  return {
    mode: () => mode,
    post,
    execute: async (query, variables) => {
      if (mode === 'socket' && !closed) {
        socket ??= open();
        try {
          return await socket.execute(query, variables, o.ackTimeoutMs);
        } catch (error) {
          fallBack(error instanceof Error ? error.message : String(error));
        }
      }
      return post(query, variables);
    },
    subscribe: (query, variables, sink) => {
      if (!o.webSocketImpl) throw new Error('subscriptions need a WebSocket implementation (pass webSocketImpl)');
      // Subscriptions get their own connection that reconnects (and resubscribes) by itself.
      events ??= createClient({ url: o.wsUrl, webSocketImpl: o.webSocketImpl, connectionParams, lazy: true, retryAttempts: Infinity, shouldRetry: () => !closed });
      return events.subscribe({ query, variables }, sink);
    },
    close: () => {
      closed = true;
      clearTimeout(retryTimer);
      socket?.close();
      socket = null;
      void events?.dispose();
    },
  };
}
