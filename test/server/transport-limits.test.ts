import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEFAULT_LIMITS } from '../../src/core/types.js';
import { DEFAULT_MAX_INIT_BYTES } from '../../src/server/ws.js';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { socketClient, spawnService, waitUntil, within, wsUrl } from '../helpers/live.js';

/**
 * What a stranger can make the server do before it knows who they are, and what a browser
 * page of another origin may read (issue 10 items 10, 11 and 15).
 */

let t: TestApp;
let secret: string;
/** The server side of every socket upgraded, to see how much of a message it read. */
const upgraded: Socket[] = [];
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: null } });
  t.app.server.on('upgrade', (_req, socket: Socket) => upgraded.push(socket));
  secret = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
});
afterAll(async () => {
  await t?.close();
});

/** A raw graphql-transport-ws socket: resolves with how the server closed it. */
function rawSocket(url: string, onOpen: (ws: WebSocket) => void): Promise<{ code: number; reason: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(url), 'graphql-transport-ws');
    const before = upgraded.length;
    ws.once('open', () => onOpen(ws));
    ws.once('error', reject);
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), socket: upgraded[before]! }));
  });
}

describe('before connection_ack a socket may send a few KB (issue 10 item 10)', () => {
  it('a 1 MB connection_init closes the socket with 1009, read no further than the cap', async () => {
    const init = JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${secret}`, pad: 'x'.repeat(1 << 20) } });
    const closed = await within(rawSocket(t.url, (ws) => ws.send(init)), 10_000, 'the socket to close');
    expect(closed.code).toBe(1009);
    expect(closed.reason).toBe(`Message Too Big: at most ${DEFAULT_MAX_INIT_BYTES} bytes before connection_ack`);
    // The server stopped reading: it never took in the megabyte (one read of 64 KiB may follow the cap).
    expect(closed.socket.bytesRead).toBeLessThan(DEFAULT_MAX_INIT_BYTES + 128 * 1024);
  });

  it('so does the first 64 KiB of a message whose rest never comes: the server does not wait for it', async () => {
    const closed = await within(
      rawSocket(t.url, (ws) => ws.send(`{"type":"connection_init","payload":{"pad":"${'x'.repeat(64 * 1024)}`, { fin: false })),
      // Well under the 3 s connection_init timeout, which would close it with 4408 instead.
      2_000,
      'the socket to close',
    );
    expect(closed.code).toBe(1009);
    await waitUntil(() => closed.socket.destroyed, 'the server to let the socket go', 3_000);
  });

  it('a connection_init under the cap is acknowledged, and then a message of 100 KiB is served', async () => {
    const ws = socketClient(t.url, { token: secret });
    try {
      const padded = `{ viewer { role } } # ${'x'.repeat(100 * 1024)}`;
      expect((await ws.request(padded)).data).toEqual({ viewer: { role: 'ADMIN' } });
      expect(ws.closed.code).toBeUndefined();
    } finally {
      await ws.close();
    }
  });
});

/** A GET of the endpoint, as a browser or curl would send it. */
async function get(url: string, query: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}?query=${encodeURIComponent(query)}`, { headers: { accept: 'application/json', ...headers } });
  return { status: res.status, body: await res.text() };
}

describe('authentication comes before parsing and validation, on every method (issue 10 item 11)', () => {
  let closed: TestApp;
  beforeAll(async () => {
    closed = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: null }, hardening: { introspection: false } });
  });
  afterAll(async () => {
    await closed?.close();
  });
  const BAD = '{ entitiez(dataset: "trees") { idd } }';

  it('GET with a bad field and no token: 401 UNAUTHENTICATED naming no field, with introspection on and off', async () => {
    for (const app of [t, closed]) {
      for (const query of [BAD, '{ __schema { types { name } } }', '{ datasets { name']) {
        const r = await get(app.url, query);
        expect(r.status, query).toBe(401);
        expect(JSON.parse(r.body)).toEqual({ errors: [{ message: expect.any(String), extensions: { code: 'UNAUTHENTICATED' } }] });
        expect(r.body).not.toMatch(/entit|idd|dataset|__schema|Query|Syntax/i);
      }
      // A wrong token is no better; a real one gets the validation errors.
      expect((await get(app.url, BAD, { authorization: 'Bearer est_wrong' })).status).toBe(401);
    }
    const withToken = await get(t.url, BAD, { authorization: `Bearer ${secret}` });
    expect(withToken.status).toBe(200);
    expect(JSON.parse(withToken.body).errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('the same for POST, SSE and a body that is not even JSON', async () => {
    for (const [headers, body] of [
      [{ 'content-type': 'application/json' }, JSON.stringify({ query: BAD })],
      [{ 'content-type': 'application/json', accept: 'text/event-stream' }, JSON.stringify({ query: 'subscription { nope }' })],
      [{ 'content-type': 'application/json' }, '{ not json'],
    ] as const) {
      const res = await fetch(t.url, { method: 'POST', headers, body });
      const text = await res.text();
      expect(res.status, body).toBe(401);
      expect(JSON.parse(text).errors[0].extensions.code).toBe('UNAUTHENTICATED');
      expect(text).not.toMatch(/entit|nope|JSON|Syntax/i);
    }
  });
});

describe('a chunked body over the limit (issue 10 item 15)', () => {
  let small: TestApp;
  beforeAll(async () => {
    // maxBatch × maxChangeBytes = 4 KiB of body.
    small = await startTestApp({ flushIntervalSeconds: 0, limits: { ...DEFAULT_LIMITS, maxBatch: 2, maxChangeBytes: 2048 } });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('is refused 413 TOO_LARGE, as one with a content-length is', async () => {
    const body = JSON.stringify({ query: `{ viewer { role } } # ${'x'.repeat(8000)}` });
    const chunks = [body.slice(0, 3000), body.slice(3000)];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(next));
      },
    });
    const chunked = await fetch(small.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    const sized = await fetch(small.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    for (const [res, message] of [
      [chunked, 'request body exceeds 4096'],
      [sized, `request body of ${body.length} bytes exceeds 4096`],
    ] as const) {
      expect(res.status).toBe(413);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ errors: [{ message, extensions: { code: 'TOO_LARGE' } }] });
    }
  });
});

describe('CORS (issue 10 item 15)', () => {
  let allowing: TestApp;
  beforeAll(async () => {
    allowing = await startTestApp({ flushIntervalSeconds: 0, corsOrigins: ['https://dash.example.org', 'http://localhost:5173'] });
  });
  afterAll(async () => {
    await allowing?.close();
  });

  const preflight = (url: string, origin: string) =>
    fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
  const post = (url: string, origin: string) =>
    fetch(url, { method: 'POST', headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${secret}` }, body: JSON.stringify({ query: '{ viewer { role } }' }) });
  const cors = (res: Response) => Object.fromEntries([...res.headers].filter(([k]) => k.startsWith('access-control-')));

  it('by default no origin gets CORS headers, and nothing says credentials', async () => {
    for (const origin of ['https://evil.example', 'https://dash.example.org']) {
      expect(cors(await preflight(t.url, origin))).toEqual({});
      const res = await post(t.url, origin);
      expect(res.status).toBe(200);
      expect(cors(res)).toEqual({});
    }
  });

  it('configured origins get them (without credentials); any other origin still none', async () => {
    for (const origin of ['https://dash.example.org', 'http://localhost:5173']) {
      expect(cors(await preflight(allowing.url, origin))).toEqual({
        'access-control-allow-origin': origin,
        'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'authorization, content-type',
      });
      expect(cors(await post(allowing.url, origin))).toEqual({ 'access-control-allow-origin': origin, 'access-control-allow-methods': 'GET, POST' });
    }
    expect(cors(await preflight(allowing.url, 'https://evil.example'))).toEqual({});
    expect(cors(await post(allowing.url, 'https://evil.example'))).toEqual({});
  });

  it('CORS_ORIGINS reaches the service; a value that is not an origin stops it with a message', async () => {
    const service = await spawnService({ DATA_DIR: 'memory://', DATABASE_URL: t.databaseUrl ?? '', CORS_ORIGINS: 'https://dash.example.org, http://localhost:5173', LOG_LEVEL: 'warn' });
    try {
      expect(cors(await fetch(service.url, { method: 'POST', headers: { origin: 'http://localhost:5173', 'content-type': 'application/json' }, body: '{"query":"{ viewer { role } }"}' }))).toMatchObject({
        'access-control-allow-origin': 'http://localhost:5173',
      });
      expect(cors(await preflight(service.url, 'https://evil.example'))).toEqual({});
    } finally {
      await service.stop();
    }
    await expect(spawnService({ DATA_DIR: 'memory://', DATABASE_URL: t.databaseUrl ?? '', CORS_ORIGINS: 'https://dash.example.org/app' })).rejects.toThrow(
      /CORS_ORIGINS takes origins like https:\/\/dash\.example\.org .*not "https:\/\/dash\.example\.org\/app"/,
    );
  });
});
