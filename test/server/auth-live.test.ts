import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { createToken, revokeToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { CHANGED_SUB, socketClient, spawnService, sseSubscribe, trackSubscriptions, waitUntil, wsUrl, type SocketClient, type Tracker } from '../helpers/live.js';

/**
 * Authentication of long-lived connections: sockets and SSE streams authenticate when they
 * open, each operation on a socket again, and a revoked token's connections end at once.
 * Also the operator's side: the first admin token of an embedded start and `npm run token`.
 */

let t: TestApp;
let admin: string;
let collector: { id: string; secret: string };
let other: { id: string; secret: string };
const sockets: SocketClient[] = [];
let tracker: Tracker;

beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: null, revocationSweepSeconds: 0.2 } });
  tracker = trackSubscriptions(t.app.bus);
  admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  for (const name of ['trees', 'birds']) {
    const r = await t.gqlAs(admin, 'mutation($n: String!) { createDataset(name: $n, properties: ["height"]) { __typename } }', { n: name });
    expect(r.data.createDataset.__typename).toBe('MutationCreateDatasetSuccess');
  }
  const make = async (name: string) => {
    const { secret, token } = await createToken(t.database.db, { name, role: 'collector', datasets: ['trees'] });
    return { id: token.id, secret };
  };
  collector = await make('tablet 1');
  other = await make('tablet 2');
});
// Each test starts with no socket and no live subscription, whatever ran before it (CI also runs
// the suite shuffled), so the counts a test waits for are its own.
afterEach(async () => {
  for (const s of sockets.splice(0)) await s.close().catch(() => {});
  await waitUntil(() => tracker.active() === 0, 'every subscription of the test to end');
});
afterAll(async () => {
  await t?.close();
});

const socket = (token?: string) => {
  const s = socketClient(t.url, token ? { token } : {});
  sockets.push(s);
  return s;
};

/** Creates an entity in `trees` as admin over HTTP: one entityChanged event. */
async function touchTrees(): Promise<string> {
  const id = randomUUID();
  const r = await t.gqlAs(admin, 'mutation($c: ChangeInput!) { submitChange(change: $c) { outcome } }', {
    c: { id: randomUUID(), dataset: 'trees', entityId: id, action: 'CREATE', label: 'oak', data: { height: 1 } },
  });
  expect(r.data.submitChange.outcome).toBe('APPLIED');
  return id;
}

describe('sockets authenticate at connection_init', () => {
  it('without a token 4403 (a client may retry once it has one); with a malformed, an unknown or a revoked one 4401, saying which', async () => {
    const { secret: revokedSecret, token } = await createToken(t.database.db, { name: 'gone', role: 'collector', datasets: ['trees'] });
    await revokeToken(t.database.db, token.id);
    for (const [s, closed] of [
      [socket(), { code: 4403, reason: 'Forbidden: no API token' }],
      [socket('est_not-a-token'), { code: 4401, reason: 'Unauthorized: unknown API token' }],
      [socket('not even the format'), { code: 4401, reason: 'Unauthorized: not "Bearer <token>"' }],
      [socket(revokedSecret), { code: 4401, reason: 'Unauthorized: API token revoked' }],
    ] as const) {
      const sub = s.subscribe(CHANGED_SUB, { ds: 'trees' });
      await waitUntil(() => s.closed.code, 'the server to close the socket');
      expect(s.closed).toEqual(closed);
      expect(sub.values).toEqual([]);
    }
  });

  it('a graphql-ws client retries 4403 but gives up on 4401 at once', async () => {
    const attempts = (token?: string) => {
      let connecting = 0;
      const client = createClient({
        url: wsUrl(t.url),
        webSocketImpl: WebSocket,
        retryAttempts: 2,
        retryWait: async () => {},
        ...(token ? { connectionParams: { authorization: `Bearer ${token}` } } : {}),
        on: { connecting: () => (connecting += 1) },
      });
      return new Promise<{ connecting: number; code: number }>((resolve) => {
        client.subscribe({ query: '{ viewer { role } }' }, { next: () => {}, complete: () => {}, error: (e) => resolve({ connecting, code: (e as { code: number }).code }) });
      }).finally(() => client.dispose());
    };
    expect(await attempts()).toEqual({ connecting: 3, code: 4403 });
    expect(await attempts('est_not-a-token')).toEqual({ connecting: 1, code: 4401 });
  });

  it('with a token in connection_init: events of its datasets; another dataset is FORBIDDEN', async () => {
    const s = socket(collector.secret);
    const trees = s.subscribe(CHANGED_SUB, { ds: 'trees' });
    const birds = s.subscribe(CHANGED_SUB, { ds: 'birds' });
    await waitUntil(() => birds.errors.length, 'the birds subscription to be refused');
    expect(JSON.stringify(birds.errors)).toContain('"code":"FORBIDDEN"');
    // The socket stays usable for what the token may do.
    await tracker.waitActive('entityChanged');
    const id = await touchTrees();
    const [event] = await trees.take(1);
    expect(event).toMatchObject({ dataset: 'trees', entityId: id, version: 1 });
    const viewer = await s.request('{ viewer { role datasets } }');
    expect(viewer.data).toEqual({ viewer: { role: 'COLLECTOR', datasets: ['trees'] } });
    // Each subscription also watches for its token's revocation; ending it ends both.
    expect(tracker.active('tokenRevoked')).toBe(1);
    trees.close();
    await waitUntil(() => tracker.active() === 0, 'the subscription and its revocation watch to end');
  });

  it('with a token in the upgrade request header (server-side clients)', async () => {
    const secret = collector.secret;
    class WithHeader extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers: { authorization: `Bearer ${secret}` } });
      }
    }
    const client = createClient({ url: wsUrl(t.url), webSocketImpl: WithHeader, retryAttempts: 0 });
    try {
      const result = await new Promise<unknown>((resolve, reject) => {
        let value: unknown;
        client.subscribe({ query: '{ viewer { role } }' }, { next: (v) => (value = v), error: reject, complete: () => resolve(value) });
      });
      expect(result).toEqual({ data: { viewer: { role: 'COLLECTOR' } } });
    } finally {
      await client.dispose();
    }
  });
});

describe('what an event shows to whom', () => {
  it("changeHeld: a collector gets the event but not the held change (another device's payload); a reviewer gets it", async () => {
    const reviewer = (await createToken(t.database.db, { name: 'reviewer', role: 'reviewer', datasets: ['trees'] })).secret;
    const HELD = 'subscription { changeHeld(dataset: "trees") { changeId waitsFor heldChange { deviceId change } } }';
    const asCollector = socket(collector.secret).subscribe(HELD);
    const asReviewer = socket(reviewer).subscribe(HELD);
    await waitUntil(() => tracker.active('changeHeld') === 2, 'both subscriptions');
    const id = await touchTrees();
    const held = { id: randomUUID(), deviceId: 'tab-7', dataset: 'trees', entityId: id, action: 'UPDATE', branchId: randomUUID(), trunkVersion: 1, baseVersion: 2, data: { height: 3 } };
    const r = await t.gqlAs(admin, 'mutation($c: ChangeInput!) { submitChange(change: $c) { outcome } }', { c: held });
    expect(r.data.submitChange.outcome).toBe('HELD');
    const [seenByCollector] = await asCollector.take(1);
    const [seenByReviewer] = await asReviewer.take(1);
    expect(seenByCollector).toEqual({ changeId: held.id, waitsFor: 1, heldChange: null });
    expect(asCollector.errors).toEqual([]);
    expect(seenByReviewer).toMatchObject({ changeId: held.id, waitsFor: 1, heldChange: { deviceId: 'tab-7', change: expect.objectContaining({ data: { height: 3 } }) } });
  });
});

describe('a token revoked while connected', () => {
  it('closes its sockets with 4401 and ends their subscriptions; other tokens stay connected', async () => {
    const { secret, token } = await createToken(t.database.db, { name: 'doomed', role: 'collector', datasets: ['trees'] });
    const doomed = socket(secret);
    const kept = socket(other.secret);
    const doomedSub = doomed.subscribe(CHANGED_SUB, { ds: 'trees' });
    const keptSub = kept.subscribe(CHANGED_SUB, { ds: 'trees' });
    await tracker.waitActive('entityChanged', 2);
    await touchTrees();
    await doomedSub.take(1);
    await keptSub.take(1);

    const r = await t.gqlAs(admin, 'mutation($id: ID!) { revokeApiToken(id: $id) { ... on MutationRevokeApiTokenSuccess { data { id revokedAt } } } }', { id: token.id });
    expect(r.data.revokeApiToken.data.id).toBe(token.id);
    expect(r.data.revokeApiToken.data.revokedAt).toEqual(expect.any(String));
    await waitUntil(() => doomed.closed.code, 'the revoked socket to close', 3000);
    expect(doomed.closed).toEqual({ code: 4401, reason: 'Unauthorized: API token revoked' });

    await touchTrees();
    await keptSub.take(2);
    expect(doomedSub.values).toHaveLength(1);
    expect(kept.closed.code).toBeUndefined();
    // And over HTTP the token is refused from now on.
    const after = await t.gqlAs(secret, '{ viewer { role } }');
    expect(after.status).toBe(401);
    expect(after.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('ends its SSE streams with an error that says why (TOKEN_REVOKED), then the end', async () => {
    const { secret, token } = await createToken(t.database.db, { name: 'sse', role: 'reviewer', datasets: ['trees'] });
    const stream = sseSubscribe(t.url, CHANGED_SUB, { ds: 'trees' }, { token: secret });
    try {
      expect((await stream.opened).status).toBe(200);
      await tracker.waitActive('entityChanged');
      await touchTrees();
      await stream.take(1);
      await t.gqlAs(admin, 'mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }', { id: token.id });
      await waitUntil(() => stream.completed, 'the SSE stream to end', 3000);
      expect(stream.values).toHaveLength(1);
      expect(stream.frames.map((f) => f.event)).toEqual(['next', 'next', 'complete']);
      expect(JSON.parse(stream.frames[1]!.data)).toEqual({
        data: null,
        errors: [
          {
            message: 'the API token of this subscription was revoked: it has ended, and a new one needs another token',
            locations: [{ line: 1, column: 38 }],
            path: ['entityChanged'],
            extensions: { code: 'TOKEN_REVOKED' },
          },
        ],
      });
    } finally {
      stream.close();
    }
  });

  it('whose event was lost (a NOTIFY cut off after the commit): the sweep of recent revocations still ends its socket and streams', async () => {
    const { secret, token } = await createToken(t.database.db, { name: 'lost event', role: 'collector', datasets: ['trees'] });
    const s = socket(secret);
    const onSocket = s.subscribe(CHANGED_SUB, { ds: 'trees' });
    const stream = sseSubscribe(t.url, CHANGED_SUB, { ds: 'trees' }, { token: secret });
    try {
      expect((await stream.opened).status).toBe(200);
      await tracker.waitActive('entityChanged', 2);
      await touchTrees();
      await onSocket.take(1);
      await stream.take(1);
      // Revoked in the database only: the event revokeApiToken would publish never goes out.
      const { events } = await revokeToken(t.database.db, token.id);
      expect(events).toEqual([{ type: 'tokenRevoked', tokenId: token.id }]);
      await waitUntil(() => s.closed.code && stream.completed, 'the sweep to end the socket and the stream', 3000);
      expect(s.closed).toEqual({ code: 4401, reason: 'Unauthorized: API token revoked' });
      expect(JSON.stringify(stream.errors)).toContain('"code":"TOKEN_REVOKED"');
    } finally {
      stream.close();
    }
  });

  it('SSE without a token is 401, and a stream of a dataset outside the token is FORBIDDEN', async () => {
    const anonymous = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: CHANGED_SUB, variables: { ds: 'trees' } }),
    });
    expect(anonymous.status).toBe(401);
    await anonymous.body?.cancel();
    const birds = sseSubscribe(t.url, CHANGED_SUB, { ds: 'birds' }, { token: collector.secret });
    try {
      await waitUntil(() => birds.errors.length || birds.completed, 'the birds stream to be refused', 3000);
      expect(JSON.stringify(birds.errors)).toContain('FORBIDDEN');
      expect(birds.values).toEqual([]);
    } finally {
      birds.close();
    }
  });
});

describe('a request without valid credentials', () => {
  it.each([
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer est_not-a-token' }],
    ['a malformed header', { authorization: 'x' }],
  ])('with %s is refused with 401 before its body is read: the server does not wait for 30 MB that never come', async (_what, auth: Record<string, string>) => {
    const { status, headers } = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
      const req = request(t.url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(30_000_000), ...auth } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode!, headers: res.headers });
        req.destroy();
      });
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      req.flushHeaders(); // headers only: the body never follows
      setTimeout(() => reject(new Error('no answer without the body within 3 s')), 3000).unref();
    });
    expect(status).toBe(401);
    expect(headers['www-authenticate']).toBe('Bearer');
  });

  it('learns nothing of the schema: a misspelt field is 401 like a real one, not a validation error', async () => {
    for (const query of ['{ apiTokenz { id } }', '{ apiTokens { nodes { id } } }']) {
      const r = await t.gqlAs('est_nobody', query);
      expect([r.status, r.errors?.[0]?.extensions?.code]).toEqual([401, 'UNAUTHENTICATED']);
    }
  });
});

const repo = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
async function tokenCommand(dataDir: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'token', ...args], {
    cwd: repo,
    env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '' },
  });
  return stdout;
}

describe('the operator: first admin token and `npm run token`', () => {
  const dir = mkdtempSync(join(tmpdir(), 'entity-sync-auth-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const post = (url: string, query: string, token?: string) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify({ query }) });

  it('a fresh embedded start prints an admin token once; no anonymous access; the CLI makes and revokes tokens', async () => {
    const env = { DATA_DIR: dir, DATABASE_URL: '', ANONYMOUS_ROLE: '' };
    const first = await spawnService(env);
    let adminSecret: string;
    try {
      // The token and the "listening on" line may reach the pipe in either order: wait for the token.
      const match = await waitUntil(() => /admin token \(shown once[^\n]*\n(est_[\w-]+)/.exec(first.output()), 'the admin token to be printed', 10_000).catch(() => null);
      expect(match, first.output()).not.toBeNull();
      adminSecret = match![1]!;
      expect((await post(first.url, '{ viewer { role } }')).status).toBe(401);
      expect(await (await post(first.url, '{ viewer { role } }', adminSecret)).json()).toEqual({ data: { viewer: { role: 'ADMIN' } } });
    } finally {
      expect(await first.stop(), first.output()).toBe(0);
    }

    const created = await tokenCommand(dir, 'create', '--role', 'collector', '--device', 'tab-9', '--datasets', 'trees, birds', '--name', 'Tablet 9');
    const [, id, secret] = /created collector token ([0-9a-f-]{36}) for device tab-9 on trees, birds\n.*\n(est_[\w-]+)/.exec(created) ?? [];
    expect(id, created).toBeDefined();

    const second = await spawnService(env);
    try {
      expect(second.output()).not.toContain('admin token');
      expect(await (await post(second.url, '{ viewer { role deviceId datasets } }', secret)).json()).toEqual({
        data: { viewer: { role: 'COLLECTOR', deviceId: 'tab-9', datasets: ['trees', 'birds'] } },
      });
      expect(await (await post(second.url, '{ viewer { role } }', adminSecret)).json()).toEqual({ data: { viewer: { role: 'ADMIN' } } });
    } finally {
      expect(await second.stop()).toBe(0);
    }

    expect(await tokenCommand(dir, 'revoke', id!)).toBe(`revoked token ${id}\n`);
    const listed = (await tokenCommand(dir, 'list')).trim().split('\n').map((l) => l.split('\t'));
    expect(listed.map((l) => [l[1], l[2], l[3], l[4], l[5]!.split(' ')[0]])).toEqual([
      ['admin', 'first admin', '*', '*', 'active'],
      ['collector', 'Tablet 9', 'tab-9', 'trees,birds', 'revoked'],
    ]);
    await expect(tokenCommand(dir, 'create', '--role', 'boss')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--role takes one of collector, reviewer, admin') });
    await expect(tokenCommand(dir, 'revoke', randomUUID())).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('TOKEN_NOT_FOUND') });
    // Two starts and five operator commands, each a process: room for a loaded 2-core machine.
  }, 300_000);
});
