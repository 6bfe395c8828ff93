/**
 * One server in a process of its own, started by bench/run.ts for the batch, live and load phases,
 * so that its memory (per open socket, in the live phase) and its CPU time (`cpu`: per change,
 * in the batch phase) are read on a process that does nothing else (the clients and subscribers
 * live in other processes):
 * - `entity-sync`: buildApp on the bench database with the production event bus over Postgres
 *   LISTEN/NOTIFY, as src/main.ts wires it when DATABASE_URL is set (a second instance beside
 *   the one in the parent process);
 * - `yoga-pubsub`: the bare graphql-yoga + graphql-ws + createPubSub server (bench/yoga-pubsub.ts).
 */
import { openDatabase, type Database } from '../src/db/client.js';
import { postgresNotifier } from '../src/db/notify.js';
import { redisNotifier } from '../src/db/redis-notify.js';
import { createEventBus } from '../src/graphql/pubsub.js';
import { buildApp, type App } from '../src/server/app.js';
import { memory, serveCommands, type LiveServerCommand, type LiveServerReply } from './lib.js';
import { startPubSubServer } from './yoga-pubsub.js';

let stop: (() => Promise<void>) | undefined;

/**
 * entity-sync as src/main.ts wires it for a real Postgres (also used in process by bench/profile.ts):
 * events over LISTEN/NOTIFY, or over Redis with `redisUrl` (EVENT_BUS); `deliver: false` leaves
 * webhook deliveries to other instances.
 */
export async function startEntitySync(databaseUrl: string, opts: { redisUrl?: string; deliver?: boolean } = {}): Promise<{ url: string; stop(): Promise<void> }> {
  const database: Database = await openDatabase({ url: databaseUrl, migrate: false });
  const notifier = opts.redisUrl ? redisNotifier(opts.redisUrl) : postgresNotifier(database.sql!);
  const bus = createEventBus({ notifier, onError: (e) => console.error('event bus', e) });
  const app: App = buildApp({ db: database.db, bus, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' }, webhooks: { deliver: opts.deliver ?? true },
    // 1,000 sockets from this one address, all anonymous: as behind a proxy whose devices have their own
    // tokens, the per-address and per-token caps (issue 17) are lifted, or they refuse the sockets.
    connections: { maxPerAddress: 0 }, subscriptions: { perToken: 100_000 } });
  const url = await app.start(0, '127.0.0.1');
  return {
    url,
    stop: async () => {
      await app.stop();
      await database.close();
    },
  };
}

async function start(kind: 'entity-sync' | 'yoga-pubsub', databaseUrl: string, opts: { redisUrl?: string; deliver?: boolean }): Promise<string> {
  const server = kind === 'yoga-pubsub' ? await startPubSubServer() : await startEntitySync(databaseUrl, opts);
  stop = server.stop;
  return server.url;
}

async function handle(msg: LiveServerCommand): Promise<LiveServerReply> {
  switch (msg.cmd) {
    case 'start':
      return { ok: true, url: await start(msg.kind, msg.databaseUrl, { ...(msg.redisUrl ? { redisUrl: msg.redisUrl } : {}), ...(msg.deliver !== undefined ? { deliver: msg.deliver } : {}) }) };
    case 'memory':
      return { ok: true, memory: memory() };
    case 'cpu':
      return { ok: true, cpu: process.cpuUsage() };
    case 'exit':
      await stop?.();
      return { ok: true };
  }
}

// Forked with an IPC channel (bench/run.ts), this module is the server's process.
if (process.send) serveCommands(handle);
