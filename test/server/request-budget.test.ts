import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

/**
 * Issue 17 item 8, the other side of the bound: what a caller may have in flight is a budget of
 * body bytes (MAX_REQUESTS_PER_TOKEN full-size requests' worth), not a count. Large bodies beyond it
 * are refused 429 at once; many small queries at once (a dashboard's, a client's) never are.
 * Here the budget is 2 requests of 256 KiB.
 */
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0, requests: { perToken: 2, maxBodyBytes: 256 * 1024 } });
});
afterAll(async () => {
  await t?.close();
});

const post = (body: string) => fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(async (r) => ({ status: r.status, body: (await r.json()) as { errors?: { extensions?: { code?: string } }[] } }));

describe('requests in flight share a budget of body bytes', () => {
  it('30 small queries at once from one caller: every one answered', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, () => post(JSON.stringify({ query: '{ datasets { name } }' }))));
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
  });

  it('large bodies beyond the budget at once: the excess refused 429 TOO_MANY_REQUESTS before its body is read', async () => {
    // Bodies of 200 KiB, each held open half sent (so all are in flight together): the budget
    // (2 x 256 KiB) holds two; the others are answered at once, their bodies never read.
    const { port } = new URL(t.url);
    const open = Array.from({ length: 6 }, () => {
      const req = request({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 200 * 1024 } });
      const answered = new Promise<{ status: number; body: string }>((resolve) =>
        req.on('response', (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        }),
      );
      req.on('error', () => {});
      req.write('x'.repeat(100 * 1024));
      return { req, answered };
    });
    const refused = await Promise.all(open.slice(2).map((o) => o.answered));
    for (const r of refused) expect({ status: r.status, code: JSON.parse(r.body).errors[0].extensions.code }).toEqual({ status: 429, code: 'TOO_MANY_REQUESTS' });
    // The first two were admitted: they wait for the rest of their bodies (bad JSON: 400, not 429).
    for (const o of open.slice(0, 2)) o.req.end('x'.repeat(100 * 1024));
    expect((await Promise.all(open.slice(0, 2).map((o) => o.answered))).map((a) => a.status)).toEqual([400, 400]);
    // Then the budget is free again.
    expect((await post(JSON.stringify({ query: '{ datasets { name } }' }))).status).toBe(200);
  });

  it('a refused body the client is still sending: the client reads its 429, and the connection ends cleanly (no reset)', async () => {
    // Two half-sent bodies hold the budget. A third client sends a whole 4 MiB body (more than the
    // socket buffers hold) and reads nothing for a while, as a loaded client does: cutting its
    // connection while the body still arrives resets it, and the reset throws away the 429
    // waiting unread ("fetch failed", seen under load). The server must read the rest and drop it.
    const { port } = new URL(t.url);
    const holders = Array.from({ length: 2 }, () => {
      const req = request({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 200 * 1024 } });
      const answered = new Promise<number>((resolve) => req.on('response', (res) => (res.resume(), res.on('end', () => resolve(res.statusCode ?? 0)))));
      req.on('error', () => {});
      req.write('x'.repeat(100 * 1024));
      return { req, answered };
    });
    await new Promise((r) => setTimeout(r, 100));
    const body = JSON.stringify({ query: '{ datasets { name } }', variables: { pad: 'p'.repeat(4 * 1024 * 1024) } });
    const outcomes = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const socket = connect(Number(port), '127.0.0.1');
        socket.pause();
        const ended = new Promise<string>((resolve) => {
          socket.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
          socket.on('end', () => resolve('end'));
        });
        socket.write(`POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
        socket.write(body);
        await new Promise((r) => setTimeout(r, 500));
        let text = '';
        socket.on('data', (c) => (text += c));
        socket.resume();
        const how = await ended;
        socket.destroy();
        // connection: close, so no client sends its next request on a socket about to close.
        return { how, status: /^HTTP\/1\.1 (\d+)/.exec(text)?.[1], close: /\r\nconnection: close\r\n/i.test(text), code: /"code":"(\w+)"/.exec(text)?.[1] };
      }),
    );
    expect(outcomes).toEqual(Array(3).fill({ how: 'end', status: '429', close: true, code: 'TOO_MANY_REQUESTS' }));
    for (const h of holders) h.req.end('x'.repeat(100 * 1024));
    expect(await Promise.all(holders.map((h) => h.answered))).toEqual([400, 400]);
  });
});
