import { createClient, type Client, type Sink } from 'graphql-ws';
import { TransportError, type GraphQLResponse } from './http.js';

/**
 * One graphql-ws connection for batches: no retries of its own (the transport decides what to
 * do when it fails), client-sent pings every `pingIntervalMs`, and declared dead after two
 * intervals without a pong (two missed pongs), whatever the server's own ping does.
 */
export interface BatchSocket {
  execute(query: string, variables: Record<string, unknown>, ackTimeoutMs: number): Promise<GraphQLResponse>;
  close(): void;
}

export function openBatchSocket(opts: { url: string; webSocketImpl: unknown; connectionParams?: Record<string, unknown> | undefined; pingIntervalMs: number; onDead: (reason: string) => void }): BatchSocket {
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const client: Client = createClient({
    url: opts.url,
    webSocketImpl: opts.webSocketImpl,
    ...(opts.connectionParams ? { connectionParams: opts.connectionParams } : {}),
    lazy: true,
    // Stay connected between batches, so pings keep checking the socket.
    lazyCloseTimeout: 60_000,
    retryAttempts: 0,
    keepAlive: opts.pingIntervalMs,
    on: {
      ping: (received) => {
        if (received) return;
        clearTimeout(pongTimer);
        pongTimer = setTimeout(() => {
          opts.onDead('two keep-alive pongs missed');
          terminate();
        }, 2 * opts.pingIntervalMs);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      closed: () => clearTimeout(pongTimer),
    },
  });
  const terminate = () => {
    if (closed) return;
    closed = true;
    clearTimeout(pongTimer);
    client.terminate();
    void client.dispose();
  };
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
          error: (error) => settle(() => reject(new TransportError(`socket failed: ${describe(error)}`, { cause: error }))),
          complete: () => settle(() => (result ? resolve(result) : reject(new TransportError('socket completed without an answer')))),
        };
        const unsubscribe = client.subscribe({ query, variables }, sink);
      }),
    close: terminate,
  };
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const e = error as { code: unknown; reason?: unknown };
    return `closed with ${String(e.code)}${e.reason ? ` (${String(e.reason)})` : ''}`;
  }
  return String(error);
}
