import { createClient, type Client, type Sink } from 'graphql-ws';
import { TransportError } from './errors.js';
import type { GraphQLResponse } from './http.js';

/**
 * One graphql-ws connection for batches: no retries of its own (the transport decides what to
 * do when it fails), client-sent pings every `pingIntervalMs`, and declared dead after two
 * intervals without a pong (two missed pongs), whatever the server's own ping does.
 *
 * The connection is opened at once and held until `close()` (graphql-ws `lazy: false`), so
 * pings keep checking it between batches. Not a lazy connection with a long lazyCloseTimeout:
 * graphql-ws keeps that timer running after terminate(), and it kept Node alive for a minute
 * after the app closed the client.
 */
export interface BatchSocket {
  execute(query: string, variables: Record<string, unknown>, ackTimeoutMs: number): Promise<GraphQLResponse>;
  close(): void;
}

/** What this file needs of a WebSocket: the browser's, or `ws` (which adds `terminate`). */
interface RawSocket {
  addEventListener?(type: 'error', listener: () => void): void;
  terminate?(): void;
}

/** How a socket ended, as its close event said. */
export interface SocketClose {
  code: number;
  reason: string;
}

export function closeOf(value: unknown): SocketClose | undefined {
  if (typeof value !== 'object' || value === null || !('code' in value) || typeof value.code !== 'number') return undefined;
  return { code: value.code, reason: 'reason' in value && typeof value.reason === 'string' ? value.reason : '' };
}

export function openBatchSocket(opts: {
  url: string;
  webSocketImpl: unknown;
  connectionParams?: Record<string, unknown> | undefined;
  pingIntervalMs: number;
  /** The socket died by itself (missed pongs, closed by the server or the network); not called after close(). */
  onDead: (reason: string, close?: SocketClose) => void;
}): BatchSocket {
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  let ended: SocketClose | undefined;
  // The socket graphql-ws made, kept to end it ourselves (see terminate).
  let socket: RawSocket | undefined;
  const Impl = opts.webSocketImpl as new (...args: unknown[]) => RawSocket;
  const Tracked = class extends Impl {
    constructor(...args: unknown[]) {
      super(...args);
      socket = this;
    }
  };
  const dead = (reason: string, close?: SocketClose) => {
    if (closed) return;
    terminate();
    opts.onDead(reason, close);
  };
  const client: Client = createClient({
    url: opts.url,
    webSocketImpl: Tracked,
    ...(opts.connectionParams ? { connectionParams: opts.connectionParams } : {}),
    lazy: false,
    retryAttempts: 0,
    keepAlive: opts.pingIntervalMs,
    // The connection's end is reported through `closed` below; graphql-ws would console.error it.
    onNonLazyError: () => {},
    on: {
      ping: (received) => {
        if (received) return;
        clearTimeout(pongTimer);
        pongTimer = setTimeout(() => dead('two keep-alive pongs missed'), 2 * opts.pingIntervalMs);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      closed: (event) => {
        clearTimeout(pongTimer);
        if (closed) return;
        // Already closed: no terminate(), so graphql-ws ends the operations with this close event.
        closed = true;
        ended = closeOf(event);
        // dispose() awaits the connection attempt, which this close rejects: nothing to report twice.
        void Promise.resolve(client.dispose()).catch(() => {});
        opts.onDead(ended ? `socket closed with ${describeClose(ended)}` : 'socket closed', ended);
      },
      error: () => {
        // A failed handshake or a network error: `closed` follows and reports it.
      },
    },
  });
  function terminate() {
    if (closed) return;
    closed = true;
    clearTimeout(pongTimer);
    // Closing a `ws` socket that is still connecting emits an error event, and graphql-ws has
    // removed its listener by then: without one of ours Node would throw it as uncaught.
    socket?.addEventListener?.('error', () => {});
    client.terminate();
    void Promise.resolve(client.dispose()).catch(() => {});
    // `ws` in Node: drop the TCP connection now instead of waiting (up to 30 s) for the
    // server's closing handshake, which a dead server never sends. Browsers close at once anyway.
    socket?.terminate?.();
  }
  return {
    execute: (query, variables, ackTimeoutMs) =>
      new Promise<GraphQLResponse>((resolve, reject) => {
        if (closed) return reject(new TransportError('socket closed'));
        let result: GraphQLResponse | undefined;
        let settled = false;
        const settle = (fn: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          fn();
        };
        const deadline = setTimeout(() => {
          settle(() => reject(new TransportError(`no answer on the socket within ${ackTimeoutMs} ms`)));
          unsubscribe();
        }, ackTimeoutMs);
        const sink: Sink = {
          next: (value) => {
            result = value as GraphQLResponse;
          },
          error: (error) => {
            const close = closeOf(error);
            settle(() => reject(new TransportError(`socket failed: ${describe(error)}`, { cause: error, ...(close ? { closeCode: close.code, closeReason: close.reason } : {}) })));
          },
          complete: () =>
            settle(() =>
              result ? resolve(result) : reject(new TransportError(ended ? `socket closed with ${describeClose(ended)}` : 'socket completed without an answer', ended ? { closeCode: ended.code, closeReason: ended.reason } : {})),
            ),
        };
        const unsubscribe = client.subscribe({ query, variables }, sink);
      }),
    close: terminate,
  };
}

const describeClose = (close: SocketClose) => `${close.code}${close.reason ? ` (${close.reason})` : ''}`;

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  const close = closeOf(error);
  if (close) return `closed with ${describeClose(close)}`;
  return String(error);
}
