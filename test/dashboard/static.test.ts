import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/client.js';
import { buildApp, type App } from '../../src/server/app.js';
import { freshDatabase } from '../helpers/database.js';

/** How the server serves the built dashboard and GraphiQL (src/server/static.ts), and what it says when they are not built. No browser needed. */

let database: Database;
const started: App[] = [];
beforeAll(async () => {
  database = await freshDatabase();
});
afterAll(async () => {
  for (const app of started) await app.stop();
  await database.close();
});

async function start(dashboardDir: string, graphiql = true): Promise<string> {
  const app = buildApp({ db: database.db, dashboardDir, graphiql, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
  started.push(app);
  return new URL(await app.start(0, '127.0.0.1')).origin;
}

/** A GET with the path sent exactly as written (fetch would normalise `..` away). */
function rawGet(origin: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${origin}/`, { path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const html = { accept: 'text/html' };

describe('without a build', () => {
  let origin = '';
  beforeAll(async () => {
    origin = await start(join(tmpdir(), 'es-no-such-dashboard'));
  });

  it('starts, says at / how to build the dashboard, and the API still answers', async () => {
    const page = await fetch(`${origin}/`, { headers: html });
    expect(page.status).toBe(503);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const text = await page.text();
    expect(text).toContain('The dashboard is not built yet');
    expect(text).toContain('npm run build:dashboard');

    const graphiql = await fetch(`${origin}/graphql`, { headers: html });
    expect(graphiql.status).toBe(200);
    expect(await graphiql.text()).toContain('The GraphiQL page is not built yet');

    const api = await fetch(`${origin}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ viewer { role } }' }) });
    expect(await api.json()).toEqual({ data: { viewer: { role: 'ADMIN' } } });
  });
});

describe('with a build', () => {
  let dir = '';
  let origin = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'es-dashboard-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><p>the dashboard</p>');
    writeFileSync(join(dir, 'graphiql.html'), '<!doctype html><p>bundled graphiql</p>');
    writeFileSync(join(dir, 'assets', 'app-1a2b3c.js'), 'console.log("dashboard")');
    origin = await start(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the dashboard at / under a strict content security policy, never cached stale', async () => {
    const page = await fetch(`${origin}/`, { headers: html });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(await page.text()).toBe('<!doctype html><p>the dashboard</p>');
    const head = await fetch(`${origin}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('serves hashed assets for good, and nothing outside the build', async () => {
    const asset = await fetch(`${origin}/assets/app-1a2b3c.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toBe('console.log("dashboard")');

    expect((await fetch(`${origin}/assets/missing.js`)).status).toBe(404);
    for (const path of ['/assets/../../package.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json']) {
      const res = await rawGet(origin, path);
      expect(res.status, path).toBe(404);
      expect(res.body).not.toContain('"name"');
    }
    // The GraphiQL page is yoga's to render (GRAPHIQL=false turns it off), not a file anyone may fetch.
    expect((await fetch(`${origin}/graphiql.html`)).status).toBe(404);
  });

  it('renders the bundled GraphiQL at GET /graphql for a browser, and leaves the rest to the API', async () => {
    const graphiql = await fetch(`${origin}/graphql`, { headers: html });
    expect(graphiql.status).toBe(200);
    expect(await graphiql.text()).toBe('<!doctype html><p>bundled graphiql</p>');
    expect((await fetch(`${origin}/`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect(await (await fetch(`${origin}/health`)).json()).toEqual({ status: 'ok' });
  });

  it('with GRAPHIQL=false there is no GraphiQL page', async () => {
    const off = await start(dir, false);
    const res = await fetch(`${off}/graphql`, { headers: html });
    expect(await res.text()).not.toContain('bundled graphiql');
    expect((await fetch(`${off}/`)).status).toBe(200);
  });
});
