import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { useApp } from '../helpers/app.js';
import { backend } from '../helpers/database.js';
import { runMain, spawnService, within, wsUrl } from '../helpers/live.js';

/**
 * Issue 17 item 5: with ANONYMOUS_ROLE set, a page on another origin opened a socket to the
 * service and ran `createApiToken(role: ADMIN)` (sockets are not subject to CORS). Sockets now
 * check `Origin` at the upgrade: the service's own origin and CORS_ORIGINS pass, a client that
 * sends none (not a browser) passes, anything else is a 403. And ANONYMOUS_ROLE refuses to start
 * unless the service listens on loopback.
 */

const t = useApp({ corsOrigins: ['https://dash.example.org'], flushIntervalSeconds: 0 });

const MINT = 'mutation { createApiToken(name: "from a page", role: ADMIN) { ... on MutationCreateApiTokenSuccess { data { secret } } } }';
/** The newest token: a socket that minted one would change it. */
const NEWEST = '{ apiTokens(last: 1) { nodes { id } } }';

type Opened = { refused: number; body: string } | { answer: any };

/**
 * Opens a graphql-transport-ws socket with `origin` as its Origin header (none when undefined),
 * and, once acknowledged, runs MINT on it: the refusal's status and body, or the mutation's answer.
 */
function mintThrough(url: string, origin: string | undefined, host?: string): Promise<Opened> {
  return within(
    new Promise<Opened>((resolve, reject) => {
      const ws = new WebSocket(wsUrl(url), 'graphql-transport-ws', { ...(origin === undefined ? {} : { origin }), ...(host ? { headers: { host } } : {}) });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ refused: res.statusCode ?? 0, body }));
      });
      ws.on('error', reject);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
      ws.on('close', (code, reason) => resolve({ closed: code, reason: String(reason) } as never));
      ws.on('message', (raw) => {
        const m = JSON.parse(String(raw)) as { type: string; payload?: unknown };
        if (m.type === 'connection_ack') ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: MINT } }));
        if (m.type === 'next') {
          ws.close();
          resolve({ answer: m.payload });
        }
      });
    }),
    10_000,
    `a socket with origin ${origin}`,
  );
}

describe('sockets check the page origin', () => {
  it('a page of a foreign origin is refused at the upgrade (403) and mints nothing, even with anonymous admin access', async () => {
    const before = (await t.gql(NEWEST)).data.apiTokens.nodes;
    for (const origin of ['https://evil.example', 'http://127.0.0.1.evil.example', 'null', `http://localhost:${new URL(t.url).port}`, 'https://dash.example.org:8443']) {
      expect(await mintThrough(t.url, origin), origin).toEqual({ refused: 403, body: 'Forbidden: sockets from pages of this origin are not allowed (see CORS_ORIGINS)' });
    }
    expect((await t.gql(NEWEST)).data.apiTokens.nodes).toEqual(before);
  });

  it("the service's own origin, a CORS_ORIGINS origin and a client without Origin still connect", async () => {
    const own = new URL(t.url).origin;
    for (const origin of [own, 'https://dash.example.org', undefined]) {
      const opened = await mintThrough(t.url, origin);
      expect(opened, String(origin)).toMatchObject({ answer: { data: { createApiToken: { data: { secret: expect.stringMatching(/^est_/) } } } } });
    }
  });
});

describe('anonymous access answers only requests addressed to a loopback name', () => {
  it('a page that rebinds its own name to 127.0.0.1 (same-origin to the browser) gets no anonymous admin, over HTTP or a socket', async () => {
    const port = new URL(t.url).port;
    const host = `evil.example:${port}`;
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { host, 'content-type': 'application/json', origin: `http://${host}` } }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ query: MINT }));
    });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    // Its socket passes the Origin check (same origin as far as the browser knows) but is refused at connection_init.
    expect(await mintThrough(t.url, `http://${host}`, host)).toEqual({ closed: 4403, reason: 'Forbidden: no API token' });
    // The same without the rebinding: 127.0.0.1 and localhost are served anonymously.
    expect(await mintThrough(t.url, undefined, `localhost:${port}`)).toMatchObject({ answer: { data: { createApiToken: { data: { secret: expect.any(String) } } } } });
  });
});

// Processes that need no database: run once, in the PGlite run.
describe.runIf(backend === 'pglite')('ANONYMOUS_ROLE is loopback-only', () => {
  it('refuses to start on a non-loopback HOST, for every role', async () => {
    for (const [role, host] of [
      ['admin', '0.0.0.0'],
      ['reviewer', '::'],
      ['collector', '192.0.2.10'],
    ] as const) {
      const out = await runMain([], { ANONYMOUS_ROLE: role, HOST: host, DATABASE_URL: '', DATA_DIR: 'memory://' });
      expect(out.code, out.stdout).toBe(2);
      expect(out.stderr).toBe(
        `ANONYMOUS_ROLE=${role} lets every request without a token act as ${role}: it is for local development only and needs HOST on loopback (127.0.0.1, ::1 or localhost), not "${host}". Unset ANONYMOUS_ROLE and use API tokens (npm run token -- create) to listen there\n`,
      );
      expect(out.stdout).not.toContain('listening');
    }
  }, 120_000);

  it('starts on loopback and warns that anonymous access is on', async () => {
    const service = await spawnService({ ANONYMOUS_ROLE: 'admin', HOST: 'localhost', DATABASE_URL: '', DATA_DIR: 'memory://' });
    try {
      const warning = service
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; anonymousRole?: string })
        .find((l) => l.anonymousRole);
      expect(warning).toMatchObject({ level: 40, anonymousRole: 'admin', msg: 'requests without a token act as admin (ANONYMOUS_ROLE): for local development only, so the service listens on loopback only' });
      expect((await fetch(service.url.replace('/graphql', '/health'))).status).toBe(200);
    } finally {
      await service.stop();
    }
  }, 120_000);
});
