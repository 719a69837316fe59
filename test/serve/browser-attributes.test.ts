import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { CHROMIUM, referenceSkip } from '../support/references.js';
import type { Served } from './helpers.js';
import { SCREENSHOTS, closePage, servePage, type ServedPage } from './browser-helpers.js';

/**
 * The page on a conditional model, in a real browser (as browser.test.ts): a control per
 * attribute (on / off / any) whose request reaches the face URLs, the detail view's command and
 * the walk; and faces made in the browser with onnxruntime-web for an attribute request equal
 * the server's for the same attr= within one level (the label rows come from the same
 * attributeDraw, compiled into the page).
 */

// Where chromium is missing, test/support/references.ts decides: a failure under CI, else a skip.
const skip = referenceSkip(CHROMIUM);

let served: Served;
let setup: ServedPage | undefined;
let page: Page;
let base: string;

before(async () => {
  if (skip) return;
  setup = await servePage({ conditional: true });
  ({ served, base, page } = setup);
});

after(() => closePage(setup));

const firstSrc = `document.querySelector('#grid img').getAttribute('src')`;

test('a control per attribute: a link sets them, and each setting reaches the face URLs, the command and the walks', { skip }, async () => {
  await page.goto(`${base}/#seed=7&attr=Smiling`);
  await page.waitForFunction(`document.querySelectorAll('#grid img').length >= 48`);
  assert.deepEqual(await page.$$eval('#attributes legend', (els) => els.map((e) => e.textContent)), ['Smiling', 'Eyeglasses', 'Blond Hair']);
  assert.equal(await page.isChecked('input[name="attr-Smiling"][value="on"]'), true);
  assert.equal(await page.isChecked('input[name="attr-Eyeglasses"][value="any"]'), true);
  assert.equal(await page.getAttribute('#grid img', 'src'), '/v1/faces/7/0.png?upscale=4&attr=Smiling');
  await page.check('input[name="attr-Eyeglasses"][value="off"]');
  await page.waitForFunction(`${firstSrc} === '/v1/faces/7/0.png?upscale=4&attr=Smiling,-Eyeglasses'`);
  await page.check('input[name="attr-Smiling"][value="any"]');
  await page.check('input[name="attr-Blond_Hair"][value="on"]');
  await page.waitForFunction(`${firstSrc} === '/v1/faces/7/0.png?upscale=4&attr=-Eyeglasses,Blond_Hair'`);
  await page.waitForFunction(`[...document.querySelectorAll('#grid img')].slice(0, 8).every((i) => i.complete && i.naturalWidth > 0)`);
  await page.click('#grid button[data-index="5"]');
  await page.waitForSelector('#detail[open]');
  assert.equal(
    await page.textContent('#detail-command'),
    'celeba-gan generate --model models/cond.onnx --seed 7 --index 5 --upscale 4 --attr=-Eyeglasses,Blond_Hair',
  );
  await page.click('#use-a');
  await page.click('#grid button[data-index="9"]');
  await page.waitForSelector('#detail[open]');
  await page.click('#use-b');
  await page.fill('#steps', '4');
  await page.click('#walk-go');
  await page.waitForFunction(`(() => { const img = document.querySelector('#walk-anim'); return img.complete && img.naturalWidth === 112; })()`);
  assert.equal(await page.getAttribute('#walk-anim', 'src'), '/v1/interpolate?from=7:5&to=7:9&steps=4&attr=-Eyeglasses,Blond_Hair&format=webp&upscale=4');
  // An attribute walk of face A: its URL names the walked attribute once, in walk= (attr= leaves it out).
  await page.check('input[name="attr-Smiling"][value="on"]');
  await page.selectOption('#walk-attribute', 'Smiling');
  await page.click('#walk-go');
  const attributeWalk = '/v1/interpolate?from=7:5&walk=Smiling&steps=4&attr=-Eyeglasses,Blond_Hair&format=webp&upscale=4';
  await page.waitForFunction(
    `(() => { const img = document.querySelector('#walk-anim'); return img.getAttribute('src') === '${attributeWalk}' && img.complete && img.naturalWidth === 112; })()`,
  );
  await page.screenshot({ path: join(SCREENSHOTS, 'attributes.png') });
});

/** A face's RGB levels as the page's canvas holds them (RGBA) or the server's PNG decodes. */
async function browserFace(index: number): Promise<number[]> {
  // Browser-side code as text: this file is compiled for Node (no DOM types).
  return page.evaluate<number[]>(
    `(() => { const c = document.querySelector('#grid button[data-index="${index}"] canvas'); return [...c.getContext('2d').getImageData(0, 0, c.width, c.height).data]; })()`,
  );
}

async function serverFace(index: number, attr: string): Promise<{ data: Buffer; channels: number; pixels: number }> {
  const res = await served.app.inject(`/v1/faces/7/${index}.png?attr=${attr}`);
  assert.equal(res.statusCode, 200, res.body);
  const { data, info } = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
  return { data, channels: info.channels, pixels: info.width * info.height };
}

function worstDifference(browserRgba: number[], server: { data: Buffer; channels: number; pixels: number }): number {
  assert.equal(browserRgba.length, server.pixels * 4);
  let worst = 0;
  for (let p = 0; p < server.pixels; p++) {
    for (let ch = 0; ch < 3; ch++) worst = Math.max(worst, Math.abs(browserRgba[p * 4 + ch]! - server.data[p * server.channels + ch]!));
  }
  return worst;
}

test('faces made in the browser for an attribute request equal the server faces for the same attr= within one level', { skip }, async () => {
  // A new hash alone would not reload the page.
  await page.goto('about:blank');
  await page.goto(`${base}/#seed=7&attr=Smiling,-Blond_Hair`);
  await page.waitForFunction(`document.querySelectorAll('#grid img').length >= 48`);
  await page.check('#in-browser');
  await page.waitForFunction(`document.querySelectorAll('#grid canvas[data-ready]').length >= 8`, undefined, { timeout: 60_000 });
  for (const index of [0, 1, 2, 7]) {
    const mine = await browserFace(index);
    const worst = worstDifference(mine, await serverFace(index, 'Smiling,-Blond_Hair'));
    assert.ok(worst <= 1, `face 7:${index}: a browser pixel differs from the server's by ${worst} levels`);
    // The request reached the browser's model: the opposite request's face is another face.
    assert.ok(worstDifference(mine, await serverFace(index, '-Smiling,Blond_Hair')) > 1, `face 7:${index} ignores its attributes`);
  }
  await page.screenshot({ path: join(SCREENSHOTS, 'attributes-in-browser.png') });
});
