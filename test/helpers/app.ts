import type { Limits } from '../../src/core/types.js';
import type { Database } from '../../src/db/client.js';
import { buildApp, type App } from '../../src/server/app.js';
import { freshDatabase } from './database.js';

export interface GqlResponse<T = any> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

export interface TestApp {
  url: string;
  app: App;
  database: Database;
  /** The test database's postgres:// URL on Postgres (for child processes); absent on PGlite. */
  databaseUrl?: string;
  /** POSTs a GraphQL request over real HTTP to the started server. */
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<GqlResponse<T>>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  limits?: Limits;
  /** How long a change is held before the periodic flush forces it (server default when absent). */
  holdTimeoutSeconds?: number;
  /** Seconds between periodic backlog flushes, fractions allowed; 0 disables it (server default when absent). */
  flushIntervalSeconds?: number;
}

/** Starts the real server on a free port with a fresh database. */
export async function startTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const database = await freshDatabase();
  const app = buildApp({
    db: database.db,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.holdTimeoutSeconds !== undefined ? { holdTimeoutSeconds: opts.holdTimeoutSeconds } : {}),
    ...(opts.flushIntervalSeconds !== undefined ? { flushIntervalSeconds: opts.flushIntervalSeconds } : {}),
  });
  const url = await app.start(0, '127.0.0.1');
  return {
    url,
    app,
    database,
    ...(database.url ? { databaseUrl: database.url } : {}),
    gql: async (query, variables) => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
      const body = (await res.json()) as GqlResponse;
      return { ...body, status: res.status };
    },
    close: async () => {
      await app.stop();
      await database.close();
    },
  };
}
