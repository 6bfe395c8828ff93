import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYoga } from 'graphql-yoga';
import { DEFAULT_LIMITS, type Limits } from '../core/types.js';
import type { Db } from '../db/client.js';
import type { Context } from '../graphql/context.js';
import { createEventBus, publishEvents, type EventBus } from '../graphql/pubsub.js';
import { schema } from '../graphql/schema.js';
import { startBacklogFlusher, type Flusher } from '../sync/flush-backlog.js';

export interface AppOptions {
  db: Db;
  limits?: Limits;
  holdTimeoutSeconds?: number;
  /** Seconds between backlog flushes; 0 disables the periodic task. */
  flushIntervalSeconds?: number;
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
    context: (): Context => ({ db: opts.db, limits, holdTimeoutSeconds, publish: (events) => publishEvents(bus, events) }),
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
  const holdTimeoutSeconds = opts.holdTimeoutSeconds ?? 300;
  const flushIntervalSeconds = opts.flushIntervalSeconds ?? 30;
  let flusher: Flusher | null = null;

  return {
    yoga,
    server,
    start: (port = 4000, host = '127.0.0.1') =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          if (flushIntervalSeconds > 0) {
            flusher = startBacklogFlusher(opts.db, {
              intervalSeconds: flushIntervalSeconds,
              holdTimeoutSeconds,
              publish: (events) => publishEvents(bus, events),
              onError: (error) => console.error('backlog flush failed', error),
            });
          }
          const { port: actual } = server.address() as AddressInfo;
          resolve(`http://${host.includes(':') ? `[${host}]` : host}:${actual}${yoga.graphqlEndpoint}`);
        });
      }),
    stop: async () => {
      await flusher?.stop();
      await new Promise<void>((resolve) => {
        server.closeIdleConnections?.();
        server.close(() => resolve());
        setTimeout(() => server.closeAllConnections?.(), 2000).unref();
      });
    },
  };
}
