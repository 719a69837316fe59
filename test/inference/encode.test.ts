import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { encodeImage, pngOfFace } from '../../src/inference/encode.js';
import { Rng } from '../../src/util/rng.js';
import { floatNchwToUint8Hwc } from '../../src/util/image.js';

/**
 * The one-pass PNG encoder against what `generate` wrote before it (pngjs 7, colorType 2): the
 * same bytes for every size and kind of image, so a face's file and its URL never change.
 */

/** What encodeImage wrote with pngjs for a plain PNG of h x w x 3 uint8 pixels. */
function pngjsBytes(raw: Uint8Array, h: number, w: number): Buffer {
  const png = Object.assign(new PNG({ width: w, height: h }), { data: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) });
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

/**
 * Float NCHW faces of several kinds: noise (None/Sub win), smooth ramps and blobs (Up, Average,
 * Paeth win), flat areas, and values outside [-1, 1] and NaN (clamped, NaN -> 0).
 */
function faces(n: number, h: number, w: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const rand = (): number => rng.uniform();
  const out = new Float32Array(n * 3 * h * w);
  for (let i = 0; i < n; i++) {
    const kind = i % 4;
    for (let ch = 0; ch < 3; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const at = ((i * 3 + ch) * h + y) * w + x;
          const smooth = Math.sin((x + 1) * (0.2 + 0.1 * ch) + y * 0.15 * (i + 1)) * Math.cos(y * 0.11 - x * 0.05);
          out[at] =
            kind === 0 ? rand() * 2 - 1 : kind === 1 ? smooth : kind === 2 ? (x < w / 2 ? 0.25 : smooth * 0.5 + (rand() - 0.5) * 0.05) : (rand() - 0.5) * 3;
        }
      }
    }
    if (kind === 3) out[i * 3 * h * w + 5] = NaN;
  }
  return out;
}

/** The filter type of each row, read back from a PNG's IDAT. */
function rowFilters(png: Buffer, h: number, w: number): number[] {
  const idatAt = png.indexOf('IDAT', 0, 'latin1');
  const raw = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + png.readUInt32BE(idatAt - 4)));
  return Array.from({ length: h }, (_, y) => raw[y * (w * 3 + 1)]!);
}

const SIZES: [number, number][] = [
  [1, 1],
  [1, 2],
  [2, 1],
  [3, 5],
  [28, 28],
  [37, 19],
  [64, 64],
  // Compressed data larger than zlib's output chunk: several chunks joined.
  [160, 120],
];

test('pngOfFace and encodeImage write the bytes pngjs wrote, for every size, image kind and seed', async () => {
  const used = new Set<number>();
  for (const [h, w] of SIZES) {
    for (const seed of [1, 2018]) {
      const n = 4;
      const images = faces(n, h, w, seed);
      const pixels = floatNchwToUint8Hwc(images, n, 3, h, w);
      for (let i = 0; i < n; i++) {
        const raw = pixels.subarray(i * h * w * 3, (i + 1) * h * w * 3);
        const want = pngjsBytes(raw, h, w);
        assert.deepEqual(pngOfFace(images, i, h, w), want, `pngOfFace ${h}x${w} seed ${seed} face ${i}`);
        assert.deepEqual(
          await encodeImage(raw, h, w, 3, { format: 'png', upscale: 1, resize: 'lanczos' }),
          want,
          `encodeImage ${h}x${w} seed ${seed} face ${i}`,
        );
        for (const f of rowFilters(want, h, w)) used.add(f);
      }
    }
  }
  // The images exercise every filter, so a wrong sum or tie rule for any of them would show.
  assert.deepEqual([...used].sort(), [0, 1, 2, 3, 4]);
});

test('pngOfFace reads face i of a batch: the same bytes as that face alone', () => {
  const images = faces(3, 28, 28, 5);
  const size = 3 * 28 * 28;
  assert.deepEqual(pngOfFace(images, 2, 28, 28), pngOfFace(images.slice(2 * size), 0, 28, 28));
  assert.notDeepEqual(pngOfFace(images, 1, 28, 28), pngOfFace(images, 2, 28, 28));
});

test('ERROR PATH - pngOfFace of a face past the end of the batch is a RangeError naming the shape', () => {
  assert.throws(() => pngOfFace(new Float32Array(3 * 4 * 4), 1, 4, 4), {
    name: 'RangeError',
    message: /face 1 of \[3, 4, 4\] needs 96 values but received 48/,
  });
});
