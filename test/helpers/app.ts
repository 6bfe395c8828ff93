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
  /** POSTs a GraphQL request over real HTTP to the started server. */
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<GqlResponse<T>>;
  close(): Promise<void>;
}

/** Starts the real server on a free port with a fresh database. */
export async function startTestApp(opts: { limits?: Limits } = {}): Promise<TestApp> {
  const database = await freshDatabase();
  const app = buildApp({ db: database.db, ...(opts.limits ? { limits: opts.limits } : {}) });
  const url = await app.start(0, '127.0.0.1');
  return {
    url,
    app,
    database,
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
