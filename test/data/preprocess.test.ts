import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp, { type Sharp } from 'sharp';
import { cropBox, cropResize, readJpegHeader } from '../../src/data/preprocess.js';
import { renderSyntheticFace } from '../../src/data/synthetic.js';
import { Rng } from '../../src/util/rng.js';

/** A w x h RGB image whose every pixel is `rgb`. */
function solid(w: number, h: number, rgb: [number, number, number]): Sharp {
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) px.set(rgb, i * 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } });
}

function pixel(img: Buffer, size: number, x: number, y: number): number[] {
  const o = (y * size + x) * 3;
  return [...img.subarray(o, o + 3)];
}

function near(actual: number[], expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: got [${actual}] expected [${expected}]`);
  assert.ok(actual.every((v, i) => Math.abs(v - (expected[i] ?? Number.NaN)) <= tol), `${what}: got [${actual}] expected [${expected}] ±${tol}`);
}

test('crop box: CelebA 178x218 takes the centred 108x108 at (35, 55), like the original', () => {
  assert.deepEqual(cropBox(178, 218, 108), { left: 35, top: 55, side: 108 });
  // smaller than the crop: the largest centred square that fits
  assert.deepEqual(cropBox(100, 90, 108), { left: 5, top: 0, side: 90 });
  assert.deepEqual(cropBox(60, 200, 108), { left: 0, top: 70, side: 60 });
  // crop 0: always the largest centred square
  assert.deepEqual(cropBox(1000, 600, 0), { left: 200, top: 0, side: 600 });
});

test('output is always size x size x 3 uint8, cropped from the centre', async () => {
  // 30x30: a 10x10 green centre in red; crop 10 must see only green.
  const px = Buffer.alloc(30 * 30 * 3);
  for (let y = 0; y < 30; y++) for (let x = 0; x < 30; x++) px.set(x >= 10 && x < 20 && y >= 10 && y < 20 ? [0, 200, 0] : [200, 0, 0], (y * 30 + x) * 3);
  const png = await sharp(px, { raw: { width: 30, height: 30, channels: 3 } }).png().toBuffer();
  const out = await cropResize(png, { size: 5, crop: 10 });
  assert.equal(out.length, 5 * 5 * 3);
  for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) assert.deepEqual(pixel(out, 5, x, y), [0, 200, 0]);
  const whole = await cropResize(png, { size: 6, crop: 0 });
  assert.deepEqual(pixel(whole, 6, 0, 0), [200, 0, 0], 'crop 0 keeps the border');
});

test('greyscale becomes equal R, G, B', async () => {
  const grey = await sharp(Buffer.alloc(16 * 16, 100), { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  assert.equal((await sharp(grey).metadata()).channels, 1);
  const out = await cropResize(grey, { size: 4, crop: 108 });
  assert.equal(out.length, 48);
  for (let i = 0; i < 16; i++) assert.deepEqual(pixel(out, 4, i % 4, Math.floor(i / 4)), [100, 100, 100]);
});

test('alpha is flattened onto white', async () => {
  const rgba = Buffer.alloc(8 * 8 * 4);
  for (let i = 0; i < 64; i++) rgba.set([255, 0, 0, 128], i * 4);
  const png = await sharp(rgba, { raw: { width: 8, height: 8, channels: 4 } }).png().toBuffer();
  assert.equal((await sharp(png).metadata()).hasAlpha, true);
  const out = await cropResize(png, { size: 4, crop: 8 });
  assert.equal(out.length, 48);
  near(pixel(out, 4, 1, 1), [255, 127, 127], 1, 'half-transparent red over white');
});

test('16-bit PNG becomes 8-bit with the same colour', async () => {
  const px = new Uint16Array(8 * 8 * 3);
  for (let i = 0; i < 64; i++) px.set([200 * 257, 50 * 257, 30 * 257], i * 3);
  const png = await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
  assert.equal((await sharp(png).metadata()).depth, 'ushort');
  const out = await cropResize(png, { size: 4, crop: 108 });
  assert.equal(out.length, 48);
  near(pixel(out, 4, 2, 2), [200, 50, 30], 1, '16-bit');
});

test('CMYK JPEG becomes the right RGB', async () => {
  const jpeg = await solid(16, 16, [180, 120, 90]).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
  assert.equal((await sharp(jpeg).metadata()).space, 'cmyk');
  const out = await cropResize(jpeg, { size: 4, crop: 108 });
  assert.equal(out.length, 48);
  near(pixel(out, 4, 1, 2), [180, 120, 90], 24, 'CMYK skin tone');
});

test('EXIF orientation is applied before cropping: orientation 6 turns the left half to the top', async () => {
  // Stored 16 wide x 8 tall: left half red, right half blue. Orientation 6 = rotate 90 degrees
  // clockwise to display, so the upright image is 8 x 16 with red on top.
  const px = Buffer.alloc(16 * 8 * 3);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 16; x++) px.set(x < 8 ? [220, 20, 20] : [20, 20, 220], (y * 16 + x) * 3);
  const jpeg = await sharp(px, { raw: { width: 16, height: 8, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(jpeg).metadata()).orientation, 6);
  const out = await cropResize(jpeg, { size: 4, crop: 0 }); // centred 8x8 of the upright 8x16: rows 4..11
  for (let x = 0; x < 4; x++) {
    near(pixel(out, 4, x, 0), [220, 20, 20], 30, `top row x=${x} is red`);
    near(pixel(out, 4, x, 3), [20, 20, 220], 30, `bottom row x=${x} is blue`);
  }
});

test('ERROR PATH - bytes that are not an image, and a truncated JPEG, throw saying which', async () => {
  await assert.rejects(cropResize(Buffer.from('hello, not a picture'), { size: 4, crop: 8 }), /unsupported image format/i);
  const jpeg = await solid(64, 64, [1, 2, 3]).jpeg().toBuffer();
  assert.ok((await cropResize(jpeg, { size: 4, crop: 8 })).length === 4 * 4 * 3, 'the whole file decodes');
  // libvips' own diagnosis of the cut file, which prepare's skip report passes on.
  await assert.rejects(cropResize(jpeg.subarray(0, jpeg.length >> 1), { size: 4, crop: 8 }), /premature end of JPEG image/);
});

test('the JPEG header reader agrees with libvips on size and orientation', async () => {
  const base = solid(37, 23, [90, 120, 150]);
  const cases: [string, Buffer][] = [
    ['baseline', await base.clone().jpeg().toBuffer()],
    ['progressive', await base.clone().jpeg({ progressive: true }).toBuffer()],
    ['orientation 6', await base.clone().jpeg().withMetadata({ orientation: 6 }).toBuffer()],
    ['orientation 8', await base.clone().jpeg().withMetadata({ orientation: 8 }).toBuffer()],
    ['orientation 3', await base.clone().jpeg().withMetadata({ orientation: 3 }).toBuffer()],
    ['cmyk', await base.clone().toColourspace('cmyk').jpeg().toBuffer()],
    ['greyscale', await base.clone().toColourspace('b-w').jpeg().toBuffer()],
  ];
  for (const [what, jpeg] of cases) {
    const meta = await sharp(jpeg).metadata();
    assert.deepEqual(readJpegHeader(jpeg), { width: meta.width, height: meta.height, orientation: meta.orientation ?? 1 }, what);
  }
  assert.equal(readJpegHeader(await base.clone().png().toBuffer()), null, 'not a JPEG');
  assert.equal(readJpegHeader(cases[0]![1].subarray(0, 12)), null, 'header cut short');
});

/**
 * The original's resize, PIL `Image.resize(size, BILINEAR)`: a separable triangle filter whose
 * support widens by the scale when shrinking (centre (o + 0.5) * scale), rounded per pass.
 */
function pilBilinear(src: Uint8Array, inW: number, inH: number, c: number, outW: number, outH: number): Uint8Array {
  const pass = (data: Uint8Array, w: number, h: number, outN: number, horizontal: boolean): Uint8Array => {
    const inN = horizontal ? w : h;
    const scale = inN / outN;
    const support = Math.max(scale, 1);
    const ow = horizontal ? outN : w;
    const out = new Uint8Array(ow * (horizontal ? h : outN) * c);
    for (let o = 0; o < outN; o++) {
      const centre = (o + 0.5) * scale;
      const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
      const hi = Math.min(Math.trunc(centre + support + 0.5), inN);
      const weights: number[] = [];
      for (let x = lo; x < hi; x++) weights.push(Math.max(0, 1 - Math.abs((x - centre + 0.5) / support)));
      const total = weights.reduce((a, b) => a + b, 0);
      for (let line = 0; line < (horizontal ? h : w); line++) {
        for (let ch = 0; ch < c; ch++) {
          let acc = 0;
          for (let x = lo; x < hi; x++) acc += data[(horizontal ? line * w + x : x * w + line) * c + ch]! * weights[x - lo]!;
          out[(horizontal ? line * ow + o : o * ow + line) * c + ch] = Math.min(255, Math.max(0, Math.round(acc / total)));
        }
      }
    }
    return out;
  };
  return pass(pass(src, inW, inH, outW, true), outW, inH, outH, false);
}

test('crop + resize matches the original (PIL crop 108 then BILINEAR) within a fraction of a level on average', async () => {
  let sum = 0;
  let worst = 0;
  let count = 0;
  for (let k = 0; k < 6; k++) {
    // A CelebA-sized 178x218 picture with detail at all scales: a synthetic face plus noise.
    const face = renderSyntheticFace(k, k, 64);
    const big = await sharp(face, { raw: { width: 64, height: 64, channels: 3 } }).resize(178, 218, { fit: 'fill' }).raw().toBuffer();
    const rng = new Rng(k, 'noise');
    for (let i = 0; i < big.length; i++) big[i] = Math.max(0, Math.min(255, big[i]! + Math.round((rng.uniform() - 0.5) * 40)));
    const png = await sharp(big, { raw: { width: 178, height: 218, channels: 3 } }).png().toBuffer();
    const ours = await cropResize(png, { size: 28, crop: 108 });
    const crop = new Uint8Array(108 * 108 * 3);
    for (let y = 0; y < 108; y++) crop.set(big.subarray(((55 + y) * 178 + 35) * 3, ((55 + y) * 178 + 35 + 108) * 3), y * 108 * 3);
    const reference = pilBilinear(crop, 108, 108, 3, 28, 28);
    for (let i = 0; i < ours.length; i++) {
      const d = Math.abs(ours[i]! - reference[i]!);
      sum += d;
      worst = Math.max(worst, d);
      count++;
    }
  }
  assert.ok(sum / count < 1, `mean absolute difference ${(sum / count).toFixed(3)} levels`);
  assert.ok(worst <= 16, `largest difference ${worst} levels`);
});
