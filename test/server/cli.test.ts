import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/client.js';
import type { GqlResponse } from '../helpers/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { offlineRun, uniqueName } from '../helpers/domain.js';
import { runMain, socketClient, spawnService, waitUntil, type Service } from '../helpers/live.js';

/**
 * The operator commands beside a running embedded server (issue 11, "Operators lose nothing";
 * DESIGN "Storage and scale"): PGlite has one owner per data folder, so `npm run token` and
 * `npm run flush` go through the service that holds it, a second server on the folder refuses,
 * and without a service the CLI takes the folder itself and lets go of it. Real processes only:
 * the service and every command are `node src/main.ts`, checked through the public API.
 */

const LOCK = 'entity-sync.lock';

async function gql<T = any>(url: string, token: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResponse<T>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  return { ...((await res.json()) as Omit<GqlResponse<T>, 'status'>), status: res.status };
}

function data<T = any>(res: GqlResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  expect(res.status).toBe(200);
  return res.data as T;
}

const VIEWER = '{ viewer { role } }';
const viewerOf = async (url: string, token: string) => {
  const r = await gql(url, token, VIEWER);
  return { status: r.status, role: r.data?.viewer?.role ?? null, code: r.errors?.[0]?.extensions?.code ?? null };
};

/** `token create` output: the token's id and its secret. */
function created(out: { code: number | null; stdout: string; stderr: string }, role: string): { id: string; secret: string } {
  expect(out.code, out.stderr).toBe(0);
  const m = new RegExp(`^created ${role} token ([0-9a-f-]{36}) on every dataset\\nsecret \\(shown once, send as "Authorization: Bearer <secret>"\\):\\n(est_[\\w-]+)\\n$`).exec(out.stdout);
  expect(m, out.stdout).not.toBeNull();
  return { id: m![1]!, secret: m![2]! };
}

/** The `token list` line of one token, split into its columns but the revocation time. */
async function listed(env: Record<string, string>, id: string): Promise<string[] | undefined> {
  const out = await runMain(['token', 'list'], env);
  expect(out.code, out.stderr).toBe(0);
  const line = out.stdout.split('\n').find((l) => l.startsWith(id));
  return line?.split('\t').map((c) => c.replace(/^revoked \S+$/, 'revoked'));
}

const holder = (dir: string) => JSON.parse(readFileSync(join(dir, LOCK), 'utf8')) as { pid: number; command: string };

// The embedded (PGlite) folder's commands: the PGlite run's; the Postgres run has its own below.
describe.runIf(backend === 'pglite')('the CLI beside a running embedded server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'es-cli-'));
  const env = { DATA_DIR: dir, DATABASE_URL: '', ANONYMOUS_ROLE: '' };
  let service: Service;
  let admin: string;
  beforeAll(async () => {
    service = await spawnService(env);
    admin = /admin token \(shown once[^\n]*\n(est_[\w-]+)/.exec(service.output())![1]!;
  });
  afterAll(async () => {
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // One flow, so the restart that checks all three outcomes is paid once (each command is a process of a few seconds).
  it('token create, token revoke and flush beside the running server act on it at once, are listed, and survive a restart', async () => {
    // token create: the secret works at once.
    const reviewer = created(await runMain(['token', 'create', '--role', 'reviewer', '--name', 'Beside the server'], env), 'reviewer');
    expect(await viewerOf(service.url, reviewer.secret)).toEqual({ status: 200, role: 'REVIEWER', code: null });

    // token revoke: refused at once, and the token's open socket closes.
    const collector = created(await runMain(['token', 'create', '--role', 'collector'], env), 'collector');
    const socket = socketClient(service.url, { token: collector.secret });
    try {
      expect((await socket.request(VIEWER)).data).toEqual({ viewer: { role: 'COLLECTOR' } });
      const out = await runMain(['token', 'revoke', collector.id], env);
      expect([out.code, out.stdout, out.stderr]).toEqual([0, `revoked token ${collector.id}\n`, '']);
      expect(await viewerOf(service.url, collector.secret)).toEqual({ status: 401, role: null, code: 'UNAUTHENTICATED' });
      // The service heard of it on its own bus (its revocation sweep runs only every 10 s).
      await waitUntil(() => socket.closed.code !== undefined, 'the revoked token’s socket to close', 2000);
      expect(socket.closed).toEqual({ code: 4401, reason: 'Unauthorized: API token revoked' });
    } finally {
      await socket.close();
    }

    // flush: a held change (a run's second update, its first never sent) is forced by the server.
    const ds = uniqueName('cli');
    data(await gql(service.url, admin, 'mutation($n: String!) { createDataset(name: $n, properties: ["n"]) { __typename } }', { n: ds }));
    const entityId = randomUUID();
    const SUBMIT = 'mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome version } } } }';
    const create = { id: randomUUID(), dataset: ds, entityId, action: 'CREATE', label: 'Held here', data: { n: 1 } };
    expect(data(await gql(service.url, admin, SUBMIT, { c: [create] })).submitChanges.data).toEqual([{ outcome: 'APPLIED', version: 1 }]);
    const update = offlineRun(ds, entityId, 1).update(2, { n: 3 });
    expect(data(await gql(service.url, admin, SUBMIT, { c: [update] })).submitChanges.data).toEqual([{ outcome: 'HELD', version: null }]);
    // Another dataset's held change stays: --dataset forces one dataset's backlog.
    const other = uniqueName('other');
    data(await gql(service.url, admin, 'mutation($n: String!) { createDataset(name: $n, properties: ["n"]) { __typename } }', { n: other }));
    const otherEntity = randomUUID();
    const otherCreate = { id: randomUUID(), dataset: other, entityId: otherEntity, action: 'CREATE', label: 'Held there', data: { n: 1 } };
    const otherUpdate = offlineRun(other, otherEntity, 1).update(2, { n: 4 });
    expect(data(await gql(service.url, admin, SUBMIT, { c: [otherCreate, otherUpdate] })).submitChanges.data).toEqual([{ outcome: 'APPLIED', version: 1 }, { outcome: 'HELD', version: null }]);
    const flushed = await runMain(['flush', '--older-than', '0', '--dataset', ds], env);
    expect([flushed.code, flushed.stdout, flushed.stderr]).toEqual([0, 'forced 1 held change(s), released 0 successor(s)\n', '']);
    const OTHER_HELD = 'query($ds: String) { heldChanges(dataset: $ds) { nodes { changeId } } }';
    expect(data(await gql(service.url, admin, OTHER_HELD, { ds: other }))).toEqual({ heldChanges: { nodes: [{ changeId: otherUpdate.id }] } });
    const READ = 'query($id: String!, $e: ID!, $ds: String) { change(id: $id) { outcome version } entity(id: $e) { version data } heldChanges(dataset: $ds) { nodes { changeId } } }';
    const forced = { change: { outcome: 'APPLIED', version: 2 }, entity: { version: 2, data: { n: 3 } }, heldChanges: { nodes: [] } };
    expect(data(await gql(service.url, admin, READ, { id: update.id, e: entityId, ds }))).toEqual(forced);

    // token list, through the server: both tokens as they now are.
    const list = await runMain(['token', 'list'], env);
    expect(list.code, list.stderr).toBe(0);
    const rows = list.stdout.split('\n').map((l) => l.split('\t').map((c) => c.replace(/^revoked \S+$/, 'revoked')));
    expect(rows.filter((r) => r[0] === reviewer.id || r[0] === collector.id)).toEqual([
      [reviewer.id, 'reviewer', 'Beside the server', '*', '*', 'active'],
      [collector.id, 'collector', 'collector token', '*', '*', 'revoked'],
    ]);

    // All of it was written by the folder's owner: a restart keeps it.
    expect(await service.stop()).toBe(0);
    service = await spawnService(env);
    expect(await viewerOf(service.url, reviewer.secret)).toEqual({ status: 200, role: 'REVIEWER', code: null });
    expect(await viewerOf(service.url, collector.secret)).toEqual({ status: 401, role: null, code: 'UNAUTHENTICATED' });
    expect(await viewerOf(service.url, admin)).toEqual({ status: 200, role: 'ADMIN', code: null });
    expect(data(await gql(service.url, admin, READ, { id: update.id, e: entityId, ds }))).toEqual(forced);
  }, 240_000);

  it('a usage error or a refused command exits 2 with the reason, through the server as well', async () => {
    expect(await runMain(['token', 'create', '--role', 'boss'], env)).toMatchObject({ code: 2, stdout: '', stderr: '--role takes one of collector, reviewer, admin\n' });
    expect(await runMain(['flush', '--dataset', ''], env)).toMatchObject({ code: 2, stdout: '', stderr: '--dataset takes a dataset name\n' });
    const missing = randomUUID();
    expect(await runMain(['token', 'revoke', missing], env)).toMatchObject({ code: 2, stdout: '', stderr: `TOKEN_NOT_FOUND: no API token has the id "${missing}"\n` });
  }, 120_000);

  it('a second server on the same folder refuses, naming the holder, and exits 1; the first keeps serving', async () => {
    const second = await runMain([], env);
    expect(second.code).toBe(1);
    expect(second.stdout).toBe('');
    expect(second.stderr).toContain(`the data folder ${dir} is in use by entity-sync server (pid ${service.pid} on `);
    expect(second.stderr).toContain('A PGlite data folder has one owner at a time');
    expect(holder(dir)).toMatchObject({ pid: service.pid, command: 'server' });
    const ds = uniqueName('still');
    data(await gql(service.url, admin, 'mutation($n: String!) { createDataset(name: $n, properties: ["n"]) { __typename } }', { n: ds }));
    expect(data(await gql(service.url, admin, 'query($n: String!) { dataset(name: $n) { name } }', { n: ds })).dataset).toEqual({ name: ds });
  }, 120_000);

  it('without a server the CLI opens the folder itself and leaves it unlocked; a server started after sees what it did', async () => {
    expect(await service.stop()).toBe(0);
    expect(existsSync(join(dir, LOCK))).toBe(false);
    const { id, secret } = created(await runMain(['token', 'create', '--role', 'reviewer'], env), 'reviewer');
    expect(existsSync(join(dir, LOCK))).toBe(false);
    service = await spawnService(env);
    expect(await viewerOf(service.url, secret)).toEqual({ status: 200, role: 'REVIEWER', code: null });
    // A server killed outright leaves its lock behind, naming a dead process: the CLI takes over.
    const killed = service.pid;
    process.kill(killed, 'SIGKILL');
    await service.stop();
    expect(holder(dir)).toMatchObject({ pid: killed, command: 'server' });
    expect(await listed(env, id)).toEqual([id, 'reviewer', 'reviewer token', '*', '*', 'active']);
    expect(existsSync(join(dir, LOCK))).toBe(false);
    // The other tests expect the server running.
    service = await spawnService(env);
  }, 240_000);
});

describe.runIf(backend === 'pglite')('a folder held by a live process that is no service', () => {
  it('a server refuses it without opening PGlite (the folder stays as it was)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'es-cli-held-'));
    try {
      // This test process stands in for another holder: alive, and with no control channel.
      const lock = { pid: process.pid, command: 'token', hostname: 'here', startedAt: '2026-01-01T00:00:00.000Z', nonce: 'n' };
      writeFileSync(join(dir, LOCK), JSON.stringify(lock));
      const out = await runMain([], { DATA_DIR: dir, DATABASE_URL: '' });
      expect(out.code).toBe(1);
      expect(out.stderr).toContain(`the data folder ${dir} is in use by entity-sync token (pid ${process.pid} on here, since 2026-01-01T00:00:00.000Z)`);
      expect(readdirSync(dir)).toEqual([LOCK]);
      expect(JSON.parse(readFileSync(join(dir, LOCK), 'utf8'))).toEqual(lock);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe.runIf(backend === 'postgres')('`npm run token -- revoke` on Postgres with two running instances', () => {
  let database: Database & { url?: string };
  const services: Service[] = [];
  beforeAll(async () => {
    database = await freshDatabase({ max: 2 });
  });
  afterAll(async () => {
    for (const s of services) await s.stop();
    await database?.close();
  });

  it('both refuse the token at once and close its open sockets (told over NOTIFY, not by the 10 s sweep)', async () => {
    const env = { DATABASE_URL: database.url!, ANONYMOUS_ROLE: '' };
    // On Postgres the CLI works on the database directly, while the instances run.
    const collector = created(await runMain(['token', 'create', '--role', 'collector'], env), 'collector');
    // Started together, so that both revocation sweeps first run 10 s from now (see below).
    services.push(...(await Promise.all([spawnService(env), spawnService(env)])));
    const sockets = services.map((s) => socketClient(s.url, { token: collector.secret }));
    try {
      for (const [i, socket] of sockets.entries()) expect((await socket.request(VIEWER)).data, `instance ${i}`).toEqual({ viewer: { role: 'COLLECTOR' } });
      const out = await runMain(['token', 'revoke', collector.id], env);
      expect([out.code, out.stdout, out.stderr]).toEqual([0, `revoked token ${collector.id}\n`, '']);
      for (const s of services) expect(await viewerOf(s.url, collector.secret)).toEqual({ status: 401, role: null, code: 'UNAUTHENTICATED' });
      // Within 2 s of the command's end: the instances' revocation sweeps first run 10 s after they
      // started, later than that (one command of a few seconds), so it is the NOTIFY that closes them.
      await waitUntil(() => sockets.every((s) => s.closed.code !== undefined), 'both instances to close the revoked token’s socket', 2000);
      expect(sockets.map((s) => s.closed)).toEqual([
        { code: 4401, reason: 'Unauthorized: API token revoked' },
        { code: 4401, reason: 'Unauthorized: API token revoked' },
      ]);
    } finally {
      for (const s of sockets) await s.close();
    }
  }, 180_000);
});
