import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';
import type { AxeResults, ImpactValue } from 'axe-core';

/**
 * axe-core (Deque's accessibility engine, the one @axe-core/playwright wraps) run inside the page.
 * Its source is evaluated through the DevTools protocol rather than added as a <script>: the
 * dashboard's Content-Security-Policy allows no inline script, and bypassing the policy for the
 * test would test a page users never get.
 */
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** What fails a view: the impacts axe calls serious or critical (moderate and minor are reported, not fatal). */
const FATAL: readonly ImpactValue[] = ['serious', 'critical'];

export interface Violation {
  id: string;
  impact: ImpactValue | null | undefined;
  help: string;
  /** The offending elements, as selectors with their HTML, so a failure says where. */
  nodes: string[];
}

/** Runs axe on the page as it is now (WCAG 2.x A and AA plus axe's best practices) and returns the serious and critical violations. */
export async function audit(page: Page): Promise<Violation[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const results = (await page.evaluate(() =>
    // @ts-expect-error axe is the global the evaluated source defines
    window.axe.run(document, { resultTypes: ['violations'], runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }),
  )) as AxeResults;
  return results.violations
    .filter((v) => FATAL.includes(v.impact as ImpactValue))
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.html.slice(0, 160)}`) }));
}

/**
 * Keyboard reach: presses Tab until the focus comes round again and returns the visible controls
 * it never reached (a radio group is one stop: its checked radio, or its first when none is).
 * An empty list means every link, button and field of the view can be reached without a mouse.
 */
export async function unreachableByTab(page: Page, most = 300): Promise<string[]> {
  await page.evaluate(() => {
    (document.activeElement as HTMLElement | null)?.blur();
    document.querySelectorAll('[data-tab-reached]').forEach((el) => el.removeAttribute('data-tab-reached'));
  });
  let first: string | null = null;
  for (let i = 0; i < most; i++) {
    await page.keyboard.press('Tab');
    const mark = await page.evaluate((n) => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const seen = el.getAttribute('data-tab-reached');
      if (!seen) el.setAttribute('data-tab-reached', String(n));
      return seen ?? String(n);
    }, i);
    if (mark === null) continue;
    if (first === null) first = mark;
    else if (mark === first) break;
  }
  return page.evaluate(() => {
    const visible = (el: Element) => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden' && !el.closest('dialog:not([open])');
    };
    const controls = [...document.querySelectorAll<HTMLElement>('a[href], button:not(:disabled), input:not(:disabled), textarea:not(:disabled), select:not(:disabled), [tabindex="0"]')].filter(visible);
    const missed = controls.filter((el) => {
      if (el.hasAttribute('data-tab-reached')) return false;
      if (el instanceof HTMLInputElement && el.type === 'radio' && el.name) {
        const group = [...document.querySelectorAll<HTMLInputElement>(`input[type=radio][name="${CSS.escape(el.name)}"]`)];
        return !group.some((r) => r.hasAttribute('data-tab-reached'));
      }
      return true;
    });
    return missed.map((el) => `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 60)}"`);
  });
}
