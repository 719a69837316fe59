import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { CHROMIUM, referenceSkip } from '../support/references.js';
import type { Served } from './helpers.js';
import { SCREENSHOTS, closePage, servePage, type ServedPage } from './browser-helpers.js';

/**
 * The page in a real browser (Debian's chromium driven by playwright-core): it loads, shows the
 * grid, a click opens the detail view, interpolation renders, and faces made in the browser
 * with onnxruntime-web equal the server's within one level. Screenshots go to
 * dist/test-output/serve/ (look at them).
 */

// Where chromium is missing, test/support/references.ts decides: a failure under CI, else a skip.
const skip = referenceSkip(CHROMIUM);

let served: Served;
let setup: ServedPage | undefined;
let page: Page;
let base: string;

before(async () => {
  if (skip) return;
  setup = await servePage();
  ({ served, base, page } = setup);
});

after(() => closePage(setup));

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(SCREENSHOTS, name), fullPage: false });

test('the page loads and shows a grid of faces from the server', { skip }, async () => {
  await page.goto(`${base}/#seed=7`);
  await page.waitForFunction(`document.querySelectorAll('#grid img').length >= 48`);
  // The first faces in view are loaded (lazy images in view load).
  await page.waitForFunction(`[...document.querySelectorAll('#grid img')].slice(0, 8).every((i) => i.complete && i.naturalWidth > 0)`);
  const first = await page.getAttribute('#grid img', 'src');
  assert.match(first ?? '', /\/v1\/faces\/7\/0\.png\?upscale=4$/);
  assert.match((await page.textContent('#model-line')) ?? '', /seed28 width/);
  await shot('grid.png');
  // The truncation switch and slider reach the face URLs; "new seed" changes the seed.
  await page.check('#truncation-on');
  await page.waitForFunction(`document.querySelector('#grid img').getAttribute('src').endsWith('&truncation=0.7')`);
  await page.uncheck('#truncation-on');
  await page.click('#new-seed');
  await page.waitForFunction(`!document.querySelector('#grid img').getAttribute('src').startsWith('/v1/faces/7/')`);
  await page.fill('#seed', '7');
  await page.press('#seed', 'Enter');
  await page.waitForFunction(`document.querySelector('#grid img').getAttribute('src') === '/v1/faces/7/0.png?upscale=4'`);
});

test('a click opens the detail view with seed, index, download link and the generate command', { skip }, async () => {
  await page.click('#grid button[data-index="5"]');
  await page.waitForSelector('#detail[open]');
  assert.equal(await page.textContent('#detail-seed'), '7');
  assert.equal(await page.textContent('#detail-index'), '5');
  assert.equal(await page.textContent('#detail-command'), 'celeba-gan generate --model models/tiny.onnx --seed 7 --index 5 --upscale 4');
  assert.match((await page.getAttribute('#detail-download', 'href')) ?? '', /\/v1\/faces\/7\/5\.png\?upscale=4$/);
  await page.waitForFunction(
    `(() => { const img = document.querySelector('#detail-image img'); return img !== null && img.complete && img.naturalWidth > 0; })()`,
  );
  await shot('detail.png');
  await page.click('#use-a');
});

test('interpolation between two picked faces renders an animation and a frame slider', { skip }, async () => {
  await page.click('#grid button[data-index="9"]');
  await page.waitForSelector('#detail[open]');
  await page.click('#use-b');
  await page.fill('#steps', '8');
  await page.click('#walk-go');
  await page.waitForFunction(
    `(() => { const img = document.querySelector('#walk-anim'); return img !== null && !img.hidden && img.complete && img.naturalWidth === 112; })()`,
  );
  await page.waitForSelector('#walk-frame[data-ready="true"]');
  const src = await page.getAttribute('#walk-anim', 'src');
  assert.equal(src, '/v1/interpolate?from=7:5&to=7:9&steps=8&format=webp&upscale=4');
  await page.fill('#walk-slider', '4');
  await page.dispatchEvent('#walk-slider', 'input');
  assert.match((await page.getAttribute('#walk-frame', 'style')) ?? '', /background-position: -512px 0px/);
  await shot('interpolate.png');
});

test('faces made in the browser (onnxruntime-web, wasm) equal the server faces within one level', { skip }, async () => {
  await page.check('#in-browser');
  await page.waitForFunction(`document.querySelectorAll('#grid canvas[data-ready]').length >= 8`, undefined, { timeout: 60_000 });
  const indices = [0, 1, 2, 7];
  let worst = 0;
  for (const index of indices) {
    // Browser-side code as text: this file is compiled for Node (no DOM types).
    const browserPixels = await page.evaluate<number[]>(
      `(() => { const c = document.querySelector('#grid button[data-index="${index}"] canvas'); return [...c.getContext('2d').getImageData(0, 0, c.width, c.height).data]; })()`,
    );
    const res = await served.app.inject(`/v1/faces/7/${index}.png`);
    assert.equal(res.statusCode, 200);
    const { data, info } = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
    assert.equal(browserPixels.length, info.width * info.height * 4);
    for (let p = 0; p < info.width * info.height; p++) {
      for (let ch = 0; ch < 3; ch++) {
        const d = Math.abs(browserPixels[p * 4 + ch]! - data[p * info.channels + ch]!);
        worst = Math.max(worst, d);
      }
    }
    assert.ok(worst <= 1, `face 7:${index}: a browser pixel differs from the server's by ${worst} levels`);
  }
  // The faces are not all alike (a blank canvas would equal a blank server face).
  const a = await served.app.inject('/v1/faces/7/0.png');
  const b = await served.app.inject('/v1/faces/7/1.png');
  assert.notDeepEqual(a.rawPayload, b.rawPayload);
  await shot('in-browser.png');
});
