import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.js';
import WebSocket from 'ws';
import { buildApp } from '../../src/server/app.js';
import { startTestApp, type GqlResponse, type TestApp } from '../helpers/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { domain, ok } from '../helpers/domain.js';
import { CHANGED_SUB, socketClient, spawnService, sseSubscribe, stalled, waitUntil, within, wsUrl, type Service } from '../helpers/live.js';

/**
 * Graceful shutdown of the real service (`node src/main.ts` as a child process): on SIGTERM it
 * refuses new connections at once, lets the batch in flight finish and answer, closes its
 * sockets with 1001 (going away), exits 0, and everything it acknowledged is there after a
 * restart on the same data. On PGlite in a temporary data folder, or on the test Postgres.
 */

const BATCH = 300;
const SOCKET_BATCH = 100;

let dataDir: string | null = null;
let closeDb: (() => Promise<void>) | null = null;
let env: Record<string, string>;
let sqlBeside: ((q: string) => Promise<unknown>) | null = null;

/**
 * Versions labelled "slow …" take busy work to insert, so a batch of them keeps its one
 * transaction open for seconds and the signal lands inside it, not by luck. The socket's batch
 * ("slow s…") is sent first and, on PGlite, runs first: its rows take nine times the work, so
 * it alone outlasts the one-second stall the test waits for by seconds, and the signal finds
 * both batches in flight (three times was not enough on a fast machine: it ended 30 ms before
 * the signal). On Postgres the test sees the batch writing, so three times does: a transaction
 * held open longer there holds back the pulls of the other files' databases that run beside it
 * (the pull horizon, src/sync/changes-since.ts), and their tests read a short page as wrong.
 */
const SLOW = [
  `create or replace function slow_version() returns trigger language plpgsql as $$ begin perform count(*) from generate_series(1, case when new.label like 'slow s%' then ${backend === 'pglite' ? 270000 : 90000} else 30000 end); return new; end $$`,
  `create trigger slow_version before insert on entity_versions for each row when (new.label like 'slow %') execute function slow_version()`,
];

beforeAll(async () => {
  if (backend === 'postgres') {
    const database = await freshDatabase({ max: 1 });
    closeDb = database.close;
    env = { DATABASE_URL: database.url! };
    sqlBeside = (q) => database.sql!.unsafe(q);
    for (const q of SLOW) await sqlBeside(q);
  } else {
    dataDir = await mkdtemp(join(tmpdir(), 'entity-sync-shutdown-'));
    env = { DATABASE_URL: '', DATA_DIR: dataDir };
    // Migrated here first (the service migrates nothing more), with the slow trigger.
    const folder = await openDatabase({ dataDir });
    for (const q of SLOW) await folder.db.execute(sql.raw(q));
    await folder.close();
  }
  // Anonymous admin (no tokens in this test); a drain timeout far above the batch's duration.
  env = { ...env, ANONYMOUS_ROLE: 'admin', SHUTDOWN_TIMEOUT_SECONDS: '120' };
});
afterAll(async () => {
  await closeDb?.();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** The child's HTTP API in the shape the domain helpers take. */
function client(url: string): TestApp {
  return {
    url,
    gql: async (query: string, variables?: Record<string, unknown>) => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
      return { ...((await res.json()) as Omit<GqlResponse, 'status'>), status: res.status };
    },
  } as TestApp;
}

/** Resolves with the connect error's code; a connection that opens is a failure. */
function tcpConnect(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      reject(new Error('the connection was accepted'));
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

async function allEntities(t: TestApp, dataset: string): Promise<{ id: string; version: number; label: string }[]> {
  const found: { id: string; version: number; label: string }[] = [];
  let after: string | null = null;
  for (;;) {
    const page: any = ok(
      await t.gql(`query($ds: String!, $after: String) { entities(dataset: $ds, first: 100, after: $after) { nodes { id version label } pageInfo { hasNextPage endCursor } } }`, {
        ds: dataset,
        after,
      }),
    ).entities;
    found.push(...page.nodes);
    if (!page.pageInfo.hasNextPage) return found;
    after = page.pageInfo.endCursor;
  }
}

describe(`SIGTERM while a ${BATCH}-change batch runs (${backend})`, () => {
  let service: Service | null = null;
  afterAll(async () => {
    await service?.stop().catch(() => {});
  });

  it('answers the batch in full, closes the socket with 1001, refuses new connections, exits 0 and keeps every change', async () => {
    service = await spawnService(env);
    const t = client(service.url);
    const d = domain(t);
    const ds = await d.createDataset(['n']);

    // A live subscription on a socket: proven live by one event before the batch.
    const sc = socketClient(service.url);
    const closed = new Promise<{ code: number; reason: string }>((resolve) => sc.client.on('closed', (e) => resolve(e as { code: number; reason: string })));
    const events = sc.subscribe(CHANGED_SUB, { ds });
    let probes = 0;
    await waitUntil(async () => {
      await d.create(ds, `probe${probes++}`, { n: -1 });
      return events.values.length > 0;
    }, 'the subscription to deliver', 10_000, 200);

    const changes = Array.from({ length: BATCH }, (_, i) => ({ id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: `slow e${i}`, data: { n: i } }));
    // A second batch in flight on the subscriber's own socket: it must answer before that socket closes.
    const onSocket = Array.from({ length: SOCKET_BATCH }, (_, i) => ({ id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: `slow s${i}`, data: { n: i } }));
    let socketAnsweredAt = 0;
    const socketAnswer = sc
      .request(`mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { changeId outcome } } } }`, { c: onSocket })
      .then((r) => {
        socketAnsweredAt = Date.now();
        return r;
      });
    const started = Date.now();
    let answeredAt = 0;
    const answer = fetch(service.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { changeId outcome version } } } }`,
        variables: { c: changes },
      }),
    }).then(async (res) => {
      answeredAt = Date.now();
      return { status: res.status, body: (await res.json()) as any };
    });

    // SIGTERM once the batch is under way: inside its one transaction, which the slow versions
    // keep open for seconds. On Postgres the test sees it writing; on PGlite it cannot look beside
    // the service (a batch keeps its event loop busy), so it signals a moment after sending; the
    // change log's timestamps prove the transaction began before the signal.
    if (backend === 'postgres') {
      await waitUntil(
        async () => ((await sqlBeside!(`select 1 from pg_stat_activity where datname = current_database() and query like '%writeVersions%' and state = 'active'`)) as unknown[]).length > 0 || null,
        'the batch to be writing its versions',
        30_000,
        5,
      );
      expect(await d.change(changes[BATCH - 1]!.id)).toBeNull();
    } else {
      // PGlite runs in the service's own thread: while the batch's slow inserts run, the service
      // cannot answer anything. A /health probe every 50 ms; one unanswered for a second is the
      // signal that the batch's transaction is under way.
      await stalled(service.url.replace(/\/graphql$/, '/health'), 1000);
    }
    const signalledAt = Date.now();
    process.kill(service.pid, 'SIGTERM');

    // New connections are refused (on Postgres while the batch is still running).
    const refused = await waitUntil(async () => ((await tcpConnect(service!.url).catch(() => null)) === 'ECONNREFUSED' ? true : null), 'a refused connection', 60_000, 20);
    expect(refused).toBe(true);
    if (backend === 'postgres') expect(answeredAt, 'the batch answered before new connections were refused').toBe(0);
    const ws = new WebSocket(wsUrl(service.url), 'graphql-transport-ws');
    const wsError = await within(new Promise<NodeJS.ErrnoException>((resolve) => ws.once('error', resolve)), 5000, 'the socket to be refused');
    expect(wsError.code).toBe('ECONNREFUSED');

    // The batch answers in full, after the signal.
    const { status, body } = await within(answer, 120_000, 'the batch to answer');
    expect(answeredAt).toBeGreaterThan(signalledAt);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const results = body.data.submitChanges.data as { changeId: string; outcome: string; version: number }[];
    expect(results).toHaveLength(BATCH);
    expect(results.map((r) => r.changeId)).toEqual(changes.map((c) => c.id));
    expect(results.filter((r) => r.outcome !== 'APPLIED' || r.version !== 1)).toEqual([]);

    // The socket's own batch answered in full, after the signal; then the socket was closed as
    // "going away" (the client saw the answer before the close).
    const onSocketResult = await within(socketAnswer, 60_000, 'the socket batch to answer');
    expect(onSocketResult.errors).toBeUndefined();
    expect((onSocketResult.data as any).submitChanges.data.map((r: { changeId: string; outcome: string }) => [r.changeId, r.outcome])).toEqual(onSocket.map((c) => [c.id, 'APPLIED']));
    const closedAt = await within(closed, 20_000, 'the socket to close').then((e) => ({ code: e.code, at: Date.now() }));
    expect(closedAt.code).toBe(1001);
    expect(socketAnsweredAt).toBeGreaterThan(signalledAt);
    expect(socketAnsweredAt).toBeLessThanOrEqual(closedAt.at);
    const exitCode = await service.stop();
    service = null;
    expect(exitCode).toBe(0);
    // The shutdown ended the subscription (complete, no error) before it closed the socket.
    expect(events.errors).toEqual([]);
    expect(events.completed).toBe(true);
    console.log(`batch of ${BATCH}: SIGTERM after ${signalledAt - started} ms, answered after ${answeredAt - started} ms, ${events.values.length} events`);

    // Restarted on the same data: every change of the batch is there, once.
    service = await spawnService(env);
    const again = client(service.url);
    const entities = await allEntities(again, ds);
    const byId = new Map(entities.map((e) => [e.id, e]));
    expect(entities).toHaveLength(BATCH + SOCKET_BATCH + probes);
    expect(changes.filter((c) => byId.get(c.entityId)?.label !== c.label || byId.get(c.entityId)?.version !== 1)).toEqual([]);
    // The signal came while the batches were being processed: each batch is one transaction (all
    // its changes processed at its start), begun before the signal and answered after it.
    const processedAt = async (id: string) =>
      Date.parse(ok(await again.gql(`query($id: String!) { change(id: $id) { outcome processedAt } }`, { id })).change.processedAt);
    for (const batch of [changes, onSocket]) expect(await processedAt(batch.at(-1)!.id)).toBe(await processedAt(batch[0]!.id));
    // One of the two transactions was under way at the signal; on PGlite (one transaction at a
    // time) the other may have waited for it, and still answered in full after the signal.
    expect(Math.min(await processedAt(changes[0]!.id), await processedAt(onSocket[0]!.id))).toBeLessThan(signalledAt);
    expect(changes.concat(onSocket).filter((c) => byId.get(c.entityId)?.label !== c.label)).toEqual([]);
    expect((await service.stop())).toBe(0);
    service = null;
  }, 240_000);

  it('exits 0 at once on SIGTERM when nothing is in flight, and /ready answered 200 before', async () => {
    service = await spawnService(env);
    const base = service.url.replace(/\/graphql$/, '');
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    const at = Date.now();
    expect(await service.stop()).toBe(0);
    service = null;
    // Far below the 120 s drain timeout: nothing waited for it.
    expect(Date.now() - at).toBeLessThan(10_000);
  }, 120_000);
});

describe('SHUTDOWN_TIMEOUT_SECONDS', () => {
  it('refuses a value that is not a number of seconds', async () => {
    await expect(spawnService({ ...env, SHUTDOWN_TIMEOUT_SECONDS: 'soon' }, 30_000)).rejects.toThrow(/SHUTDOWN_TIMEOUT_SECONDS takes a number of seconds/);
  }, 60_000);
});

describe('draining, in process', () => {
  it('while a request is in flight: /ready answers 503, socket operations are refused, the request finishes, then sockets close with 1001', async () => {
    const t = await startTestApp({ flushIntervalSeconds: 0 });
    const { hostname, port } = new URL(t.url);
    try {
      const sc = socketClient(t.url);
      const closed = new Promise<{ code: number }>((resolve) => sc.client.on('closed', (e) => resolve(e as { code: number })));
      expect((await sc.request('{ datasets { name } }')).errors).toBeUndefined();

      // A request in flight the test controls: its body arrives in two halves.
      const body = JSON.stringify({ query: '{ datasets { name } }' });
      const slow = request({ host: hostname, port: Number(port), path: '/graphql', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
      const slowAnswer = new Promise<{ status: number; connection: string | undefined; text: string }>((resolve, reject) => {
        slow.once('error', reject);
        slow.once('response', (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, text }));
        });
      });
      slow.write(body.slice(0, 10));
      // A second connection mid-request (headers not finished), so it is not idle when the drain starts.
      const ready = connect(Number(port), hostname);
      await new Promise((resolve) => ready.once('connect', resolve));
      ready.write(`GET /ready HTTP/1.1\r\nHost: ${hostname}\r\n`);
      await new Promise((resolve) => setTimeout(resolve, 100));

      let stopped = false;
      const stopping = t.app.stop().then(() => (stopped = true));
      // New connections are refused at once.
      expect(await tcpConnect(t.url)).toBe('ECONNREFUSED');
      // /ready, asked on the connection that was already open: 503 "draining", and the connection closes.
      let readyText = '';
      ready.on('data', (c) => (readyText += c));
      const readyEnded = new Promise((resolve) => ready.once('close', resolve));
      ready.write('\r\n');
      await within(readyEnded, 5000, 'the /ready answer');
      expect(readyText).toMatch(/^HTTP\/1\.1 503 /);
      expect(readyText).toMatch(/\r\nconnection: close\r\n/i);
      expect(readyText).toMatch(/\r\n\{"status":"draining"\}\r\n/);
      // A new operation on the open socket is refused with a code; the socket stays open meanwhile.
      await expect(sc.request('{ datasets { name } }')).rejects.toEqual([expect.objectContaining({ message: expect.stringMatching(/shutting down/), extensions: { code: 'SHUTTING_DOWN' } })]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(stopped).toBe(false);

      // The request in flight completes, with a normal answer that closes its connection; then the stop ends.
      slow.end(body.slice(10));
      const answer = await within(slowAnswer, 5000, 'the in-flight request');
      expect(answer.status).toBe(200);
      expect(answer.connection).toBe('close');
      expect(JSON.parse(answer.text)).toEqual({ data: { datasets: [] } });
      expect((await within(closed, 5000, 'the socket to close')).code).toBe(1001);
      await within(stopping, 5000, 'stop() to end');
    } finally {
      await t.close();
    }
  });

  it('a mutation sent as an event stream is waited for like any request, and live SSE subscriptions end first', async () => {
    const t = await startTestApp({ flushIntervalSeconds: 0 });
    const { hostname, port } = new URL(t.url);
    try {
      ok(await t.gql('mutation { createDataset(name: "trees", properties: ["height"]) { __typename } }'));
      const live = sseSubscribe(t.url, CHANGED_SUB, { ds: 'trees' });
      expect((await live.opened).status).toBe(200);
      const body = JSON.stringify({
        query: 'mutation($c: ChangeInput!) { submitChange(change: $c) { outcome version } }',
        variables: { c: { id: randomUUID(), dataset: 'trees', entityId: randomUUID(), action: 'CREATE', label: 'oak', data: { height: 1 } } },
      });
      const slow = request({ host: hostname, port: Number(port), path: '/graphql', method: 'POST', agent: false, headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'content-length': Buffer.byteLength(body) } });
      const answer = new Promise<string>((resolve, reject) => {
        slow.once('error', reject);
        slow.once('response', (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve(text));
        });
      });
      slow.write(body.slice(0, 10));
      await new Promise((resolve) => setTimeout(resolve, 100));

      let stopped = false;
      const stopping = t.app.stop().then(() => (stopped = true));
      await waitUntil(() => live.completed, 'the SSE subscription to end', 3000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(stopped).toBe(false);
      slow.end(body.slice(10));
      expect(await within(answer, 5000, 'the streamed mutation')).toContain('"submitChange":{"outcome":"APPLIED","version":1}');
      await within(stopping, 5000, 'stop() to end');
    } finally {
      await t.close();
    }
  });

  it('the drain timeout bounds the wait: a request that never completes is cut off', async () => {
    const database = await freshDatabase();
    const warnings: string[] = [];
    const logger = { debug: () => {}, info: () => {}, warn: (m: unknown) => void warnings.push(String(m)), error: () => {} };
    const app = buildApp({ db: database.db, flushIntervalSeconds: 0, shutdownTimeoutSeconds: 0.3, auth: { anonymousRole: 'admin' }, logger });
    const url = await app.start(0, '127.0.0.1');
    const { hostname, port } = new URL(url);
    try {
      const stuck = request({ host: hostname, port: Number(port), path: '/graphql', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': 1000 } });
      const cut = new Promise<string>((resolve) => stuck.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message)));
      stuck.write('{"query":');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const at = Date.now();
      await within(app.stop(), 5000, 'stop() past the timeout');
      expect(Date.now() - at).toBeGreaterThanOrEqual(250);
      expect(await within(cut, 2000, 'the stuck request to be cut')).toBe('ECONNRESET');
      // The operator is told what was cut off: only the request (the webhook worker stopped in time).
      expect(warnings.filter((w) => w.startsWith('shutdown:'))).toEqual(['shutdown: work still in flight after 0.3 s is cut off: requests (POST /graphql)']);
    } finally {
      await app.stop();
      await database.close();
    }
  });
});
