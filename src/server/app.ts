import { timingSafeEqual } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GraphQLError } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { DEFAULT_LIMITS, type Limits } from '../core/types.js';
import { databaseAnswers, type Db } from '../db/client.js';
import type { Context, SyncObserver } from '../graphql/context.js';
import { createEventBus, SubscriptionEnd, type EventBus } from '../graphql/pubsub.js';
import { schema } from '../graphql/schema.js';
import { useRawJson } from '../graphql/raw-json.js';
import { startRevocationSweep } from '../sync/tokens.js';
import type { SyncEvent } from '../core/events.js';
import { DEFAULT_HOLD_TIMEOUT_SECONDS, startBacklogFlusher, type Flusher } from '../sync/flush-backlog.js';
import { startWebhookWorker, type Sender, type WebhookWorker } from '../sync/webhook-delivery.js';
import { DEFAULT_RETRY, isWebhookEvent, type RetryPolicy } from '../core/webhooks.js';
import { webhookSender } from './webhook-sender.js';
import { hardeningPlugins, type HardeningOptions } from './hardening.js';
import { createReadAhead } from '../sync/read-ahead.js';
import { requestTracker } from './drain.js';
import { createMetrics } from './metrics.js';
import { authenticator, SOCKET_REFUSALS, type AuthOptions } from './auth.js';
import { bodyLimit } from './body-limit.js';
import { maskError } from './errors.js';
import { attachWebSocket, ORIGIN_REFUSAL, type SocketOptions } from './ws.js';
import { graphiqlHeaders, staticAssets } from './static.js';
import { DEFAULT_CONNECTION_LIMITS, limitConnections, serverTimeouts, type ConnectionLimits } from './connections.js';
import { activityLog } from './activity-log.js';
import { DEFAULT_SUBSCRIPTION_LIMITS, subscriptionLimits, type SubscriptionLimits } from './subscription-limits.js';
import { DEFAULT_REQUEST_LIMITS, requestLimiter, type RequestLimits } from './request-limits.js';

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
  /** Limits on GraphQL documents (depth, aliases, tokens, cost, directives) and introspection; defaults in hardening.ts. */
  hardening?: Partial<HardeningOptions>;
  /** When set, GET /metrics answers only requests bearing it (METRICS_TOKEN); unset, it is open like /health. */
  metricsToken?: string | null;
  /** Who may do what: requests authenticate with API tokens; anonymous access only when configured. */
  auth?: AuthOptions;
  /**
   * Browser origins (`https://dash.example.org`) allowed to call the API from their pages
   * (CORS_ORIGINS). None by default: no CORS headers, so browsers allow only the same origin.
   */
  corsOrigins?: readonly string[];
  /** Structured logger (pino in main.ts); yoga logs through it too. */
  logger?: Logger;
  /** How long stop() lets in-flight requests, socket operations and a flush run finish (default 10). */
  shutdownTimeoutSeconds?: number;
  /** The built dashboard and GraphiQL (default: dist/dashboard, see static.ts). */
  dashboardDir?: string;
  /** Webhook deliveries (defaults in WEBHOOK_DEFAULTS); `deliver: false` leaves them to other instances. */
  webhooks?: Partial<WebhookOptions>;
  /** Caps on connections and their timeouts (defaults in DEFAULT_CONNECTION_LIMITS, connections.ts). */
  connections?: Partial<ConnectionLimits>;
  /** Live subscriptions per socket and per token (defaults in subscription-limits.ts). */
  subscriptions?: Partial<SubscriptionLimits>;
  /** Requests in flight per token, and the body limit of one (defaults in request-limits.ts). */
  requests?: Partial<RequestLimits>;
  /** Pull pages read ahead and held at most (src/sync/read-ahead.ts; default 32, 0: none). */
  readAheadPages?: number;
}

export interface WebhookOptions {
  /** Run the delivery worker on this instance (every instance may: SKIP LOCKED shares the work). */
  deliver: boolean;
  /** How long one request may take before it counts as failed (WEBHOOK_TIMEOUT_SECONDS). */
  timeoutMs: number;
  /** Refuse receivers on private, loopback and link-local addresses (WEBHOOK_DENY_PRIVATE). */
  denyPrivate: boolean;
  /** How long a delivery is retried (WEBHOOK_RETRY_SECONDS), its backoff, and its cap. */
  retry: RetryPolicy;
  pollMs: number;
  concurrency: number;
  perWebhook: number;
  /** Replaces the HTTP sender (tests). */
  send?: Sender;
}

export const WEBHOOK_DEFAULTS: WebhookOptions = { deliver: true, timeoutMs: 10_000, denyPrivate: false, retry: DEFAULT_RETRY, pollMs: 1000, concurrency: 16, perWebhook: 4 };

/** How long stop() lets work in flight finish unless configured (SHUTDOWN_TIMEOUT_SECONDS). */
export const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 10;

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
  /** Publishes what this instance committed outside a request (an operator command), counted like a request's. */
  publish(events: readonly SyncEvent[]): void;
  start(port?: number, host?: string): Promise<string>;
  stop(): Promise<void>;
}

/** Compares a presented secret with the expected one in constant time. */
function sameSecret(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function buildApp(opts: AppOptions): App {
  const onError = (message: string, error: unknown) => (opts.logger ? opts.logger.error({ err: error }, message) : console.error(message, error));
  const bus = opts.bus ?? createEventBus();
  const limits = opts.limits ?? DEFAULT_LIMITS;
  // A full batch of the largest changes, when that is less than the memory bound's 4 MiB.
  const requestLimits: RequestLimits = {
    ...DEFAULT_REQUEST_LIMITS,
    maxBodyBytes: Math.min(DEFAULT_REQUEST_LIMITS.maxBodyBytes, limits.maxBatch * limits.maxChangeBytes),
    ...opts.requests,
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
  };
  const maxBodyBytes = requestLimits.maxBodyBytes;
  const limiter = requestLimiter(requestLimits);
  const holdTimeoutSeconds = opts.holdTimeoutSeconds ?? DEFAULT_HOLD_TIMEOUT_SECONDS;
  const readAhead = createReadAhead(opts.readAheadPages ?? 32);
  const endpoint = '/graphql';
  const auth = authenticator(opts.db, { ...opts.auth, endpoint, onError: (error) => onError('authentication failed', error) });
  const closing = new AbortController();
  // Every live subscription listens for it: lift the 10-listener leak warning.
  setMaxListeners(0, closing.signal);
  const flushIntervalSeconds = opts.flushIntervalSeconds ?? 30;
  const shutdownTimeoutMs = (opts.shutdownTimeoutSeconds ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS) * 1000;
  const metrics = createMetrics({ db: opts.db, openSockets: () => sockets.wss.clients.size, onError: (error) => onError('metrics scrape failed', error) });
  // What happened, at info (flushes that forced, released runs, refusals, tokens): with a logger only.
  const activity = opts.logger ? activityLog(opts.logger) : null;
  // Everything this instance commits is published here (never what the bus brings from other instances).
  const publish = (events: readonly SyncEvent[], outboxed?: boolean) => {
    metrics.published(events);
    activity?.published(events);
    bus.publish(events);
    // Committed with its outbox rows: this instance can send them at once. A use-case that knows
    // it wrote none (no webhook wants its events) wakes nothing: each wake is a dispatch
    // transaction and a claim, which the write path would otherwise pay for on every request.
    if (outboxed ?? events.some(isWebhookEvent)) webhookWorker?.wake();
  };
  const observer: SyncObserver = {
    submitted: (results) => {
      metrics.observer.submitted(results);
      activity?.submitted(results);
    },
    flushed: (result) => {
      metrics.observer.flushed(result);
      activity?.flushed('mutation', result);
    },
    tokenCreated: (token, by) => activity?.tokenCreated(token, by),
  };
  const webhookOptions: WebhookOptions = { ...WEBHOOK_DEFAULTS, ...opts.webhooks, retry: { ...DEFAULT_RETRY, ...opts.webhooks?.retry } };
  let webhookWorker: WebhookWorker | null = null;
  const assets = staticAssets(opts.dashboardDir);
  const corsOrigins = new Set(opts.corsOrigins ?? []);
  const subscriptionCaps = subscriptionLimits({ ...DEFAULT_SUBSCRIPTION_LIMITS, ...opts.subscriptions });
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: endpoint,
    graphiql: opts.graphiql === false ? false : { subscriptionsProtocol: 'WS' },
    renderGraphiQL: assets.renderGraphiQL,
    // Only configured origins get CORS headers, and no credentials (tokens are bearer headers,
    // not cookies); yoga's default would echo every origin with Allow-Credentials.
    cors: corsOrigins.size === 0 ? false : (request) => (corsOrigins.has(request.headers.get('origin') ?? '') ? { credentials: false, methods: ['GET', 'POST'] } : false),
    landingPage: false,
    // Ours (bodyLimit, below): yoga's counts every body through a stream, even one whose length is declared.
    maxRequestBodySize: false,
    logging: opts.logger ?? 'warn',
    // Masked as yoga masks, but a database that cannot be reached is SERVICE_UNAVAILABLE (503).
    maskedErrors: { maskError },
    // Authenticated per request and per socket operation, so a revoked token stops at once.
    context: async (initial): Promise<Context> => ({
      db: opts.db,
      principal: await auth.principal(initial),
      limits,
      holdTimeoutSeconds,
      readAhead,
      publish,
      pubsub: bus.pubsub,
      closing: closing.signal,
      observer,
    }),
    plugins: [
      graphiqlHeaders(),
      auth.plugin,
      ...hardeningPlugins(opts.hardening),
      subscriptionCaps,
      useRawJson(),
      // Last: yoga gives its onRequestParse the parser its own plugins chose.
      bodyLimit(maxBodyBytes),
    ],
  });
  const requests = requestTracker();
  // /health: the process serves. /ready: it can reach its database and is not shutting down (for
  // load balancers). /metrics: Prometheus text format.
  const connectionLimits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connections };
  // Keep idle HTTP connections longer than the clients and proxies in front of us do (load
  // balancers commonly idle out at 60 s): with Node's default of 5 s the server closes a pooled
  // connection just as a client, whose event loop was busy, reuses it ("other side closed"). The
  // headers of a request must come within seconds, though (slowloris): connections.ts.
  const server = createServer(serverTimeouts(connectionLimits), (req, res) => {
    requests.add(res);
    metrics.timeRequest(req, res);
    if (assets.serve(req, res)) return;
    if (req.method === 'GET' && req.url === '/metrics') {
      // With a metrics token set, a scraper must send it (Prometheus: authorization.credentials).
      if (opts.metricsToken && !sameSecret(req.headers.authorization ?? '', `Bearer ${opts.metricsToken}`)) {
        res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer' });
        res.end('metrics need the metrics token\n');
        return;
      }
      void metrics.respond(res);
      return;
    }
    if (req.method === 'GET' && (req.url === '/health' || req.url === '/ready')) {
      // Ready: the database answers and the event bus (Redis, when configured) is connected.
      const check: Promise<{ status: string; eventBus?: string }> =
        req.url === '/health'
          ? Promise.resolve({ status: 'ok' })
          : requests.draining
            ? Promise.resolve({ status: 'draining' })
            : databaseAnswers(opts.db).then((ok) => (!ok ? { status: 'unavailable' } : bus.healthy() ? { status: 'ok' } : { status: 'unavailable', eventBus: 'unreachable' }));
      void check.then((body) => {
        res.writeHead(body.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
      return;
    }
    // GraphQL requests count against their token's bound before their body is read.
    if (!limiter.admit(req, res)) return;
    void yoga(req, res);
  });
  limitConnections(server, connectionLimits);
  const sockets = attachWebSocket(server, yoga, {
    keepAliveMs: opts.socket?.keepAliveMs ?? 12_000,
    connectionInitWaitTimeoutMs: opts.socket?.connectionInitWaitTimeoutMs ?? 3_000,
    maxPayloadBytes: maxBodyBytes,
    authenticate: async (connection) => {
      const outcome = await auth.socket(connection);
      if ('refuse' in outcome) activity?.socketRefused(outcome.refuse);
      return outcome;
    },
    revoked: SOCKET_REFUSALS.revoked,
    allowedOrigins: [...corsOrigins],
    // Counted under one reason (not per origin: a stranger could vary it without end).
    onOriginRefused: () => activity?.socketRefused({ code: ORIGIN_REFUSAL.status, reason: ORIGIN_REFUSAL.message }),
    maskError: (error) => maskError(error, 'Unexpected error.') as GraphQLError,
    onClientComplete: subscriptionCaps.completedByClient,
  });
  // A revoked token's sockets close at once, whichever instance revoked it (the bus spans them).
  const revocations = bus.pubsub.subscribe('tokenRevoked');
  // A reassigned token's cached lookup goes at once too: its next request sees its new subset.
  const reassignments = bus.pubsub.subscribe('tokenSubsetChanged');
  // In case a revocation or reassignment event was lost: recent ones, announced again to this instance.
  const revocationSweep = startRevocationSweep(opts.db, {
    intervalSeconds: opts.auth?.revocationSweepSeconds ?? 10,
    announce: (events) => events.forEach((e) => (e.type === 'tokenRevoked' ? bus.pubsub.publish('tokenRevoked', e) : bus.pubsub.publish('tokenSubsetChanged', e))),
    onError: (error) => onError('revocation sweep failed', error),
  });
  void (async () => {
    // Read at once, event by event: this subscriber never falls behind (SubscriptionEnd).
    for await (const e of revocations) {
      if (e instanceof SubscriptionEnd) continue;
      auth.forget(e.tokenId);
      sockets.closeToken(e.tokenId);
    }
  })();
  void (async () => {
    for await (const e of reassignments) if (!(e instanceof SubscriptionEnd)) auth.forget(e.tokenId);
  })();
  let flusher: Flusher | null = null;
  let stopped: Promise<void> | null = null;

  /**
   * Graceful stop: refuse new connections at once (/ready answers 503 from now on), let in-flight
   * requests, socket operations and a running flush finish within the drain timeout, then close
   * every socket with 1001, cut what is left (event streams, work past the timeout) and close the
   * bus once it has sent what was published. The database belongs to the caller.
   */
  async function shutdown(): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    revocationSweep.stop();
    // Live subscriptions end now (SSE streams finish, sockets get `complete`), so the drain below
    // can wait for every request: a mutation sent with accept: text/event-stream included.
    closing.abort();
    let timer: NodeJS.Timeout | undefined;
    // Each kind of work by name, so a shutdown that has to cut work off says which.
    const waits: [string, Promise<unknown> | undefined][] = [['requests', requests.drain()], ['socket operations', sockets.drain()], ['the backlog flush', flusher?.stop()], ['webhook deliveries', webhookWorker?.stop()], ['pages read ahead', readAhead.drain()]];
    const late = new Set(waits.filter(([, p]) => p).map(([what]) => what));
    const drained = await Promise.race([
      Promise.all(waits.map(([what, p]) => p?.then(() => late.delete(what)))).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), shutdownTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (!drained) {
      const requestsLeft = late.has('requests') ? ` (${requests.pending().slice(0, 5).join(', ')})` : '';
      (opts.logger ?? console).warn(`shutdown: work still in flight after ${shutdownTimeoutMs / 1000} s is cut off: ${[...late].join(', ')}${requestsLeft}`);
    }
    await revocations.return?.();
    await reassignments.return?.();
    await sockets.close();
    server.closeAllConnections();
    await closed;
    await bus.flushed();
    await bus.close();
  }

  return {
    yoga,
    server,
    bus,
    publish,
    start: async (port = 4000, host = '127.0.0.1') => {
      await bus.ready;
      const url = await new Promise<string>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const { port: actual } = server.address() as AddressInfo;
          resolve(`http://${host.includes(':') ? `[${host}]` : host}:${actual}${yoga.graphqlEndpoint}`);
        });
      });
      if (webhookOptions.deliver) {
        webhookWorker = startWebhookWorker(opts.db, {
          send: webhookOptions.send ?? webhookSender({ timeoutMs: webhookOptions.timeoutMs, denyPrivate: webhookOptions.denyPrivate }),
          // A claimed delivery stays this instance's for longer than its request may take.
          leaseMs: webhookOptions.timeoutMs + 5000,
          retry: webhookOptions.retry,
          pollMs: webhookOptions.pollMs,
          concurrency: webhookOptions.concurrency,
          perWebhook: webhookOptions.perWebhook,
          onError: (error) => onError('webhook delivery failed', error),
          onFailed: (failed) => activity?.webhookDeliveryFailed(failed),
        });
      }
      if (flushIntervalSeconds > 0) {
        flusher = startBacklogFlusher(opts.db, {
          intervalSeconds: flushIntervalSeconds,
          holdTimeoutSeconds,
          publish,
          onError: (error) => onError('backlog flush failed', error),
          onRun: (result, ms) => {
            metrics.flushed('periodic', result.forcedApplied);
            activity?.flushed('periodic', result, ms);
          },
        });
      }
      return url;
    },
    stop: () => (stopped ??= shutdown()),
  };
}
