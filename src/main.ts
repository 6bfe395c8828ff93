import { openDatabase } from './db/client.js';
import { buildApp } from './server/app.js';

/** The only place that reads the environment. */
const env = process.env;
const database = await openDatabase(env.DATABASE_URL ? { url: env.DATABASE_URL } : { dataDir: env.DATA_DIR ?? './data' });
const app = buildApp({ db: database.db, graphiql: env.GRAPHIQL !== 'false' });
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
