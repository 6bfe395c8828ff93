import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import sirv from 'sirv';
import { PACKAGE_ROOT } from '../db/package-root.js';

/** Where `npm run build:dashboard` (run by `npm install`) puts the dashboard and GraphiQL. */
export const DASHBOARD_DIR = join(PACKAGE_ROOT, 'dist', 'dashboard');

// The dashboard keeps a token in sessionStorage: let nothing but its own bundle run or be reached from it.
const DASHBOARD_CSP = "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

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
          res.setHeader('referrer-policy', 'no-referrer');
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
