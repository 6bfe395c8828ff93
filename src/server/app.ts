import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYoga } from 'graphql-yoga';
import { DEFAULT_LIMITS, type Limits } from '../core/types.js';
import { databaseAnswers, type Db } from '../db/client.js';
import type { Context } from '../graphql/context.js';
import { createEventBus, type EventBus } from '../graphql/pubsub.js';
import { schema } from '../graphql/schema.js';
import { startBacklogFlusher, type Flusher } from '../sync/flush-backlog.js';
import { attachWebSocket, type SocketOptions } from './ws.js';

export interface AppOptions {
  db: Db;
  limits?: Limits;
  /** Event bus; in process unless given one over Postgres LISTEN/NOTIFY. */
  bus?: EventBus;
  holdTimeoutSeconds?: number;
  /** Seconds between backlog flushes; 0 disables the periodic task. */
  flushIntervalSeconds?: number;
  socket?: Partial<SocketOptions>;
  graphiql?: boolean;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes?: number;
  /** Structured logger (pino in main.ts); yoga logs through it too. */
  logger?: Logger;
}

export interface Logger {
  debug: (...args: unknown[]) => void;
  info: (...args: unknown[]) => void;
  warn: (...args: unknown[]) => void;
  error: (...args: unknown[]) => void;
}

export interface App {
  yoga: ReturnType<typeof createYoga<Record<string, unknown>, Context>>;
  server: Server;
  bus: EventBus;
  start(port?: number, host?: string): Promise<string>;
  stop(): Promise<void>;
}

export function buildApp(opts: AppOptions): App {
  const onError = (message: string, error: unknown) => (opts.logger ? opts.logger.error({ err: error }, message) : console.error(message, error));
  const bus = opts.bus ?? createEventBus();
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const maxBodyBytes = opts.maxBodyBytes ?? limits.maxBatch * limits.maxChangeBytes;
  const holdTimeoutSeconds = opts.holdTimeoutSeconds ?? 300;
  const flushIntervalSeconds = opts.flushIntervalSeconds ?? 30;
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphiql: opts.graphiql === false ? false : { subscriptionsProtocol: 'WS' },
    landingPage: false,
    logging: opts.logger ?? 'warn',
    context: (): Context => ({ db: opts.db, limits, holdTimeoutSeconds, publish: bus.publish, pubsub: bus.pubsub }),
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
  // /health: the process serves. /ready: it can reach its database (for load balancers).
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/health' || req.url === '/ready')) {
      const check = req.url === '/ready' ? databaseAnswers(opts.db) : Promise.resolve(true);
      void check.then((ok) => {
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: ok ? 'ok' : 'unavailable' }));
      });
      return;
    }
    void yoga(req, res);
  });
  // Keep idle HTTP connections longer than the clients and proxies in front of us do (load
  // balancers commonly idle out at 60 s). With Node's default of 5 s the server closes a pooled
  // connection just as a client, whose event loop was busy, reuses it: "other side closed".
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const sockets = attachWebSocket(server, yoga, {
    keepAliveMs: opts.socket?.keepAliveMs ?? 12_000,
    connectionInitWaitTimeoutMs: opts.socket?.connectionInitWaitTimeoutMs ?? 3_000,
  });
  let flusher: Flusher | null = null;

  return {
    yoga,
    server,
    bus,
    start: async (port = 4000, host = '127.0.0.1') => {
      await bus.ready;
      const url = await new Promise<string>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const { port: actual } = server.address() as AddressInfo;
          resolve(`http://${host.includes(':') ? `[${host}]` : host}:${actual}${yoga.graphqlEndpoint}`);
        });
      });
      if (flushIntervalSeconds > 0) {
        flusher = startBacklogFlusher(opts.db, {
          intervalSeconds: flushIntervalSeconds,
          holdTimeoutSeconds,
          publish: bus.publish,
          onError: (error) => onError('backlog flush failed', error),
        });
      }
      return url;
    },
    stop: async () => {
      await flusher?.stop();
      await sockets.close();
      await new Promise<void>((resolve) => {
        server.closeIdleConnections?.();
        server.close(() => resolve());
        setTimeout(() => server.closeAllConnections?.(), 2000).unref();
      });
      await bus.close();
    },
  };
}
