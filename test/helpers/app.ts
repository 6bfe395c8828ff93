import { afterAll, beforeAll } from 'vitest';
import type { Limits } from '../../src/core/types.js';
import type { Database } from '../../src/db/client.js';
import { buildApp, type App, type AppOptions } from '../../src/server/app.js';
import type { AuthOptions } from '../../src/server/auth.js';
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
  /** The same with `Authorization: Bearer <token>`. */
  gqlAs<T = any>(token: string, query: string, variables?: Record<string, unknown>): Promise<GqlResponse<T>>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  limits?: Limits;
  /** How long a change is held before the periodic flush forces it (server default when absent). */
  holdTimeoutSeconds?: number;
  /** Seconds between periodic backlog flushes, fractions allowed; 0 disables it (server default when absent). */
  flushIntervalSeconds?: number;
  /** Default: anonymous requests act as admin, so tests of other rules need no token. */
  auth?: AuthOptions;
  /** Document limits and introspection (server defaults when absent). */
  hardening?: AppOptions['hardening'];
  /** Browser origins that get CORS headers (none when absent). */
  corsOrigins?: readonly string[];
  /** Webhook delivery settings (server defaults when absent). */
  webhooks?: AppOptions['webhooks'];
  /** Connection caps and timeouts (server defaults when absent). */
  connections?: AppOptions['connections'];
  /** Subscriptions per socket and token (server defaults when absent). */
  subscriptions?: AppOptions['subscriptions'];
  /** Requests in flight per token and the body limit (server defaults when absent). */
  requests?: AppOptions['requests'];
}

async function post(url: string, headers: Record<string, string>, query: string, variables?: Record<string, unknown>): Promise<GqlResponse> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as GqlResponse;
  return { ...body, status: res.status };
}

/**
 * The test file's server: started before its tests, closed after them. Returned at once and
 * bound late, so a file declares `const t = useApp(); const d = domain(t);` at its top and uses
 * them in its hooks and tests.
 */
export function useApp(opts: TestAppOptions = {}): TestApp {
  let app: TestApp | undefined;
  beforeAll(async () => {
    app = await startTestApp(opts);
  });
  afterAll(async () => {
    await app?.close();
  });
  const started = (): TestApp => {
    if (!app) throw new Error('the test app is not started yet: use it inside hooks and tests');
    return app;
  };
  return {
    get url() {
      return started().url;
    },
    get app() {
      return started().app;
    },
    get database() {
      return started().database;
    },
    get databaseUrl() {
      return started().databaseUrl;
    },
    gql: (query, variables) => started().gql(query, variables),
    gqlAs: (token, query, variables) => started().gqlAs(token, query, variables),
    close: () => started().close(),
  };
}

/** Starts the real server on a free port with a fresh database. */
export async function startTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const database = await freshDatabase();
  const app = buildApp({
    db: database.db,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.holdTimeoutSeconds !== undefined ? { holdTimeoutSeconds: opts.holdTimeoutSeconds } : {}),
    ...(opts.flushIntervalSeconds !== undefined ? { flushIntervalSeconds: opts.flushIntervalSeconds } : {}),
    auth: opts.auth ?? { anonymousRole: 'admin' },
    ...(opts.hardening ? { hardening: opts.hardening } : {}),
    ...(opts.corsOrigins ? { corsOrigins: opts.corsOrigins } : {}),
    ...(opts.webhooks ? { webhooks: opts.webhooks } : {}),
    ...(opts.connections ? { connections: opts.connections } : {}),
    ...(opts.subscriptions ? { subscriptions: opts.subscriptions } : {}),
    ...(opts.requests ? { requests: opts.requests } : {}),
  });
  const url = await app.start(0, '127.0.0.1');
  return {
    url,
    app,
    database,
    ...(database.url ? { databaseUrl: database.url } : {}),
    gql: (query, variables) => post(url, {}, query, variables),
    gqlAs: (token, query, variables) => post(url, { authorization: `Bearer ${token}` }, query, variables),
    close: async () => {
      await app.stop();
      await database.close();
    },
  };
}
