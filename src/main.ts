import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { isDroppedConnection, openDatabase } from './db/client.js';
import { databaseOpenProblem } from './db/open-errors.js';
import { postgresNotifier } from './db/notify.js';
import { BrokerUnavailableError, redisNotifier } from './db/redis-notify.js';
import type { HardeningOptions } from './server/hardening.js';
import type { ConnectionLimits } from './server/connections.js';
import { DEFAULT_HOLD_TIMEOUT_SECONDS } from './sync/flush-backlog.js';
import { createFirstAdminToken } from './sync/tokens.js';
import { isRole, ROLES } from './core/auth.js';
import { FolderLockedError } from './db/folder-lock.js';
import { runCli } from './cli/run.js';
import { DEFAULT_LIMITS, type Limits } from './core/types.js';
import { DEFAULT_RETRY } from './core/webhooks.js';

/** The only place that reads the environment and the command line. */
const env = process.env;
// Structured JSON logs on stdout; LOG_LEVEL picks how much (pino levels: debug, info, warn, error).
// Written through process.stdout, not pino's default sonic-boom: on a pipe whose reader is gone
// sonic-boom's exit flush retries the EPIPE every 100 ms for ever, so the process never exits;
// process.stdout queues what a full pipe cannot take and drops it at exit. A log pipe that broke
// (EPIPE) or failed otherwise is no reason to stop serving: its errors are ignored.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
const logger = pino({ name: 'entity-sync', level: env.LOG_LEVEL ?? 'info' }, process.stdout);
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    'older-than': { type: 'string' },
    dataset: { type: 'string' },
    role: { type: 'string' },
    name: { type: 'string' },
    device: { type: 'string' },
    datasets: { type: 'string' },
  },
});
function fail(message: string): never {
  console.error(message);
  process.exit(2);
}
const anonymousRole = env.ANONYMOUS_ROLE || null;
if (anonymousRole !== null && !isRole(anonymousRole)) fail(`ANONYMOUS_ROLE takes one of ${ROLES.join(', ')}, not "${anonymousRole}"`);
/** A number of seconds (0 or more, fractions allowed) from `raw`; undefined when unset, so the defaults stay where they are defined. */
function seconds(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) fail(`${name} takes a number of seconds, 0 or more, not "${raw}"`);
  return n;
}
const holdTimeoutSeconds = seconds('HOLD_TIMEOUT_SECONDS', env.HOLD_TIMEOUT_SECONDS) ?? DEFAULT_HOLD_TIMEOUT_SECONDS;
// How long SIGTERM waits for in-flight requests and transactions before it cuts them off.
const shutdownTimeoutSeconds = seconds('SHUTDOWN_TIMEOUT_SECONDS', env.SHUTDOWN_TIMEOUT_SECONDS);
const flushIntervalSeconds = seconds('FLUSH_INTERVAL_SECONDS', env.FLUSH_INTERVAL_SECONDS);
const keepAliveSeconds = seconds('SOCKET_KEEPALIVE_SECONDS', env.SOCKET_KEEPALIVE_SECONDS);
const host = env.HOST ?? '127.0.0.1';
/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: addresses only this machine reaches. */
const loopback = (h: string) => h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(h);
// Every role writes (a collector submits, a reviewer resolves, an admin makes tokens): a service
// that lets requests without a token act as one is for a developer's own machine, never a network.
if (anonymousRole !== null && !loopback(host)) {
  fail(
    `ANONYMOUS_ROLE=${anonymousRole} lets every request without a token act as ${anonymousRole}: it is for local development only and needs HOST on loopback (127.0.0.1, ::1 or localhost), not "${host}". Unset ANONYMOUS_ROLE and use API tokens (npm run token -- create) to listen there`,
  );
}
const port = env.PORT ? Number(env.PORT) : 4000;
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`PORT takes a port number (0 for any free one), not "${env.PORT}"`);
/** CORS_ORIGINS: comma-separated browser origins allowed to call the API (none by default). */
function origins(raw: string | undefined): string[] {
  const list = (raw ?? '').split(',').map((o) => o.trim()).filter((o) => o.length > 0);
  for (const o of list) {
    let origin: string | null = null;
    try {
      origin = new URL(o).origin;
    } catch {
      // reported below
    }
    if (origin !== o) fail(`CORS_ORIGINS takes origins like https://dash.example.org (scheme, host, optional port, no path), not "${o}"`);
  }
  return list;
}
const corsOrigins = origins(env.CORS_ORIGINS);
// A stray rejection from the driver for a dropped connection is logged; anything else still
// crashes the process (rethrown, it becomes an uncaught exception), as Node does by default.
process.on('unhandledRejection', (reason) => {
  if (!isDroppedConnection(reason)) throw reason;
  logger.warn({ err: reason }, 'a database connection dropped under a query no one awaited; the driver reconnects');
});
// `npm run token -- …`, `npm run flush`: through the service that owns a PGlite folder, else here (src/cli/run.ts).
if (positionals.length > 0) {
  process.exit(await runCli({ positionals, values }, { databaseUrl: env.DATABASE_URL || null, dataDir: env.DATA_DIR ?? './data', holdTimeoutSeconds }));
}
// PGlite's buffer cache (shared_buffers), a Postgres size; src/db/client.ts has the default and why.
const sharedBuffers = env.PGLITE_SHARED_BUFFERS || undefined;
if (sharedBuffers !== undefined && !/^[1-9]\d*(kB|MB|GB)$/.test(sharedBuffers)) fail(`PGLITE_SHARED_BUFFERS takes a size like 32MB or 1GB, not "${sharedBuffers}"`);
const database = await openDatabase(env.DATABASE_URL ? { url: env.DATABASE_URL } : { dataDir: env.DATA_DIR ?? './data', owner: 'server', ...(sharedBuffers ? { sharedBuffers } : {}) }).catch((error: unknown) => {
  // A Postgres that cannot be opened (no such database, nothing on the port, refused
  // credentials) is one sentence saying what to do, not the driver's stack.
  const problem = env.DATABASE_URL ? databaseOpenProblem(error, env.DATABASE_URL) : null;
  if (problem) {
    console.error(`entity-sync cannot start: ${problem}`);
    process.exit(1);
  }
  if (!(error instanceof FolderLockedError)) throw error;
  // Never a second writer beside the owner: it refuses before PGlite opens a file.
  console.error(
    `${error.message}. A PGlite data folder has one owner at a time: stop that process first, run the operator commands (npm run token, npm run flush) beside it, or use DATABASE_URL to run several instances on one Postgres.`,
  );
  process.exit(1);
});

// An existing folder that let other local users in (an earlier release wrote it 0755/0666) is
// owner-only now (src/db/folder-permissions.ts); say so once, with how much it had to change.
if (database.permissions && database.permissions.tightened > 0) {
  logger.warn(
    { event: 'dataFolderTightened', dataDir: env.DATA_DIR ?? './data', tightened: database.permissions.tightened },
    `the data folder let other users read or write ${database.permissions.tightened} of its files and folders: made owner-only (folders 0700, files 0600)`,
  );
}
if (database.permissions && database.permissions.untouchable > 0) {
  logger.error(
    { event: 'dataFolderUntouchable', dataDir: env.DATA_DIR ?? './data', untouchable: database.permissions.untouchable },
    `${database.permissions.untouchable} files or folders of the data folder belong to another user and stay readable or writable by others: chown the folder to the service's user`,
  );
}

// Loaded only to serve: an operator command (above) needs none of the GraphQL and HTTP stack.
const [{ createEventBus }, { buildApp, DEFAULT_SHUTDOWN_TIMEOUT_SECONDS }, { startControlChannel }, { answerCommand }] = await Promise.all([
  import('./graphql/pubsub.js'),
  import('./server/app.js'),
  import('./server/control.js'),
  import('./cli/commands.js'),
]);
/**
 * Events across instances: through Redis when EVENT_BUS names one, else Postgres LISTEN/NOTIFY;
 * in process on PGlite (one process owns it). A Redis outage is logged once each way and fails
 * /ready meanwhile; commits go on (their webhooks go through the outbox, not the bus).
 */
const eventBusUrl = env.EVENT_BUS || null;
if (eventBusUrl !== null && !/^rediss?:\/\//.test(eventBusUrl)) fail(`EVENT_BUS takes a redis:// or rediss:// URL, not "${eventBusUrl.replace(/\/\/[^@/]*@/, '//…@')}"`);
const busName = eventBusUrl?.replace(/\/\/[^@/]*@/, '//…@');
const notifier = eventBusUrl
  ? redisNotifier(eventBusUrl, {
      onDown: (error) => logger.error({ err: error, eventBus: busName }, 'event bus: Redis is unreachable; events do not reach other instances until it is back, and /ready answers 503'),
      onUp: () => logger.info({ eventBus: busName }, 'event bus: Redis is reachable'),
    })
  : database.sql
    ? postgresNotifier(database.sql)
    : undefined;
const bus = createEventBus(
  notifier
    ? {
        notifier,
        // An outage is logged when it begins; each event published meanwhile is not logged again.
        onError: (e) => (e instanceof BrokerUnavailableError ? logger.debug({ err: e }, 'event bus: an event was not carried') : logger.error({ err: e }, 'event bus')),
      }
    : {},
);
/** A positive integer from the environment, or undefined when unset. */
function positiveInteger(name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) fail(`${name} takes a positive integer, not "${raw}"`);
  return n;
}
// INTROSPECTION=false refuses __schema/__type; MAX_QUERY_* override the document limits of
// src/server/hardening.ts and MAX_QUERY_COST the cost limit of the core's Limits (defaults there).
const hardening: Partial<HardeningOptions> = { introspection: env.INTROSPECTION !== 'false' };
for (const [key, name] of [
  ['maxDepth', 'MAX_QUERY_DEPTH'],
  ['maxAliases', 'MAX_QUERY_ALIASES'],
  ['maxTokens', 'MAX_QUERY_TOKENS'],
  ['maxDirectives', 'MAX_QUERY_DIRECTIVES'],
] as const) {
  const n = positiveInteger(name);
  if (n !== undefined) hardening[key] = n;
}
// Webhook deliveries: how long one request may take, how long a delivery is retried, and whether
// receivers on private or loopback addresses are refused (checked on the address each delivery connects to).
const webhookTimeoutSeconds = seconds('WEBHOOK_TIMEOUT_SECONDS', env.WEBHOOK_TIMEOUT_SECONDS);
const webhookRetrySeconds = seconds('WEBHOOK_RETRY_SECONDS', env.WEBHOOK_RETRY_SECONDS);
const denyPrivate = env.WEBHOOK_DENY_PRIVATE || 'false';
if (denyPrivate !== 'true' && denyPrivate !== 'false') fail(`WEBHOOK_DENY_PRIVATE takes true or false, not "${denyPrivate}"`);
const webhooks = {
  denyPrivate: denyPrivate === 'true',
  ...(webhookTimeoutSeconds !== undefined ? { timeoutMs: Math.max(1, webhookTimeoutSeconds * 1000) } : {}),
  ...(webhookRetrySeconds !== undefined ? { retry: { ...DEFAULT_RETRY, retryForMs: webhookRetrySeconds * 1000 } } : {}),
};
// Connection caps and timeouts (src/server/connections.ts has the defaults and why).
const connections: Partial<ConnectionLimits> = {};
const maxConnections = positiveInteger('MAX_CONNECTIONS');
if (maxConnections !== undefined) connections.maxConnections = maxConnections;
const perAddressRaw = env.MAX_CONNECTIONS_PER_ADDRESS;
if (perAddressRaw !== undefined && perAddressRaw !== '') {
  const n = Number(perAddressRaw);
  if (!Number.isInteger(n) || n < 0) fail(`MAX_CONNECTIONS_PER_ADDRESS takes a whole number, 0 or more (0: no cap per address), not "${perAddressRaw}"`);
  connections.maxPerAddress = n;
}
for (const [key, name] of [
  ['headersTimeoutMs', 'HEADERS_TIMEOUT_SECONDS'],
  ['requestTimeoutMs', 'REQUEST_TIMEOUT_SECONDS'],
  ['idleTimeoutMs', 'IDLE_TIMEOUT_SECONDS'],
] as const) {
  const n = seconds(name, env[name]);
  if (n === 0) fail(`${name} takes a number of seconds above 0, not "${env[name]}"`);
  if (n !== undefined) connections[key] = n * 1000;
}
const limits: Limits = { ...DEFAULT_LIMITS, maxQueryComplexity: positiveInteger('MAX_QUERY_COST') ?? DEFAULT_LIMITS.maxQueryComplexity };
// Live subscriptions per socket and per token, requests in flight per token and the body limit
// (defaults in src/server/subscription-limits.ts and request-limits.ts).
const perSocket = positiveInteger('MAX_SUBSCRIPTIONS_PER_SOCKET');
const perTokenSubscriptions = positiveInteger('MAX_SUBSCRIPTIONS_PER_TOKEN');
const perTokenRequests = positiveInteger('MAX_REQUESTS_PER_TOKEN');
const maxBodyBytes = positiveInteger('MAX_BODY_BYTES');
const app = buildApp({
  db: database.db,
  subscriptions: { ...(perSocket !== undefined ? { perSocket } : {}), ...(perTokenSubscriptions !== undefined ? { perToken: perTokenSubscriptions } : {}) },
  requests: { ...(perTokenRequests !== undefined ? { perToken: perTokenRequests } : {}), ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}) },
  bus,
  logger,
  ...(keepAliveSeconds !== undefined ? { socket: { keepAliveMs: keepAliveSeconds * 1000 } } : {}),
  graphiql: env.GRAPHIQL !== 'false',
  hardening,
  limits,
  holdTimeoutSeconds,
  // PGlite runs one statement at a time: a page read ahead overlaps nothing there, it only queues
  // before other requests' statements.
  ...(database.kind === 'pglite' ? { readAheadPages: 0 } : {}),
  ...(flushIntervalSeconds !== undefined ? { flushIntervalSeconds } : {}),
  ...(shutdownTimeoutSeconds !== undefined ? { shutdownTimeoutSeconds } : {}),
  auth: { anonymousRole },
  metricsToken: env.METRICS_TOKEN || null,
  corsOrigins,
  webhooks,
  connections,
});
// A database with no token yet (a fresh PGlite folder or Postgres database) has no way in: make
// the first admin token and show it once. Of instances starting together, one makes it.
const firstAdminSecret = await createFirstAdminToken(database.db);
if (anonymousRole) logger.warn({ anonymousRole, host }, `requests without a token act as ${anonymousRole} (ANONYMOUS_ROLE): for local development only, so the service listens on loopback only`);
const url = await app.start(port, host);
// The owner of a PGlite folder takes the operator commands (its lock file tells the CLI where).
const control = database.folder ? await startControlChannel((command) => answerCommand(command, { db: database.db, publish: app.publish, holdTimeoutSeconds })) : null;
if (control) database.folder!.advertise(control.address);
// One write: whatever reads the output (a supervisor, a test) sees the URL and the first token together.
const listening = `entity-sync listening on ${url} (${database.kind === 'pglite' ? `PGlite in ${env.DATA_DIR ?? './data'}` : 'Postgres'})`;
console.log(firstAdminSecret ? `${listening}\nadmin token (shown once, keep it; send as "Authorization: Bearer <token>"):\n${firstAdminSecret}` : listening);
// What starting left behind (on a new PGlite folder, initdb's closed WebAssembly instance: about
// 430 MB) stays resident until V8's next full collection, which an idle service may not make for
// hours. `npm start` runs node with --expose-gc so that one happens a moment after the start.
const collect = (globalThis as { gc?: () => void }).gc;
if (collect) setTimeout(collect, 1000).unref();

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  // The drain is bounded by SHUTDOWN_TIMEOUT_SECONDS; closing after it takes a moment. Should
  // anything hang past both (a database that never answers its close), the process still ends.
  setTimeout(() => {
    logger.error('shutdown did not finish in time: exiting');
    process.exit(1);
  }, ((shutdownTimeoutSeconds ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS) + 2) * 1000).unref();
  // Graceful: app.stop() refuses new connections and lets in-flight work finish (bounded by
  // SHUTDOWN_TIMEOUT_SECONDS) before the database closes under it.
  logger.info({ signal }, 'stopping');
  try {
    // No new operator commands (a CLI run waits, then opens the folder itself); one in flight
    // finishes within the same timeout as the requests. The lock stops naming the control port
    // first: once the listener is closed, another local user could bind that port.
    database.folder?.withdraw();
    await Promise.all([control?.close((shutdownTimeoutSeconds ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS) * 1000), app.stop()]);
    await database.close();
  } catch (error) {
    logger.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
  logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
