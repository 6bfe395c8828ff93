import type { Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { YogaServerInstance } from 'graphql-yoga';

export interface SocketOptions {
  /** Server ping interval; a socket that misses a pong is closed. Under common 30 s LB idle timeouts. */
  keepAliveMs: number;
  /** How long a socket may stay open without sending connection_init. */
  connectionInitWaitTimeoutMs: number;
}

/**
 * GraphQL over WebSocket (graphql-transport-ws) on the HTTP server's own port and path,
 * running through yoga's envelop so plugins and context are the same as over HTTP.
 * Queries and mutations work on the socket too.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any server and user context
export function attachWebSocket(server: Server, yoga: YogaServerInstance<any, any>, opts: SocketOptions) {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const disposable = useServer(
    {
      connectionInitWaitTimeout: opts.connectionInitWaitTimeoutMs,
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        const args = {
          schema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        return args;
      },
    },
    wss,
    opts.keepAliveMs,
  );
  return {
    wss,
    /** Closes every socket with 1001 (going away), then the socket server; the HTTP server stays. */
    close: async () => {
      for (const client of wss.clients) client.close(1001, 'server shutting down');
      await disposable.dispose();
    },
  };
}
