import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Plugin } from 'graphql-yoga';
import sirv from 'sirv';
import { PACKAGE_ROOT } from '../db/package-root.js';

/** Where `npm run build:dashboard` (run by `npm install`) puts the dashboard and GraphiQL. */
export const DASHBOARD_DIR = join(PACKAGE_ROOT, 'dist', 'dashboard');

// The dashboard keeps a token in sessionStorage: let nothing but its own bundle run or be reached from it.
const DASHBOARD_CSP = "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * GraphiQL's page (GET /graphql, issue 17 item 12) holds a token in its Headers editor and runs
 * whatever it is given: only its own bundle runs (scripts and Monaco's workers from self, no
 * eval), it talks only to this service (HTTP and the socket: CSP 3's 'self' covers ws:/wss: of
 * the same host), and no other site may frame it (clickjacking a mutation). Styles may be inline:
 * Monaco writes its own <style> elements as it runs, and the page sizes its root in one; fonts come
 * inlined in GraphiQL's stylesheet (data: URIs).
 */
export const GRAPHIQL_CSP =
  "default-src 'self'; script-src 'self'; worker-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Headers of both HTML pages beside their CSP: X-Frame-Options for browsers without frame-ancestors. */
const PAGE_HEADERS = { 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer', 'x-content-type-options': 'nosniff' } as const;

/** A yoga plugin: GraphiQL's page (yoga's only HTML answer) gets its CSP and the page headers. */
export function graphiqlHeaders(): Plugin {
  return {
    onResponse({ response }) {
      if (!response.headers.get('content-type')?.startsWith('text/html')) return;
      response.headers.set('content-security-policy', GRAPHIQL_CSP);
      for (const [name, value] of Object.entries(PAGE_HEADERS)) response.headers.set(name, value);
    },
  };
}

function notBuilt(what: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${what} is not built</title></head><body>
<h1>The ${what} is not built yet</h1>
<p>Its assets are made by <code>npm install</code> (or <code>npm run build:dashboard</code>) into <code>dist/dashboard</code>. Run that, then reload this page.</p>
<p>The API itself works: <code>POST /graphql</code>.</p></body></html>`;
}

/**
 * The dashboard at GET / (its hashed files under /assets/), and GraphiQL's page for yoga's
 * renderGraphiQL, from the built folder: no CDN. Without a build the server still starts, and
 * both pages say how to make one. Built while the server runs, they are picked up then.
 */
export function staticAssets(dir: string = DASHBOARD_DIR) {
  let files: ReturnType<typeof sirv> | null = null;
  const built = () => existsSync(join(dir, 'index.html'));
  const handler = () =>
    (files ??= sirv(dir, {
      etag: true,
      setHeaders: (res, pathname) => {
        // Hashed names change with their content: cache them for good, never the page that names them.
        res.setHeader('cache-control', pathname.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
        res.setHeader('x-content-type-options', 'nosniff');
        if (pathname === '/' || pathname === '/index.html') {
          res.setHeader('content-security-policy', DASHBOARD_CSP);
          for (const [name, value] of Object.entries(PAGE_HEADERS)) res.setHeader(name, value);
        }
      },
    }));
  return {
    /** Answers GET and HEAD of / and /assets/…; false for every other request (yoga's). */
    serve(req: IncomingMessage, res: ServerResponse): boolean {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      const path = (req.url ?? '/').split('?')[0]!;
      if (path !== '/' && !path.startsWith('/assets/')) return false;
      if (!built()) {
        res.writeHead(path === '/' ? 503 : 404, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(path === '/' ? notBuilt('dashboard') : '');
        return true;
      }
      // sirv serves index.html for "/"; an unknown asset is a plain 404.
      handler()(req, res, () => {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('not found\n');
      });
      return true;
    },
    /** yoga's renderGraphiQL: the bundled GraphiQL page. */
    renderGraphiQL: (): string => {
      const page = join(dir, 'graphiql.html');
      return existsSync(page) ? readFileSync(page, 'utf8') : notBuilt('GraphiQL page');
    },
  };
}
