import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM } from '../support/references.js';
import { serveTiny, type Served } from './helpers.js';

/**
 * The browser tests' setup (browser.test.ts, browser-attributes.test.ts): a tiny model served
 * on 127.0.0.1 and Debian's chromium driven by playwright-core on one page. `close` stops both,
 * whatever was started. Screenshots go to SCREENSHOTS (look at them).
 */

export const SCREENSHOTS = join(process.cwd(), 'dist', 'test-output', 'serve');

export interface ServedPage {
  served: Served;
  base: string;
  browser: Browser;
  page: Page;
}

export async function servePage(opts: Parameters<typeof serveTiny>[0] = {}): Promise<ServedPage> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const served = await serveTiny(opts);
  let browser: Browser | undefined;
  try {
    const base = await served.app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM.executable, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.setDefaultTimeout(30_000);
    return { served, base, browser, page };
  } catch (err) {
    await browser?.close();
    await served.stop();
    throw err;
  }
}

/** Closes the browser and stops the server (either may be missing: setup skipped or failed). */
export async function closePage(p: ServedPage | undefined): Promise<void> {
  await p?.browser.close();
  await p?.served.stop();
}
