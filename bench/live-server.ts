/**
 * One live-events server in a process of its own, started by bench/run.ts for the live phase,
 * so that the memory each server needs per open socket is read on a process that does nothing
 * else (the subscribers live in bench/subscribers.ts):
 * - `entity-sync`: buildApp on the bench database with the production event bus over Postgres
 *   LISTEN/NOTIFY, as src/main.ts wires it when DATABASE_URL is set (a second instance beside
 *   the one in the parent process);
 * - `yoga-pubsub`: the bare graphql-yoga + graphql-ws + createPubSub server (bench/yoga-pubsub.ts).
 */
import { openDatabase, type Database } from '../src/db/client.js';
import { postgresNotifier } from '../src/db/notify.js';
import { createEventBus } from '../src/graphql/pubsub.js';
import { buildApp, type App } from '../src/server/app.js';
import { memory, serveCommands, type LiveServerCommand, type LiveServerReply } from './lib.js';
import { startPubSubServer } from './yoga-pubsub.js';

let stop: (() => Promise<void>) | undefined;

async function start(kind: 'entity-sync' | 'yoga-pubsub', databaseUrl: string): Promise<string> {
  if (kind === 'yoga-pubsub') {
    const server = await startPubSubServer();
    stop = server.stop;
    return server.url;
  }
  const database: Database = await openDatabase({ url: databaseUrl, migrate: false });
  const bus = createEventBus({ notifier: postgresNotifier(database.sql!), onError: (e) => console.error('event bus', e) });
  const app: App = buildApp({ db: database.db, bus, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
  const url = await app.start(0, '127.0.0.1');
  stop = async () => {
    await app.stop();
    await database.close();
  };
  return url;
}

async function handle(msg: LiveServerCommand): Promise<LiveServerReply> {
  switch (msg.cmd) {
    case 'start':
      return { ok: true, url: await start(msg.kind, msg.databaseUrl) };
    case 'memory':
      return { ok: true, memory: memory() };
    case 'exit':
      await stop?.();
      return { ok: true };
  }
}

serveCommands(handle);
