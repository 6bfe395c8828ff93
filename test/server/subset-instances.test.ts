import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { postgresNotifier } from '../../src/db/notify.js';
import { createEventBus } from '../../src/graphql/pubsub.js';
import { buildApp, type App } from '../../src/server/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { socketClient, trackSubscriptions, waitUntil, type SocketClient, type Tracker } from '../helpers/live.js';

/**
 * A reassignment takes effect at once on every instance (issue 20), as a revocation does: two
 * instances on one Postgres, events through LISTEN/NOTIFY. A device that works through B, whose
 * token lookup B has cached and whose subscription B holds, is reassigned on A: B's next answer and
 * its open subscription follow the new rules without waiting for the cache to expire.
 */
describe.runIf(backend === 'postgres')('a reassignment on one instance, seen on another (Postgres)', () => {
  let main: Database & { url?: string };
  const instances: { database: Database; app: App; url: string; tracker: Tracker }[] = [];
  const clients: SocketClient[] = [];

  async function instance(name: string) {
    const url = new URL(main.url!);
    url.searchParams.set('application_name', name);
    const database = await openDatabase({ url: url.toString(), migrate: false, max: 5 });
    const bus = createEventBus({ notifier: postgresNotifier(database.sql!) });
    const app = buildApp({ db: database.db, bus, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
    const tracker = trackSubscriptions(bus);
    const started = await app.start(0, '127.0.0.1');
    const i = { database, app, url: started, tracker };
    instances.push(i);
    return i;
  }

  async function gql(url: string, query: string, variables: Record<string, unknown> = {}, token?: string) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data?: any; errors?: unknown };
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data;
  }

  beforeAll(async () => {
    main = await freshDatabase();
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    for (const i of instances) {
      await i.app.stop();
      await i.database.close();
    }
    await main?.close();
  });

  it("B forgets the token's cached lookup and its open subscription takes the new rules", async () => {
    const tag = randomUUID().slice(0, 8);
    const a = await instance(`es_sa_${tag}`);
    const b = await instance(`es_sb_${tag}`);
    const ds = `ds_${tag}`;
    await gql(a.url, `mutation($n: String!) { createDataset(name: $n, properties: ["district"]) { __typename } }`, { n: ds });
    const made = (
      await gql(a.url, `mutation($ds: [String!]) { createApiToken(name: "t", role: collector, datasets: $ds, subset: [{ property: "district", values: ["d1"] }]) { ... on MutationCreateApiTokenSuccess { data { secret token { id } } } } }`, {
        ds: [ds],
      })
    ).createApiToken.data;
    const viewer = async () => (await gql(b.url, '{ viewer { subset { values } } }', {}, made.secret)).viewer.subset;
    expect(await viewer()).toEqual([{ values: ['d1'] }]);

    const client = socketClient(b.url, { token: made.secret });
    clients.push(client);
    const before = b.tracker.opened();
    const changed = client.subscribe(`subscription($ds: String!) { entityChanged(dataset: $ds) { entityId } }`, { ds });
    await waitUntil(() => b.tracker.opened() > before, 'the subscription on B to be live', 3000);

    await gql(a.url, `mutation($id: ID!) { setTokenSubset(tokenId: $id, subset: [{ property: "district", values: ["d2"] }]) { __typename } }`, { id: made.token.id });
    // Well within the 5 s the lookup would otherwise be reused.
    await waitUntil(async () => JSON.stringify(await viewer()) === JSON.stringify([{ values: ['d2'] }]), "B's answers to follow the reassignment", 2000, 50);

    const create = (district: string) =>
      gql(a.url, `mutation($c: ChangeInput!) { submitChange(change: $c) { entityId } }`, { c: { id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'x', data: { district } } });
    await create('d1');
    const mine = (await create('d2')).submitChange.entityId;
    expect((await changed.take(1)).map((e: { entityId: string }) => e.entityId)).toEqual([mine]);
  }, 60_000);
});
