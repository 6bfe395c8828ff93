import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/server/app.js';
import { freshDatabase } from '../helpers/database.js';
import type { Database } from '../../src/db/client.js';

let database: Database;
let app: App;
let base: string;
beforeAll(async () => {
  database = await freshDatabase();
  app = buildApp({ db: database.db, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
  base = (await app.start(0, '127.0.0.1')).replace('/graphql', '');
});
afterAll(async () => {
  await app.stop();
});

describe('/health and /ready over HTTP', () => {
  it('/health says the process serves', async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/ready says the database answers, and 503 once it does not', async () => {
    const ok = await fetch(`${base}/ready`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'ok' });
    await database.close();
    const down = await fetch(`${base}/ready`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: 'unavailable' });
    // GraphQL still answers on the same port (with an error, not a crash).
    const gql = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) });
    expect(gql.status).toBe(200);
  });
});
