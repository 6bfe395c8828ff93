import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { buildApp, type App } from '../../src/server/app.js';
import { createToken } from '../../src/sync/tokens.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { socketClient, waitUntil, type SocketClient } from '../helpers/live.js';

/**
 * Issue 10 item 6: with the database unreachable, a request used to get a 500 text/plain with
 * a DrizzleQueryError, the SQL, the token's hash as a parameter and source paths. Now every
 * failure answers in the GraphQL envelope, masked, with code SERVICE_UNAVAILABLE and HTTP 503:
 * in authentication (before the body is read) and in resolvers. A socket whose connection_init
 * cannot be authenticated closes with 1013 (Try Again Later). On Postgres the test database
 * stops taking connections (`allow_connections false`, its backends terminated) and comes
 * back; on PGlite the database is closed.
 */

const QUERY = '{ datasets { name } }';
/** What must never reach a client: SQL, table and column names, driver classes, source paths, a 64-hex hash. */
const LEAKS = /select|api_tokens|secret_hash|drizzle|postgres|pglite|node_modules|\/work\/|\.ts:\d|[0-9a-f]{64}/i;

let database: Awaited<ReturnType<typeof freshDatabase>>;
/** Needs a token (authentication reads the database first). */
let withTokens: App;
let tokensUrl: string;
/** Anonymous admin: requests reach the resolvers, which read the database. */
let anonymous: App;
let anonymousUrl: string;
let secret: string;
/** A token never used before the outage: its lookup is not in the 5-second token cache. */
let fresh: string;
const sockets: SocketClient[] = [];
let admin: postgres.Sql | null = null;
const dbName = () => new URL(database.url!).pathname.slice(1);

beforeAll(async () => {
  database = await freshDatabase();
  withTokens = buildApp({ db: database.db, flushIntervalSeconds: 0, auth: { anonymousRole: null, revocationSweepSeconds: 60 } });
  anonymous = buildApp({ db: database.db, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin', revocationSweepSeconds: 60 } });
  tokensUrl = await withTokens.start(0, '127.0.0.1');
  anonymousUrl = await anonymous.start(0, '127.0.0.1');
  secret = (await createToken(database.db, { name: 'admin', role: 'admin' })).secret;
  fresh = (await createToken(database.db, { name: 'unused', role: 'admin' })).secret;
  if (backend === 'postgres') admin = postgres(process.env.DATABASE_URL!, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  for (const s of sockets) await s.close().catch(() => {});
  await withTokens?.stop();
  await anonymous?.stop();
  if (admin) {
    await admin.unsafe(`alter database ${dbName()} allow_connections true`);
    await admin.end();
  }
  // PGlite was closed by the test.
  if (backend === 'postgres') await database?.close();
});

async function makeUnreachable(): Promise<void> {
  if (admin) {
    await admin.unsafe(`alter database ${dbName()} allow_connections false`);
    await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${dbName()}`;
    await waitUntil(async () => (await admin!`select 1 from pg_stat_activity where datname = ${dbName()}`).length === 0, 'the connections to be gone');
  } else {
    await database.pglite!.close();
  }
}

async function send(url: string, init: RequestInit & { headers?: Record<string, string> }) {
  const res = await fetch(url, init);
  const body = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', body };
}
const post = (url: string, headers: Record<string, string> = {}) =>
  send(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query: QUERY }) });

/** A 503 in the GraphQL envelope with code SERVICE_UNAVAILABLE, and nothing of the failure's insides. */
function expectUnavailable(r: { status: number; type: string; body: string }): void {
  expect(r.status, r.body).toBe(503);
  expect(r.type).toMatch(/^application\/(graphql-response\+)?json/);
  expect(r.body).not.toMatch(LEAKS);
  const body = JSON.parse(r.body) as { errors: { message: string; extensions: { code: string } }[] };
  expect(body.errors.map((e) => e.extensions.code)).toEqual(['SERVICE_UNAVAILABLE']);
  expect(body.errors[0]!.message).toBe('the database cannot be reached: try again later');
}

describe('with the database unreachable', () => {
  it('every request answers 503 SERVICE_UNAVAILABLE in the envelope, masked; sockets close with 1013', async () => {
    // Before: all is well, and an anonymous socket is open.
    expect((await post(tokensUrl, { authorization: `Bearer ${secret}` })).status).toBe(200);
    const open = socketClient(anonymousUrl);
    sockets.push(open);
    expect((await open.request(QUERY)).data).toEqual({ datasets: [] });

    await makeUnreachable();

    // Authentication reads the token: POST (before its body), GET, SSE (a token looked up in the
    // last 5 s is known without the database; this one was not).
    expectUnavailable(await post(tokensUrl, { authorization: `Bearer ${fresh}` }));
    expectUnavailable(await post(tokensUrl, { authorization: `Bearer ${fresh}`, accept: 'application/graphql-response+json' }));
    expectUnavailable(await send(`${tokensUrl}?query=${encodeURIComponent(QUERY)}`, { headers: { authorization: `Bearer ${fresh}`, accept: 'application/json' } }));
    expectUnavailable(
      await send(tokensUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${fresh}` },
        body: JSON.stringify({ query: 'subscription { entityChanged(dataset: "x") { entityId } }' }),
      }),
    );
    // No token needs no database: still a 401.
    const none = await post(tokensUrl);
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body).errors[0].extensions.code).toBe('UNAUTHENTICATED');

    // Resolvers read the database: the same answer, from the masked error.
    expectUnavailable(await post(anonymousUrl));
    // A batch too: not a REJECTED change the client would drop, but a request to send again.
    const change = { id: '0b9d6a3e-1c55-4f0a-9a1e-5d7c2f3b8a01', dataset: 'trees', entityId: '7f3c9e2a-4b1d-4e8f-a6c5-2d9b0e1f3a77', action: 'CREATE', label: 'x', data: {} };
    expectUnavailable(
      await send(anonymousUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { __typename ... on MutationSubmitChangesSuccess { data { outcome } } } }', variables: { c: [change] } }),
      }),
    );
    expectUnavailable(await send(`${anonymousUrl}?query=${encodeURIComponent(QUERY)}`, { headers: { accept: 'application/json' } }));

    // A socket's connection_init cannot be authenticated: 1013, worth retrying later.
    const refused = socketClient(tokensUrl, { token: fresh });
    sockets.push(refused);
    refused.subscribe('subscription { entityChanged(dataset: "x") { entityId } }');
    await waitUntil(() => refused.closed.code, 'the socket to close');
    expect(refused.closed).toEqual({ code: 1013, reason: 'Try Again Later: the database cannot be reached' });
    // An operation on an open socket is answered with the error; the socket stays.
    const answer = await open.request(QUERY);
    expect(JSON.stringify(answer)).not.toMatch(LEAKS);
    expect(answer.errors?.map((e) => (e as { extensions?: { code?: string } }).extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
    expect(open.closed.code).toBeUndefined();
    // The process-level checks answer too.
    expect((await fetch(tokensUrl.replace(/\/graphql$/, '/ready'))).status).toBe(503);
  });

  it.runIf(backend === 'postgres')('when the database comes back, so does the service', async () => {
    await admin!.unsafe(`alter database ${dbName()} allow_connections true`);
    await waitUntil(async () => (await post(tokensUrl, { authorization: `Bearer ${secret}` })).status === 200, 'the service to answer again', 15_000, 100);
    const r = await post(anonymousUrl);
    expect(r).toEqual({ status: 200, type: expect.stringMatching(/^application\/json/), body: '{"data":{"datasets":[]}}' });
  });
});
