import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.js';
import { createFirstAdminToken } from '../../src/sync/tokens.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { runMain, spawnService, type Service } from '../helpers/live.js';

/**
 * Issue 18 item 4: the real entry point started on a DATABASE_URL it cannot open says, in one
 * line on stderr, what is wrong and what to do, and exits 1 (it printed 38 lines of
 * DrizzleQueryError). A first start on an empty Postgres database makes and prints an admin
 * token, as on PGlite; a second start, or a second instance starting at the same time, makes none.
 */

const SECRET = 'not-to-be-printed';

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A 1-line refusal: exit 1, nothing on stdout, exactly `entity-sync cannot start: …` on stderr. */
async function refusal(args: string[], databaseUrl: string) {
  const r = await runMain(args, { DATABASE_URL: databaseUrl, ANONYMOUS_ROLE: '' });
  expect(r.stderr.split('\n').filter(Boolean), r.stderr).toHaveLength(1);
  expect(r.stderr).not.toContain(SECRET);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr.trimEnd() };
}

/** Encodes a Postgres ErrorResponse message ('E', length, typed NUL-terminated fields, NUL). */
function errorResponse(fields: Record<string, string>): Buffer {
  const body = Buffer.concat([...Object.entries(fields).map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

describe('a DATABASE_URL that cannot be opened', () => {
  it('a port nothing listens on: one sentence naming host and port, exit 1 (the service and `npm run token` alike)', async () => {
    const url = `postgres://postgres:${SECRET}@127.0.0.1:${await closedPort()}/entity_sync`;
    const sentence = expect.stringMatching(/^(?:entity-sync cannot start: )?nothing accepts connections on 127\.0\.0\.1:\d+ \(DATABASE_URL\): check that Postgres runs there and listens on that port$/);
    const start = await refusal([], url);
    expect(start).toEqual({ code: 1, stdout: '', stderr: sentence });
    expect(start.stderr.startsWith('entity-sync cannot start: ')).toBe(true);
    expect(await refusal(['token', 'list'], url)).toEqual({ code: 1, stdout: '', stderr: sentence });
  });

  describe('a wrong password', () => {
    // The Postgres here trusts every local connection (pg_hba.conf), so it never asks for a
    // password. A server that answers the driver's startup message as Postgres does to a wrong
    // password (FATAL 28P01) stands in for it: the driver and the service meet the real message.
    let server: Server;
    let port = 0;
    beforeAll(async () => {
      server = createServer((socket) =>
        socket.once('data', () =>
          socket.end(errorResponse({ S: 'FATAL', V: 'FATAL', C: '28P01', M: 'password authentication failed for user "field"', R: 'auth_failed' })),
        ),
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => new Promise((resolve) => server.close(resolve)));

    it('says the password of that user was refused, without printing it, exit 1', async () => {
      expect(await refusal([], `postgres://field:${SECRET}@127.0.0.1:${port}/trees`)).toEqual({
        code: 1,
        stdout: '',
        stderr: `entity-sync cannot start: Postgres on 127.0.0.1:${port} refused the password of user "field" (DATABASE_URL): check the user name and password`,
      });
    });
  });

  describe.runIf(backend === 'postgres')('on the Postgres server of DATABASE_URL', () => {
    const server = new URL(process.env.DATABASE_URL ?? 'postgres://localhost');
    const at = `${server.hostname}:${server.port || '5432'}`;
    const on = (change: (u: URL) => void) => {
      const u = new URL(server);
      change(u);
      return u.toString();
    };

    it('a database that does not exist: says to create it, with the command, exit 1', async () => {
      const name = `es_missing_${randomBytes(4).toString('hex')}`;
      const user = decodeURIComponent(server.username);
      const url = on((u) => (u.pathname = `/${name}`));
      expect(await refusal([], url)).toEqual({
        code: 1,
        stdout: '',
        stderr: `entity-sync cannot start: the database "${name}" named by DATABASE_URL does not exist on ${at}: create it (createdb -h ${server.hostname} -p ${server.port || '5432'}${user ? ` -U ${user}` : ''} ${name}) or name an existing one`,
      });
    });

    it('a user that does not exist: says the server refused that user and why, exit 1', async () => {
      const url = on((u) => {
        u.username = 'es_nobody';
        u.password = SECRET;
      });
      expect(await refusal([], url)).toEqual({
        code: 1,
        stdout: '',
        stderr: `entity-sync cannot start: Postgres on ${at} refused user "es_nobody" (role "es_nobody" does not exist): check the user name and password in DATABASE_URL, and pg_hba.conf`,
      });
    });
  });
});

describe.runIf(backend === 'postgres')('the first start on an empty Postgres database', () => {
  const adminUrl = process.env.DATABASE_URL!;
  const made: string[] = [];
  const running: Service[] = [];
  /** A new database with nothing in it (not migrated): what an operator's `createdb` gives. */
  async function emptyDatabase(): Promise<string> {
    const name = `es_first_${randomBytes(5).toString('hex')}`;
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    await admin.end();
    made.push(name);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
  }
  async function inDatabase<T>(url: string, query: (sql: postgres.Sql) => Promise<T>): Promise<T> {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      return await query(sql);
    } finally {
      await sql.end();
    }
  }
  const start = async (url: string) => {
    const service = await spawnService({ DATABASE_URL: url, ANONYMOUS_ROLE: '' });
    running.push(service);
    return service;
  };
  const printedTokens = (s: Service) => [...s.output().matchAll(/admin token \(shown once[^\n]*\n(est_[\w-]+)/g)].map((m) => m[1]!);
  const viewer = async (url: string, token: string) =>
    (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query: '{ viewer { role } }' }) })).json();
  const migrations = readdirSync(new URL('../../drizzle', import.meta.url)).filter((f) => /^\d/.test(f)).length;

  afterAll(async () => {
    for (const s of running) await s.stop().catch(() => {});
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    for (const name of made) await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  });

  it('prints an admin token once, which works; the second start prints none', async () => {
    const url = await emptyDatabase();
    const first = await start(url);
    const [secret, ...more] = printedTokens(first);
    expect(secret, first.output()).toBeDefined();
    expect(more).toEqual([]);
    expect(await viewer(first.url, secret!)).toEqual({ data: { viewer: { role: 'ADMIN' } } });
    expect(await first.stop()).toBe(0);

    const second = await start(url);
    expect(printedTokens(second)).toEqual([]);
    expect(second.output()).not.toContain('admin token');
    expect(await viewer(second.url, secret!)).toEqual({ data: { viewer: { role: 'ADMIN' } } });
    expect(await second.stop()).toBe(0);
    expect(await inDatabase(url, (sql) => sql`select name, role from api_tokens`)).toEqual([{ name: 'first admin', role: 'admin' }]);
  });

  it('four instances migrating an empty database at the same moment: all open it, each migration applied once', async () => {
    const url = await emptyDatabase();
    const opened = await Promise.allSettled(Array.from({ length: 4 }, () => openDatabase({ url, max: 2 })));
    for (const o of opened) if (o.status === 'fulfilled') await o.value.close();
    expect(opened.map((o) => (o.status === 'rejected' ? String(o.reason?.cause?.message ?? o.reason) : 'opened'))).toEqual(['opened', 'opened', 'opened', 'opened']);
    expect(await inDatabase(url, (sql) => sql`select count(*)::int as n from drizzle.__drizzle_migrations`)).toEqual([{ n: migrations }]);
  });

  it('eight instances asking for the first admin token at the same moment: one gets it, the others none', async () => {
    // The process test below starts two services, whose start-ups rarely reach this at the same
    // instant; eight pools asking together do, every time.
    const database = await freshDatabase();
    const pools = await Promise.all(Array.from({ length: 8 }, () => openDatabase({ url: database.url!, migrate: false, max: 1 })));
    try {
      const secrets = await Promise.all(pools.map((p) => createFirstAdminToken(p.db)));
      expect(secrets.filter((s) => s !== null)).toHaveLength(1);
      expect(await inDatabase(database.url!, (sql) => sql`select count(*)::int as n from api_tokens`)).toEqual([{ n: 1 }]);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
      await database.close();
    }
  });

  it('two instances starting at once: both migrate and serve, exactly one makes and prints the token', async () => {
    const url = await emptyDatabase();
    const [a, b] = await Promise.all([start(url), start(url)]);
    const printed = [...printedTokens(a!), ...printedTokens(b!)];
    expect(printed, `${a!.output()}\n---\n${b!.output()}`).toHaveLength(1);
    for (const s of [a!, b!]) expect(await viewer(s.url, printed[0]!)).toEqual({ data: { viewer: { role: 'ADMIN' } } });
    expect(await inDatabase(url, (sql) => sql`select count(*)::int as n from api_tokens`)).toEqual([{ n: 1 }]);
    expect(await inDatabase(url, (sql) => sql`select count(*)::int as n from drizzle.__drizzle_migrations`)).toEqual([{ n: migrations }]);
    for (const s of [a!, b!]) expect(await s.stop()).toBe(0);
  });
});
