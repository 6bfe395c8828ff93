import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { redisNotifier } from '../../src/db/redis-notify.js';
import { createEventBus } from '../../src/graphql/pubsub.js';
import { buildApp, type App } from '../../src/server/app.js';
import type { TestApp } from '../helpers/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { domain, ok } from '../helpers/domain.js';
import { CHANGED_SUB, runMain, socketClient, spawnService, trackSubscriptions, waitUntil, type Service, type SocketClient, type Stream, type Tracker } from '../helpers/live.js';

/**
 * Issue 21 item 4: EVENT_BUS=redis://… carries subscription events between instances through
 * Redis instead of LISTEN/NOTIFY. A Redis server of the test's own (another port, so the shared
 * one at 6379 is not disturbed) is stopped and started again mid-run: /ready fails meanwhile,
 * changes are still acknowledged and stored, and events flow again once it is back.
 */

/** A free port on 127.0.0.1 (asked of the kernel, then released for redis-server to take). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** redis-server on `port`, in memory, started and stopped by the test. */
function privateRedis(port: number) {
  let child: ChildProcess | null = null;
  const ping = () =>
    new Promise<boolean>((resolve) => {
      const p = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping']);
      let out = '';
      p.stdout.on('data', (b) => (out += b));
      p.on('close', () => resolve(out.trim() === 'PONG'));
      p.on('error', () => resolve(false));
    });
  return {
    url: `redis://127.0.0.1:${port}`,
    start: async () => {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await waitUntil(ping, `redis-server on port ${port}`, 10_000, 50);
    },
    stop: async () => {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGKILL');
      await exited;
    },
  };
}

const http = (url: string): TestApp =>
  ({
    url,
    gql: async (query: string, variables?: Record<string, unknown>) => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
      return { ...(await res.json()), status: res.status };
    },
  }) as unknown as TestApp;
const ready = async (graphqlUrl: string) => {
  const res = await fetch(new URL('/ready', graphqlUrl));
  return { status: res.status, body: await res.json() };
};

let redis: ReturnType<typeof privateRedis>;
beforeAll(async () => {
  redis = privateRedis(await freePort());
  await redis.start();
});
afterAll(async () => {
  await redis?.stop();
});

/** The shared Redis .ci/run starts (REDIS_URL to use another). */
const SHARED_REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

type Instance = { database: Database; app: App; url: string; tracker: Tracker; ws: SocketClient };

describe.runIf(backend === 'postgres')('two instances on one Postgres with EVENT_BUS on Redis', () => {
  let main: Database & { url?: string };
  const all: Instance[] = [];
  const streams: Stream[] = [];

  /** Two instances on the test database, their events through the Redis at `redisUrl`. */
  async function pair(redisUrl: string): Promise<[Instance, Instance]> {
    const made: Instance[] = [];
    for (let i = 0; i < 2; i++) {
      const database = await openDatabase({ url: main.url!, migrate: false, max: 5 });
      const bus = createEventBus({ notifier: redisNotifier(redisUrl), onError: () => {} });
      const app = buildApp({ db: database.db, bus, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' }, webhooks: { deliver: false } });
      const url = await app.start(0, '127.0.0.1');
      made.push({ database, app, url, tracker: trackSubscriptions(bus), ws: socketClient(url) });
    }
    all.push(...made);
    return made as [Instance, Instance];
  }

  beforeAll(async () => {
    main = await freshDatabase();
  });
  afterAll(async () => {
    for (const s of streams) s.close();
    for (const i of all) {
      await i.ws.close();
      await i.app.stop();
      await i.database.close();
    }
    await main?.close();
  });

  async function live(on: Instance, ds: string): Promise<Stream> {
    const before = on.tracker.opened();
    const s = on.ws.subscribe(CHANGED_SUB, { ds });
    streams.push(s);
    await waitUntil(() => on.tracker.opened() > before, 'the subscription to be live', 3000);
    return s;
  }

  it("on the local Redis (127.0.0.1:6379): a subscriber on A gets B's events (and B's own), through Redis, not LISTEN", async () => {
    const [a, b] = await pair(SHARED_REDIS);
    const d = domain(http(b.url));
    const ds = await d.createDataset(['height']);
    const onA = await live(a, ds);
    const onB = await live(b, ds);
    const id = await d.create(ds, 'Oak', { height: 1 });
    await d.update(ds, id, 1, { height: 2 });
    const expected = [1, 2].map((version) => ({ dataset: ds, entityId: id, version, entity: { version: 2 } }));
    expect((await onA.take(2)).map((e) => e.version)).toEqual([1, 2]);
    expect((await onB.take(2)).map((e) => e.version)).toEqual([1, 2]);
    expect(onA.values.map((e) => ({ ...e, entity: { version: 2 } }))).toEqual(expected);
    const listening = await main.sql!`select count(*)::int as n from pg_stat_activity where datname = current_database() and query ilike 'listen%'`;
    expect(listening[0]!.n).toBe(0);
    expect((await ready(a.url)).status).toBe(200);
  });

  it('on a Redis of its own, stopped mid-run: /ready 503 on both, changes still acknowledged and stored; back: /ready 200 and events flow again', async () => {
    const instances = await pair(redis.url);
    const [a, b] = instances;
    const d = domain(http(b.url));
    const ds = await d.createDataset(['height']);
    const onA = await live(a, ds);
    const id = await d.create(ds, 'Elm', { height: 1 });
    await onA.take(1);

    await redis.stop();
    for (const i of instances) await waitUntil(async () => (await ready(i.url)).status === 503, 'the outage to show on /ready', 10_000, 50);
    expect((await ready(a.url)).body).toEqual({ status: 'unavailable', eventBus: 'unreachable' });
    // Acknowledged while the broker is down, and in the database (its event is not carried).
    expect(await d.update(ds, id, 1, { height: 2 })).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(ok(await http(a.url).gql('query($id: ID!) { entity(id: $id) { version data } }', { id })).entity).toEqual({ version: 2, data: { height: 2 } });

    await redis.start();
    for (const i of instances) await waitUntil(async () => (await ready(i.url)).status === 200, 'the bus to reconnect', 15_000, 50);
    // The subscription survived; the next change reaches it through the resubscribed channel.
    await waitUntil(async () => {
      const version = ok(await http(a.url).gql('query($id: ID!) { entity(id: $id) { version } }', { id })).entity.version;
      await d.update(ds, id, version, { height: version + 1 });
      await new Promise((r) => setTimeout(r, 200));
      return onA.values.some((e) => e.version > 2);
    }, 'an event after the outage', 15_000, 0);
    expect(onA.values[0]!.version).toBe(1);
    expect(onA.errors).toEqual([]);
  });
});

describe('the service started with EVENT_BUS', () => {
  let service: Service | undefined;
  let cleanup: () => Promise<void> = async () => {};
  afterAll(async () => {
    await service?.stop().catch(() => {});
    await cleanup();
  });

  it('logs the outage once each way, fails /ready meanwhile, never crashes, and refuses a non-Redis EVENT_BUS', async () => {
    let env: Record<string, string> = { DATA_DIR: 'memory://' };
    if (backend === 'postgres') {
      const database = await freshDatabase();
      cleanup = database.close;
      env = { DATABASE_URL: database.url! };
    }
    service = await spawnService({ ...env, EVENT_BUS: redis.url });
    expect((await ready(service.url)).status).toBe(200);
    const d = domain(http(service.url));
    const ds = await d.createDataset(['height']);
    await redis.stop();
    await waitUntil(async () => (await ready(service!.url)).status === 503, '/ready to fail', 10_000, 50);
    const id = await d.create(ds, 'Ash', { height: 1 });
    expect(await d.update(ds, id, 1, { height: 2 })).toMatchObject({ outcome: 'APPLIED', version: 2 });
    await redis.start();
    await waitUntil(async () => (await ready(service!.url)).status === 200, '/ready to pass again', 15_000, 50);
    const lines = service.output().split('\n').filter((l) => l.includes('event bus'));
    expect(lines.filter((l) => l.includes('Redis is unreachable'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('Redis is reachable'))).toHaveLength(1);
    expect(service.output()).not.toMatch(/Unhandled|uncaught/i);
    expect(await service.stop()).toBe(0);

    const wrong = await runMain([], { ...env, EVENT_BUS: 'amqp://127.0.0.1' });
    expect(wrong).toMatchObject({ code: 2, stderr: 'EVENT_BUS takes a redis:// or rediss:// URL, not "amqp://127.0.0.1"\n' });
    // Two processes start here: slow on a loaded machine.
  }, 180_000);
});
