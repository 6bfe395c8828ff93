import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYoga } from 'graphql-yoga';
import { DEFAULT_LIMITS, type Limits } from '../core/types.js';
import type { Db } from '../db/client.js';
import type { Context } from '../graphql/context.js';
import { createEventBus, publishEvents, type EventBus } from '../graphql/pubsub.js';
import { schema } from '../graphql/schema.js';

export interface AppOptions {
  db: Db;
  limits?: Limits;
  bus?: EventBus;
  graphiql?: boolean;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes?: number;
}

export interface App {
  yoga: ReturnType<typeof createYoga<Record<string, unknown>, Context>>;
  server: Server;
  start(port?: number, host?: string): Promise<string>;
  stop(): Promise<void>;
}

export function buildApp(opts: AppOptions): App {
  const bus = opts.bus ?? createEventBus();
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const maxBodyBytes = opts.maxBodyBytes ?? limits.maxBatch * limits.maxChangeBytes;
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphiql: opts.graphiql ?? true,
    landingPage: false,
    logging: 'warn',
    context: (): Context => ({ db: opts.db, limits, publish: (events) => publishEvents(bus, events) }),
    plugins: [
      {
        // Refuse oversized bodies before they are parsed: a clear 413, not an out-of-memory.
        onRequest({ request, endResponse, fetchAPI }) {
          const length = Number(request.headers.get('content-length') ?? 0);
          if (length > maxBodyBytes) {
            endResponse(
              new fetchAPI.Response(JSON.stringify({ errors: [{ message: `request body of ${length} bytes exceeds ${maxBodyBytes}`, extensions: { code: 'TOO_LARGE' } }] }), {
                status: 413,
                headers: { 'content-type': 'application/json' },
              }),
            );
          }
        },
      },
    ],
  });
  const server = createServer(yoga);

  return {
    yoga,
    server,
    start: (port = 4000, host = '127.0.0.1') =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const { port: actual } = server.address() as AddressInfo;
          resolve(`http://${host.includes(':') ? `[${host}]` : host}:${actual}${yoga.graphqlEndpoint}`);
        });
      }),
    stop: () =>
      new Promise((resolve) => {
        server.closeIdleConnections?.();
        server.close(() => resolve());
        setTimeout(() => server.closeAllConnections?.(), 2000).unref();
      }),
  };
}
