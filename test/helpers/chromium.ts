// Headless Chromium for browser tests (playwright-core drives the Debian package; it downloads no
// browser). Missing on a developer machine: the tests skip with a message. Missing in CI: they fail.
import { accessSync, constants } from 'node:fs';
import type { Browser, Page } from 'playwright-core';

const CANDIDATES = [process.env.CHROMIUM_BIN, '/usr/bin/chromium', '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => Boolean(p));

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function chromiumPath(): string | null {
  for (const p of CANDIDATES) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // try the next one
    }
  }
  return null;
}

/** A skip message when Chromium is missing on a developer machine; false when installed or in CI. */
export function chromiumSkipReason(): string | false {
  if (chromiumPath() !== null || process.env.CI === 'true') return false;
  return 'chromium not installed (apt-get install -y --no-install-recommends chromium); skipping browser tests';
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error(`Chromium not found (looked at ${CANDIDATES.join(', ')}); install it with apt-get install -y --no-install-recommends chromium or set CHROMIUM_BIN`);
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}

/**
 * A 1280×800 page at `url`; `errors` collects its errors, every request that leaves `url`'s origin,
 * and every Content-Security-Policy violation (from the page's start: `securitypolicyviolation`).
 */
export async function openWatchedPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith(url)) errors.push(`external request: ${r.url()}`);
  });
  await page.exposeFunction('__cspViolation', (what: string) => errors.push(`CSP violation: ${what}`));
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')))`);
  await page.goto(url);
  return { page, errors };
}
