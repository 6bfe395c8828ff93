import type { IncomingMessage, Server } from 'node:http';
import { getOperationAST, GraphQLError, type DocumentNode, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { YogaServerInstance } from 'graphql-yoga';

export interface SocketOptions {
  /** Server ping interval; a socket that misses a pong is closed. Under common 30 s LB idle timeouts. */
  keepAliveMs: number;
  /** How long a socket may stay open without sending connection_init. */
  connectionInitWaitTimeoutMs: number;
  /** Largest message accepted once the socket is acknowledged (ws's default is 100 MiB). */
  maxPayloadBytes?: number;
  /**
   * What a socket may send before connection_ack (its connection_init, pings), in bytes on the
   * wire: a stranger's socket cannot make the server buffer a 32 MiB message (default 16 KiB).
   */
  maxInitBytes?: number;
  /**
   * Checks a socket's credentials at connection_init (payload or upgrade request): its token id
   * (null: anonymous), or the close code and reason that refuse it. Absent: no check.
   */
  authenticate?: (connection: {
    connectionParams: Record<string, unknown> | undefined;
    req: IncomingMessage;
  }) => Promise<{ tokenId: string | null } | { refuse: { code: number; reason: string } }>;
  /** The close code and reason for a socket whose token is revoked while it is open. */
  revoked?: { code: number; reason: string };
  /** Told when a client sends `complete` for one of its operations (before graphql-ws ends it). */
  onClientComplete?: (socket: object, operationId: string) => void;
  /** Masks an unexpected error of an operation into the error the client gets (yoga's masking). */
  maskError?: (error: unknown) => GraphQLError;
  /**
   * Browser origins allowed to open a socket besides the service's own (CORS_ORIGINS). A browser
   * sends `Origin` with every socket, and a socket is not subject to CORS: without this check
   * any page the user visits could open one to the service (and, with ANONYMOUS_ROLE, act).
   */
  allowedOrigins?: readonly string[];
  /** Told of each socket refused for its origin (the activity log). */
  onOriginRefused?: () => void;
}

/** What a socket from a page of another origin gets: a 403 at the upgrade, before any WebSocket frame. */
export const ORIGIN_REFUSAL = { status: 403, message: 'Forbidden: sockets from pages of this origin are not allowed (see CORS_ORIGINS)' } as const;

/**
 * True when a socket's upgrade request may proceed: no `Origin` (not a browser: Node, mobile
 * clients), the service's own origin (its host and port are the request's `Host`, whatever the
 * scheme a proxy in front terminates), or a configured origin. `null` (a sandboxed frame, a
 * file) is nobody's and refused.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  if (allowed.has(origin)) return true;
  let page: URL;
  try {
    page = new URL(origin);
  } catch {
    return false;
  }
  if ((page.protocol !== 'http:' && page.protocol !== 'https:') || !host) return false;
  let served: URL;
  try {
    // The Host header read in the page's scheme, so that default ports compare equal (":443" or none).
    served = new URL(`${page.protocol}//${host}`);
  } catch {
    return false;
  }
  return served.host === page.host && served.pathname === '/' && served.username === '' && served.password === '';
}

export const DEFAULT_MAX_INIT_BYTES = 16 * 1024;

/**
 * GraphQL over WebSocket (graphql-transport-ws) on the HTTP server's own port and path,
 * running through yoga's envelop so plugins and context are the same as over HTTP.
 * Queries and mutations work on the socket too.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any server and user context
export function attachWebSocket(server: Server, yoga: YogaServerInstance<any, any>, opts: SocketOptions) {
  // Messages as large as an HTTP body may be; a larger one closes the socket with 1009.
  const origins = new Set(opts.allowedOrigins ?? []);
  const wss = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    ...(opts.maxPayloadBytes ? { maxPayload: opts.maxPayloadBytes } : {}),
    // Checked at the upgrade: a page of a foreign origin gets a 403 and never a socket.
    verifyClient: ({ req }, done) => {
      const origin = req.headers.origin;
      if (originAllowed(origin, req.headers.host, origins)) return done(true);
      opts.onOriginRefused?.();
      done(false, ORIGIN_REFUSAL.status, ORIGIN_REFUSAL.message);
    },
  });
  // Operations running per socket: a graceful shutdown lets queries and mutations answer, and
  // subscriptions (which it ends first, Context.closing) send their complete, before it closes the socket.
  const inFlight = new Map<object, Set<string>>();
  let draining = false;
  let settled: (() => void) | null = null;
  const done = (socket: object, id?: string) => {
    const ids = inFlight.get(socket);
    if (id === undefined) inFlight.delete(socket);
    else ids?.delete(id);
    if (draining && [...inFlight.values()].every((s) => s.size === 0)) settled?.();
  };
  const maxInitBytes = opts.maxInitBytes ?? DEFAULT_MAX_INIT_BYTES;
  // Until its connection_ack, a socket's bytes are counted on the TCP socket itself: ws has one
  // maxPayload for every socket of a server (and no public way to raise it for one), and it
  // would buffer a whole message up to that before anyone sees it.
  const stopCounting = new WeakMap<object, () => void>();
  wss.on('connection', (socket, req) => {
    socket.once('close', () => done(socket));
    const tcp = req.socket;
    let received = 0;
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received <= maxInitBytes) return;
      tcp.off('data', count);
      // Read no more of it (what is in flight stays in the kernel), say why, and let it go.
      tcp.pause();
      socket.close(1009, `Message Too Big: at most ${maxInitBytes} bytes before connection_ack`);
      setTimeout(() => socket.terminate(), 1000).unref();
    };
    tcp.on('data', count);
    stopCounting.set(socket, () => tcp.off('data', count));
    // A client's `complete` frees its operation's place at once (SocketOptions.onClientComplete);
    // only small text messages can be one, so others are not parsed twice.
    if (opts.onClientComplete) {
      const told = opts.onClientComplete;
      socket.on('message', (data, isBinary) => {
        if (isBinary || !Buffer.isBuffer(data) || data.length > 200) return;
        try {
          const message = JSON.parse(data.toString('utf8')) as { type?: unknown; id?: unknown };
          if (message.type === 'complete' && typeof message.id === 'string') told(socket, message.id);
        } catch {
          // Not JSON: graphql-ws answers it.
        }
      });
    }
    // A client gone mid-answer (its TCP reset arrived before ws noticed): the answer has nowhere
    // to go. graphql-ws would log that as an internal error and close with 4500; drop it quietly.
    const send = socket.send.bind(socket);
    type Callback = (err?: Error) => void;
    socket.send = ((data: Parameters<typeof send>[0], optionsOrCb?: object | Callback, maybeCb?: Callback) => {
      const cb = typeof optionsOrCb === 'function' ? optionsOrCb : maybeCb;
      const options = typeof optionsOrCb === 'function' ? {} : (optionsOrCb ?? {});
      send(data, options, (err?: Error) => cb?.((err as NodeJS.ErrnoException | undefined)?.code === 'ERR_STREAM_DESTROYED' ? undefined : err));
    }) as typeof socket.send;
  });
  // The token each socket authenticated with, to close them when it is revoked.
  const tokenOf = new WeakMap<object, string>();
  const disposable = useServer(
    {
      connectionInitWaitTimeout: opts.connectionInitWaitTimeoutMs,
      onConnect: async (ctx) => {
        const socket = ctx.extra.socket;
        if (opts.authenticate) {
          let outcome: Awaited<ReturnType<NonNullable<SocketOptions['authenticate']>>>;
          try {
            outcome = await opts.authenticate({ connectionParams: ctx.connectionParams, req: ctx.extra.request });
          } catch {
            outcome = { refuse: { code: 1011, reason: 'Internal Error' } };
          }
          if ('refuse' in outcome) {
            // Closed here with our code; graphql-ws's own close (4403) after `false` is then a no-op.
            socket.close(outcome.refuse.code, outcome.refuse.reason);
            return false;
          }
          if (outcome.tokenId !== null) tokenOf.set(socket, outcome.tokenId);
        }
        // Acknowledged: from now on the socket may send what an HTTP body may hold.
        stopCounting.get(socket)?.();
        return true;
      },
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
      onSubscribe: async (ctx, id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          operationId: id,
          // False once the client completed it (graphql-ws forgets it then): it takes no place.
          operationLive: () => id in ctx.subscriptions,
          params,
        });
        let contextValue: unknown;
        let document: DocumentNode;
        try {
          // Authenticates again per operation: a token revoked since connection_init stops here.
          contextValue = await contextFactory();
          document = parse(params.query);
        } catch (error) {
          // A refused credential or document (syntax, token flood), an unreachable database or
          // any other failure answers this operation, masked; thrown on, graphql-ws would close
          // the whole socket with 4500 and the error's message as the reason.
          if (error instanceof GraphQLError) return [error];
          return [opts.maskError ? opts.maskError(error) : new GraphQLError('Unexpected error.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } })];
        }
        const args = { schema, operationName: params.operationName, document, variableValues: params.variables, contextValue, rootValue: { execute, subscribe } };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        // Checked last, after every await: an operation let through here is counted before drain() looks.
        if (draining) return [new GraphQLError('the server is shutting down: send it again on a new connection', { extensions: { code: 'SHUTTING_DOWN' } })];
        const ids = inFlight.get(ctx.extra.socket) ?? new Set<string>();
        inFlight.set(ctx.extra.socket, ids.add(id));
        return args;
      },
      // graphql-ws calls this before it sends the complete message: the operation counts as done
      // a turn later, once that message is on the socket, so a shutdown never closes over it.
      onComplete: (ctx, id) => {
        setImmediate(() => done(ctx.extra.socket, id));
      },
    },
    wss,
    opts.keepAliveMs,
  );
  return {
    wss,
    /** Refuses new operations from now on; resolves once every running operation has answered or completed (end subscriptions first). */
    drain: (): Promise<void> => {
      draining = true;
      if ([...inFlight.values()].every((s) => s.size === 0)) return Promise.resolve();
      return new Promise<void>((resolve) => (settled = resolve));
    },
    /** Closes the sockets that authenticated with this token: it was revoked (SocketOptions.revoked). */
    closeToken: (tokenId: string) => {
      const { code, reason } = opts.revoked ?? { code: 4401, reason: 'Unauthorized: API token revoked' };
      for (const client of wss.clients) if (tokenOf.get(client) === tokenId) client.close(code, reason);
    },
    /** Closes every socket with 1001 (going away), then the socket server; the HTTP server stays. */
    close: async () => {
      for (const client of wss.clients) client.close(1001, 'server shutting down');
      // A client that never answers the close frame would hold the shutdown for ws's 30 s.
      const cut = setTimeout(() => wss.clients.forEach((c) => c.terminate()), 1000);
      try {
        await disposable.dispose();
      } finally {
        clearTimeout(cut);
      }
    },
  };
}
