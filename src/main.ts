import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { openDatabase } from './db/client.js';
import { postgresNotifier } from './db/notify.js';
import { createEventBus } from './graphql/pubsub.js';
import { buildApp } from './server/app.js';
import { flushBacklog } from './sync/flush-backlog.js';

/** The only place that reads the environment and the command line. */
const env = process.env;
// Structured JSON logs; LOG_LEVEL picks how much (pino levels: debug, info, warn, error).
const logger = pino({ name: 'entity-sync', level: env.LOG_LEVEL ?? 'info' });
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'older-than': { type: 'string' } },
});
const holdTimeoutSeconds = Number(env.HOLD_TIMEOUT_SECONDS ?? 300);
const database = await openDatabase(env.DATABASE_URL ? { url: env.DATABASE_URL } : { dataDir: env.DATA_DIR ?? './data' });

if (positionals[0] === 'flush') {
  // `npm run flush [-- --older-than SECONDS]`: force held changes now (default: the hold timeout).
  const olderThanSeconds = values['older-than'] !== undefined ? Number(values['older-than']) : holdTimeoutSeconds;
  if (!Number.isFinite(olderThanSeconds) || olderThanSeconds < 0) {
    console.error('--older-than takes a number of seconds, 0 or more');
    process.exit(2);
  }
  const { forced, events } = await flushBacklog(database.db, { olderThanSeconds });
  // On a shared Postgres, the running instances' listeners hear what the command forced.
  if (database.sql && events.length > 0) {
    const bus = createEventBus({ notifier: postgresNotifier(database.sql), onError: (e) => logger.error({ err: e }, 'event bus') });
    await bus.ready;
    bus.publish(events);
    await bus.flushed();
    await bus.close();
  }
  const released = forced.reduce((n, r) => n + r.released.length, 0);
  console.log(`forced ${forced.length} held change(s), released ${released} successor(s)`);
  await database.close();
  process.exit(0);
} else if (positionals.length > 0) {
  console.error(`unknown command "${positionals[0]}"; commands: flush`);
  process.exit(2);
}

const bus = createEventBus(database.sql ? { notifier: postgresNotifier(database.sql), onError: (e) => logger.error({ err: e }, 'event bus') } : {});
const app = buildApp({
  db: database.db,
  bus,
  logger,
  socket: { keepAliveMs: Number(env.SOCKET_KEEPALIVE_SECONDS ?? 12) * 1000 },
  graphiql: env.GRAPHIQL !== 'false',
  holdTimeoutSeconds,
  flushIntervalSeconds: Number(env.FLUSH_INTERVAL_SECONDS ?? 30),
});
const url = await app.start(Number(env.PORT ?? 4000), env.HOST ?? '127.0.0.1');
console.log(`entity-sync listening on ${url} (${database.kind === 'pglite' ? `PGlite in ${env.DATA_DIR ?? './data'}` : 'Postgres'})`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping`);
  await app.stop();
  await database.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
