import { createClient, type Client, type Sink } from 'graphql-ws';
import { SyncError, TransportError } from './errors.js';
import { postGraphQL, type FetchLike, type GraphQLResponse } from './http.js';
import { closeOf, openBatchSocket, type BatchSocket } from './socket.js';
import type { TransportMode } from './types.js';

/**
 * Socket first, HTTP when it fails (DESIGN "Transport"). A request goes over the socket with an
 * ack deadline; when the deadline passes, the socket closes or two pongs are missed, the same
 * request is sent over HTTP (change ids make a resend safe) and HTTP stays in use while the
 * socket is retried with exponential backoff and jitter; the first socket that answers takes
 * over again. Without a WebSocket implementation everything goes over HTTP.
 *
 * A refused token is final: a socket closed with 4401 (unknown or revoked token) or an HTTP
 * answer UNAUTHENTICATED stops the transport. No more sockets are tried, subscriptions end,
 * and every request fails at once with SyncError UNAUTHENTICATED, since nothing this client
 * can resend will change the answer. Any other close (1013 "try again later" when the
 * server's database is out of reach, 1001, a cut connection) is retried as above.
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
  /** The server refused the token (once, when it first did). */
  onRefused: (reason: string) => void;
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

/** The close code of a socket whose token the server does not accept (graphql-ws CloseCode.Unauthorized). */
export const UNAUTHORIZED_CLOSE = 4401;

export function createTransport(o: TransportOptions): Transport {
  let mode: TransportMode = o.webSocketImpl ? 'socket' : 'http';
  let socket: BatchSocket | null = null;
  let probing: BatchSocket | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let attempt = 0;
  let closed = false;
  let refused: string | null = null;
  let events: Client | null = null;
  const subscriptions = new Set<() => void>();
  // Pending waits of the subscription connection's retries, ended by close().
  const waits = new Set<() => void>();
  // Browsers cannot set headers on a WebSocket: the token goes in connection_init.
  const connectionParams = o.token ? { authorization: `Bearer ${o.token}` } : undefined;

  const refusal = () => new SyncError('UNAUTHENTICATED', `the server refused the token: ${refused}`);
  const refuse = (reason: string) => {
    if (refused !== null) return;
    refused = reason || 'Unauthorized';
    clearTimeout(retryTimer);
    socket?.close();
    socket = null;
    o.onRefused(refused);
  };
  const isRefusal = (error: unknown) => error instanceof TransportError && error.closeCode === UNAUTHORIZED_CLOSE;

  const open = (): BatchSocket => {
    const s: BatchSocket = openBatchSocket({
      url: o.wsUrl,
      webSocketImpl: o.webSocketImpl,
      connectionParams,
      pingIntervalMs: o.pingIntervalMs,
      onDead: (reason, close) => {
        if (close?.code === UNAUTHORIZED_CLOSE) refuse(close.reason);
        else if (socket === s) fallBack(reason);
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

  // Full spread between half and the whole delay, so many clients do not retry in step.
  const backoff = (n: number) => {
    const delay = Math.min(o.retryMaxMs, o.retryBaseMs * 2 ** n);
    return delay / 2 + (Math.random() * delay) / 2;
  };

  const scheduleRetry = () => {
    if (closed || refused !== null || retryTimer !== undefined || !o.webSocketImpl) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void probe();
    }, backoff(attempt));
    attempt += 1;
  };

  const probe = async () => {
    const s = (probing = open());
    try {
      await s.execute('query Probe { __typename }', {}, o.ackTimeoutMs);
    } catch (error) {
      s.close();
      if (isRefusal(error)) refuse((error as TransportError).closeReason ?? '');
      scheduleRetry();
      return;
    } finally {
      probing = null;
    }
    if (closed || refused !== null || mode === 'socket') return s.close();
    socket = s;
    attempt = 0;
    mode = 'socket';
    o.onMode('socket', 'the socket answered again');
  };

  /** An answer that refuses the token stops the transport, whichever way it came. */
  const checked = (res: GraphQLResponse): GraphQLResponse => {
    const error = res.errors?.find((e) => e.extensions?.code === 'UNAUTHENTICATED');
    if (error && !res.data) {
      refuse(error.message);
      throw refusal();
    }
    return res;
  };

  const post = async (query: string, variables: Record<string, unknown>) => {
    if (refused !== null) throw refusal();
    return checked(await postGraphQL(o.fetchImpl, o.httpUrl, query, variables, o.httpTimeoutMs, o.token));
  };

  return {
    mode: () => mode,
    post,
    execute: async (query, variables) => {
      if (refused !== null) throw refusal();
      if (mode === 'socket' && !closed) {
        socket ??= open();
        try {
          return checked(await socket.execute(query, variables, o.ackTimeoutMs));
        } catch (error) {
          if (error instanceof SyncError) throw error;
          if (refused !== null) throw refusal();
          if (isRefusal(error)) {
            refuse((error as TransportError).closeReason ?? '');
            throw refusal();
          }
          fallBack(error instanceof Error ? error.message : String(error));
        }
      }
      return post(query, variables);
    },
    subscribe: (query, variables, sink) => {
      if (!o.webSocketImpl) throw new Error('subscriptions need a WebSocket implementation (pass webSocketImpl)');
      if (refused !== null) {
        sink.error(refusal());
        return () => {};
      }
      // Subscriptions get their own connection that reconnects (and resubscribes) by itself;
      // graphql-ws does not retry a 4401 but ends the subscriptions with the close event.
      events ??= createClient({
        url: o.wsUrl,
        webSocketImpl: o.webSocketImpl,
        connectionParams,
        lazy: true,
        retryAttempts: Infinity,
        shouldRetry: () => !closed && refused === null,
        // The same backoff as the batch socket's, cut short by close() so no timer outlives the client.
        retryWait: (retries) =>
          new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              waits.delete(done);
              resolve();
            };
            const timer = setTimeout(done, backoff(retries));
            waits.add(done);
          }),
        on: {
          closed: (event) => {
            const close = closeOf(event);
            if (close?.code === UNAUTHORIZED_CLOSE) refuse(close.reason);
          },
        },
      });
      const stop = events.subscribe({ query, variables }, sink);
      const unsubscribe = () => {
        subscriptions.delete(unsubscribe);
        stop();
      };
      subscriptions.add(unsubscribe);
      return unsubscribe;
    },
    close: () => {
      closed = true;
      clearTimeout(retryTimer);
      socket?.close();
      socket = null;
      probing?.close();
      // Ended here, so graphql-ws has no subscription left to reconnect for.
      for (const unsubscribe of [...subscriptions]) unsubscribe();
      for (const done of [...waits]) done();
      void Promise.resolve(events?.dispose()).catch(() => {});
    },
  };
}
