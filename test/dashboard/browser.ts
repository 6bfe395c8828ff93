import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium (`apt-get install chromium`): no browser download is possible here. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export const SCREENSHOTS = join(process.cwd(), '.tmp', 'screenshots');
export const DESKTOP = { width: 1280, height: 800 };
export const TABLET = { width: 768, height: 1024 };

export interface TestBrowser {
  context: BrowserContext;
  /** A new tab (its own sessionStorage: signed out). */
  page(viewport?: { width: number; height: number }): Promise<Page>;
  /** Every URL the pages asked for, WebSockets included, in order. */
  requests: string[];
  /** A PNG of what the viewport shows (or the whole page) under .tmp/screenshots. */
  screenshot(page: Page, name: string, opts?: { fullPage?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Chromium with a fresh profile. Every request is recorded; any request that is not to `origin`
 * (or one of them) is aborted, so a page that needs the internet (a CDN) visibly fails instead of
 * quietly loading.
 */
export async function launchBrowser(origin: string | readonly string[]): Promise<TestBrowser> {
  const allowed = new Set(typeof origin === 'string' ? [origin] : origin);
  const userDataDir = mkdtempSync(join(tmpdir(), 'es-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: DESKTOP });
  const requests: string[] = [];
  context.on('request', (r) => void requests.push(r.url()));
  context.on('page', (p) => p.on('websocket', (ws) => void requests.push(ws.url())));
  for (const p of context.pages()) p.on('websocket', (ws) => void requests.push(ws.url()));
  await context.route((url) => !allowed.has(url.origin), (route) => route.abort('internetdisconnected'));
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    context,
    requests,
    page: async (viewport = DESKTOP) => {
      const page = await context.newPage();
      await page.setViewportSize(viewport);
      return page;
    },
    screenshot: async (page, name, opts = {}) => {
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: opts.fullPage ?? false });
    },
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
