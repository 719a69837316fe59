import { Rng } from '../util/rng.js';
import { CHANNELS, checkImageSet, mirror, type ImageSet } from './swd.js';

/**
 * The validation ladder every offered metric must rank (issue 10; bench:metrics and the tests):
 * the same distribution ≈ the real-halves baseline < blur σ1 < blur σ2 < checkerboard ±24 <
 * uniform noise < flat grey. Degradations of a set of uint8 HWC RGB images; pure functions.
 */

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** Gaussian blur of standard deviation `sigma` px (kernel radius ceil(3 sigma), mirrored borders), per image and channel. */
export function gaussianBlur(set: ImageSet, sigma: number): ImageSet {
  if (!(sigma > 0)) throw new RangeError(`Expected sigma > 0 for gaussianBlur but received ${sigma}`);
  checkImageSet(set, 'gaussianBlur');
  const { n, height: h, width: w, data } = set;
  const r = Math.ceil(3 * sigma);
  const weights = Array.from({ length: 2 * r + 1 }, (_, j) => Math.exp(-((j - r) ** 2) / (2 * sigma * sigma)));
  const sum = weights.reduce((a, b) => a + b, 0);
  const taps = Float64Array.from(weights, (v) => v / sum);
  // `]!` in the pixel loops: k + r < 2r + 1 = taps.length, mirror() maps into 0..n-1, and
  // data holds n * h * w * CHANNELS bytes (checked above).
  const out = new Uint8Array(data.length);
  const tmp = new Float64Array(h * w * CHANNELS);
  const bytes = h * w * CHANNELS;
  for (let i = 0; i < n; i++) {
    const base = i * bytes;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < CHANNELS; c++) {
          let s = 0;
          for (let k = -r; k <= r; k++) s += taps[k + r]! * data[base + (y * w + mirror(x + k, w)) * CHANNELS + c]!;
          tmp[(y * w + x) * CHANNELS + c] = s;
        }
      }
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < CHANNELS; c++) {
          let s = 0;
          for (let k = -r; k <= r; k++) s += taps[k + r]! * tmp[(mirror(y + k, h) * w + x) * CHANNELS + c]!;
          out[base + (y * w + x) * CHANNELS + c] = clampByte(s);
        }
      }
    }
  }
  return { ...set, data: out };
}

/** A one-pixel checkerboard of ±amplitude added to every channel (clipped to 0..255). */
export function checkerboard(set: ImageSet, amplitude = 24): ImageSet {
  checkImageSet(set, 'checkerboard');
  // `]!`: o + c < n * h * w * CHANNELS = data.length (checked above).
  const { n, height: h, width: w, data } = set;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const d = (x + y) % 2 === 0 ? amplitude : -amplitude;
        const o = ((i * h + y) * w + x) * CHANNELS;
        for (let c = 0; c < CHANNELS; c++) out[o + c] = clampByte(data[o + c]! + d);
      }
    }
  }
  return { ...set, data: out };
}

/** n images of independent uniform noise over 0..255. */
export function uniformNoise(n: number, height: number, width: number, seed = 0): ImageSet {
  const rng = new Rng(seed, 'uniform-noise');
  const data = new Uint8Array(n * height * width * CHANNELS);
  for (let k = 0; k < data.length; k++) data[k] = rng.int(256);
  return { data, n, height, width };
}

/** n images of one flat grey (default 128). */
export function flatGrey(n: number, height: number, width: number, value = 128): ImageSet {
  return { data: new Uint8Array(n * height * width * CHANNELS).fill(value), n, height, width };
}

/** Every channel shifted by `delta` (clipped): what SWD cannot see and the colour distance must. */
export function colourShift(set: ImageSet, delta: readonly [number, number, number]): ImageSet {
  checkImageSet(set, 'colourShift');
  const out = new Uint8Array(set.data.length);
  // `]!`: k < out.length = data.length, and k % CHANNELS < 3 = delta.length.
  for (let k = 0; k < out.length; k++) out[k] = clampByte(set.data[k]! + delta[k % CHANNELS]!);
  return { ...set, data: out };
}
