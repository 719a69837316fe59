import { Rng } from '../util/rng.js';
import { itemAt } from '../util/at.js';

/**
 * Sliced Wasserstein distance between two image sets, as Karras et al. 2018 ("Progressive
 * Growing of GANs", section 5 and appendix D) define it and as their
 * `metrics/sliced_wasserstein.py` computes it:
 *
 * 1. Each image becomes a Laplacian pyramid (5x5 binomial filter, mirrored borders, as
 *    cv2.pyrDown/pyrUp), halving from full size down to a coarsest level of about 16 px: at a
 *    power of two exactly 16 px, as the reference; at other sizes the level nearest 16 px on a
 *    log scale (`pyramidSizes`).
 * 2. From every level, 128 neighbourhoods of 7x7 pixels per image, at random positions, give
 *    147-dimensional descriptors (3 channels x 7 x 7).
 * 3. Each set's descriptors are normalised per channel (mean 0, standard deviation 1 over all of
 *    that set's descriptors). That is why SWD ignores a global colour or contrast change: pair
 *    it with `colourDistance`.
 * 4. The descriptors are projected on 512 random unit directions (4 repeats of 128); the
 *    projections are sorted, and the mean absolute difference of the sorted values is the
 *    sliced Wasserstein-1 distance. Per level, x1e3; the average over levels is the summary.
 *
 * Differences from the reference, all deliberate: the random patch positions and directions come
 * from fixed seeds (the reference uses numpy's global state), so a number is reproducible; both
 * sets use the same patch positions, so swd(x, x) is exactly 0; a level of odd size is
 * upsampled to that odd size; and below, the pyramid depth at sizes that are not powers of two
 * (the reference assumes powers of two: its `while res >= 16` gives 28 px a single level, the raw
 * image, so nothing separates fine texture from the face's structure; here 28 px gets a 28 px
 * band-pass level over a 14 px residual, as 32 px gets 32 over 16).
 *
 * Memory: one level at a time, two sets of n x 128 descriptors of 147 float32s (about 150 KB per
 * image of n).
 */

/** n images, uint8 HWC RGB, back to back (what every eval source reads). */
export interface ImageSet {
  readonly data: Uint8Array;
  readonly n: number;
  readonly height: number;
  readonly width: number;
}

export interface SwdOptions {
  /** Seeds the patch positions and the projection directions (default 0). */
  seed?: number;
  /** Neighbourhoods per image and level (default 128). */
  patchesPerImage?: number;
  /** Neighbourhood side, odd (default 7). */
  patchSize?: number;
  /** Direction repeats (default 4) of `directionsPerRepeat` (default 128): 512 directions. */
  repeats?: number;
  directionsPerRepeat?: number;
  /**
   * The coarsest pyramid level's target side (default 16 px, ProGAN's): the pyramid halves while
   * the next level stays at least minResolution / sqrt(2), so the coarsest level is the one
   * nearest minResolution on a log scale (16 at 32, 64, 128 px; 14 at 28 px; 12 at 24 px).
   */
  minResolution?: number;
}

export interface SwdLevel {
  height: number;
  width: number;
  /** SWD x1e3 at this level. */
  value: number;
}

export interface SwdResult {
  /** Finest level first. */
  levels: SwdLevel[];
  /** Mean over levels, x1e3. */
  mean: number;
  n: number;
  seed: number;
}

export const SWD_DEFAULTS = Object.freeze({ seed: 0, patchesPerImage: 128, patchSize: 7, repeats: 4, directionsPerRepeat: 128, minResolution: 16 });

export const CHANNELS = 3;

/** Check that `set` holds what it says; RangeError naming `what` otherwise. */
export function checkImageSet(set: ImageSet, what: string): void {
  const { n, height, width, data } = set;
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`${what}: expected n >= 1 images of positive integer size but received n=${n}, ${height}x${width}`);
  }
  if (data.length !== n * height * width * CHANNELS) {
    throw new RangeError(`${what}: ${n} RGB images of ${height}x${width} need ${n * height * width * CHANNELS} bytes but received ${data.length}`);
  }
}

/** Images `start .. start+count-1` of a set, without copying. */
export function imageSubset(set: ImageSet, start: number, count: number): ImageSet {
  const bytes = set.height * set.width * CHANNELS;
  return { data: set.data.subarray(start * bytes, (start + count) * bytes), n: count, height: set.height, width: set.width };
}

/**
 * Sizes of the pyramid levels: full size, then halved (rounding up) while the smaller side stays
 * >= minResolution / sqrt(2). At powers of two that is ProGAN's `while res >= 16` exactly; at
 * other sizes the coarsest level is the one nearest minResolution on a log scale. Empty when the
 * image itself is below minResolution / sqrt(2) (`smallestImageSide`).
 */
export function pyramidSizes(height: number, width: number, minResolution: number = SWD_DEFAULTS.minResolution): [number, number][] {
  const floor = minResolution / Math.SQRT2;
  const sizes: [number, number][] = [];
  let h = height;
  let w = width;
  while (Math.min(h, w) >= floor) {
    sizes.push([h, w]);
    h = Math.ceil(h / 2);
    w = Math.ceil(w / 2);
  }
  return sizes;
}

/** The smallest image side SWD accepts: the first integer >= minResolution / sqrt(2) (12 px by default). */
export function smallestImageSide(minResolution: number = SWD_DEFAULTS.minResolution): number {
  return Math.ceil(minResolution / Math.SQRT2);
}

// 1 4 6 4 1 binomial, separable: the reference's 5x5 / 256 filter.
const TAPS = [1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16] as const;

/** scipy.ndimage 'mirror' (= numpy 'reflect'): d c b | a b c d | c b a. Also the blur's border (degrade.ts). */
export function mirror(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/** 5x5 binomial blur of one plane, mirrored borders, times `gain`. */
function blur(src: Float32Array, h: number, w: number, gain: number): Float32Array {
  // Hot loops keep `]!`: k < 5 = TAPS.length, mirror() maps into 0..n-1, and src holds h * w.
  const tmp = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = 0; k < 5; k++) s += TAPS[k]! * src[y * w + mirror(x + k - 2, w)]!;
      tmp[y * w + x] = s;
    }
  }
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = 0; k < 5; k++) s += TAPS[k]! * tmp[mirror(y + k - 2, h) * w + x]!;
      out[y * w + x] = s * gain;
    }
  }
  return out;
}

function pyrDown(src: Float32Array, h: number, w: number, oh: number, ow: number): Float32Array {
  // `]!` in the hot loop: oh = ceil(h / 2), so 2y < h, and likewise 2x < w.
  const b = blur(src, h, w, 1);
  const out = new Float32Array(oh * ow);
  for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) out[y * ow + x] = b[2 * y * w + 2 * x]!;
  return out;
}

function pyrUp(src: Float32Array, h: number, w: number, oh: number, ow: number): Float32Array {
  // `]!` in the hot loop: y < h and x < w, and src holds h * w.
  const z = new Float32Array(oh * ow);
  for (let y = 0; y < h && 2 * y < oh; y++) for (let x = 0; x < w && 2 * x < ow; x++) z[2 * y * ow + 2 * x] = src[y * w + x]!;
  return blur(z, oh, ow, 4);
}

/**
 * The Laplacian pyramid of one uint8 HWC RGB image: per level, a CHW float32 array (the
 * band-pass detail; the last level is the low-pass residual).
 */
export function laplacianPyramid(image: Uint8Array, height: number, width: number, levels: number): Float32Array[] {
  const out: { h: number; w: number; data: Float32Array }[] = [];
  for (let l = 0, h = height, w = width; l < Math.max(levels, 1); l++, h = Math.ceil(h / 2), w = Math.ceil(w / 2)) {
    out.push({ h, w, data: new Float32Array(CHANNELS * h * w) });
  }
  // The pixel loops keep `]!`: p < height * width (or h * w), the sizes of image / CHANNELS,
  // plane and up.
  for (let c = 0; c < CHANNELS; c++) {
    let plane: Float32Array = new Float32Array(height * width);
    for (let p = 0; p < height * width; p++) plane[p] = image[p * CHANNELS + c]!;
    for (const [l, { h, w, data }] of out.entries()) {
      const next = out[l + 1];
      if (next === undefined) {
        data.set(plane, c * h * w); // the low-pass residual
        break;
      }
      const down = pyrDown(plane, h, w, next.h, next.w);
      const up = pyrUp(down, next.h, next.w, h, w);
      for (let p = 0; p < h * w; p++) data[c * h * w + p] = plane[p]! - up[p]!;
      plane = down;
    }
  }
  return out.map((level) => level.data);
}

/**
 * Top-left corners of the patches for `n` images at one level: [x0, y0] pairs, `perImage` per
 * image, uniform over the positions the reference samples (centres in [r, size - r - 1]).
 */
export function patchPositions(seed: number, level: number, n: number, perImage: number, height: number, width: number, patchSize: number): Int32Array {
  const r = patchSize >> 1;
  if (height < patchSize || width < patchSize) throw new RangeError(`a level of ${height}x${width} is too small for ${patchSize}x${patchSize} patches`);
  const rng = new Rng(seed, 'swd-patches', level);
  const out = new Int32Array(n * perImage * 2);
  for (let i = 0; i < n * perImage; i++) {
    out[2 * i] = rng.int(width - 2 * r);
    out[2 * i + 1] = rng.int(height - 2 * r);
  }
  return out;
}

/** `count` random unit directions in `dim` dimensions, direction-major ([count, dim]), float32 as the reference. */
export function swdDirections(seed: number, level: number, repeat: number, dim: number, count: number): Float32Array {
  const rng = new Rng(seed, 'swd-directions', level, repeat);
  const out = new Float32Array(count * dim);
  const v = new Float64Array(dim);
  // `]!` in the hot loop: k < dim = v.length.
  for (let j = 0; j < count; j++) {
    let norm = 0;
    for (let k = 0; k < dim; k++) {
      v[k] = rng.normal();
      norm += v[k]! * v[k]!;
    }
    norm = Math.sqrt(norm);
    for (let k = 0; k < dim; k++) out[j * dim + k] = v[k]! / norm;
  }
  return out;
}

/**
 * Descriptors of one level for a whole set: [n * perImage, 3 * p * p] row-major, normalised per
 * channel. Within a descriptor the layout is (channel, column, row): the reference's ogrid puts
 * x on the third axis, and with fixed directions the layout decides the exact number.
 */
export function levelDescriptors(set: ImageSet, levels: number, level: number, positions: Int32Array, perImage: number, patchSize: number): Float32Array {
  const { n, height, width } = set;
  const p2 = patchSize * patchSize;
  const dim = CHANNELS * p2;
  const desc = new Float32Array(n * perImage * dim);
  const bytes = height * width * CHANNELS;
  for (let i = 0; i < n; i++) {
    const pyramid = laplacianPyramid(set.data.subarray(i * bytes, (i + 1) * bytes), height, width, levels);
    const plane = itemAt(pyramid, level, 'pyramid level');
    let h = height;
    let w = width;
    for (let l = 0; l < level; l++) {
      h = Math.ceil(h / 2);
      w = Math.ceil(w / 2);
    }
    // `]!` in the hot loop: positions holds n * perImage [x0, y0] pairs (patchPositions), and a
    // patch at x0 < w - 2r, y0 < h - 2r lies inside this level's h x w plane.
    for (let k = 0; k < perImage; k++) {
      const q = i * perImage + k;
      const x0 = positions[2 * q]!;
      const y0 = positions[2 * q + 1]!;
      let o = q * dim;
      for (let c = 0; c < CHANNELS; c++) {
        for (let dx = 0; dx < patchSize; dx++) {
          const col = c * h * w + y0 * w + x0 + dx;
          for (let dy = 0; dy < patchSize; dy++) desc[o++] = plane[col + dy * w]!;
        }
      }
    }
  }
  normaliseDescriptors(desc, n * perImage, patchSize);
  return desc;
}

/** Per channel: subtract the mean and divide by the (population) standard deviation over all descriptors. */
function normaliseDescriptors(desc: Float32Array, count: number, patchSize: number): void {
  const p2 = patchSize * patchSize;
  const dim = CHANNELS * p2;
  // `]!` in the hot loops: q < count and k < dim index the [count, dim] descriptors.
  for (let c = 0; c < CHANNELS; c++) {
    let sum = 0;
    for (let q = 0; q < count; q++) for (let k = c * p2; k < (c + 1) * p2; k++) sum += desc[q * dim + k]!;
    const mean = sum / (count * p2);
    let sq = 0;
    for (let q = 0; q < count; q++) {
      for (let k = c * p2; k < (c + 1) * p2; k++) {
        const d = desc[q * dim + k]! - mean;
        sq += d * d;
      }
    }
    const std = Math.sqrt(sq / (count * p2));
    // A constant channel (flat images) has no spread to normalise: the reference divides by 0
    // and gets NaN; centring alone keeps the distance finite and large against any real set.
    const scale = std > 0 ? 1 / std : 1;
    for (let q = 0; q < count; q++) for (let k = c * p2; k < (c + 1) * p2; k++) desc[q * dim + k] = (desc[q * dim + k]! - mean) * scale;
  }
}

/**
 * Project rows [count, dim] on directions [m, dim]: direction-major [m, count]. Blocked 4 rows x
 * 2 directions (each load feeds several products); about 4x faster than the plain triple loop.
 */
function project(desc: Float32Array, count: number, dim: number, dirs: Float32Array, m: number): Float32Array {
  // `]!` in the hot loops: rows r0..r3 + k < count * dim and d0, d1 + k < m * dim.
  const out = new Float32Array(m * count);
  const rows4 = count - (count % 4);
  const dirs2 = m - (m % 2);
  for (let q = 0; q < rows4; q += 4) {
    const r0 = q * dim;
    const r1 = r0 + dim;
    const r2 = r1 + dim;
    const r3 = r2 + dim;
    for (let j = 0; j < dirs2; j += 2) {
      const d0 = j * dim;
      const d1 = d0 + dim;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
      for (let k = 0; k < dim; k++) {
        const e0 = dirs[d0 + k]!;
        const e1 = dirs[d1 + k]!;
        const v0 = desc[r0 + k]!;
        const v1 = desc[r1 + k]!;
        const v2 = desc[r2 + k]!;
        const v3 = desc[r3 + k]!;
        s00 += v0 * e0;
        s01 += v0 * e1;
        s10 += v1 * e0;
        s11 += v1 * e1;
        s20 += v2 * e0;
        s21 += v2 * e1;
        s30 += v3 * e0;
        s31 += v3 * e1;
      }
      const o0 = j * count + q;
      const o1 = o0 + count;
      out[o0] = s00;
      out[o1] = s01;
      out[o0 + 1] = s10;
      out[o1 + 1] = s11;
      out[o0 + 2] = s20;
      out[o1 + 2] = s21;
      out[o0 + 3] = s30;
      out[o1 + 3] = s31;
    }
  }
  // The rows and directions the blocks left over.
  for (let q = 0; q < count; q++) {
    for (let j = q < rows4 ? dirs2 : 0; j < m; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += desc[q * dim + k]! * dirs[j * dim + k]!;
      out[j * count + q] = s;
    }
  }
  return out;
}

/**
 * Sort float32 values in place, ascending (LSD radix sort on order-preserving uint32 keys, three
 * passes of 11 bits): the same order as Float32Array.prototype.sort for finite values, about 3x
 * faster on the 10^4..10^6 projections a level has.
 */
export class Float32Sorter {
  private keys = new Uint32Array(0);
  private spare = new Uint32Array(0);
  private readonly counts = new Uint32Array(2048);

  sort(values: Float32Array): Float32Array {
    const n = values.length;
    if (this.keys.length < n) {
      this.keys = new Uint32Array(n);
      this.spare = new Uint32Array(n);
    }
    const bits = new Uint32Array(values.buffer, values.byteOffset, n);
    let a = this.keys;
    let b = this.spare;
    // `]!` in the hot loops: i < n <= keys.length = spare.length, buckets are 11 bits < 2048 =
    // counts.length, and a bucket's running offset stays below n.
    // Negative floats: flip all bits; positive: flip the sign bit. Unsigned order = float order.
    for (let i = 0; i < n; i++) {
      const v = bits[i]!;
      a[i] = v & 0x80000000 ? ~v >>> 0 : (v | 0x80000000) >>> 0;
    }
    const counts = this.counts;
    for (let shift = 0; shift < 32; shift += 11) {
      counts.fill(0);
      for (let i = 0; i < n; i++) counts[(a[i]! >>> shift) & 2047]!++;
      let sum = 0;
      for (let k = 0; k < 2048; k++) {
        const c = counts[k]!;
        counts[k] = sum;
        sum += c;
      }
      for (let i = 0; i < n; i++) {
        const v = a[i]!;
        b[counts[(v >>> shift) & 2047]!++] = v;
      }
      const t = a;
      a = b;
      b = t;
    }
    for (let i = 0; i < n; i++) {
      const v = a[i]!;
      bits[i] = v & 0x80000000 ? (v ^ 0x80000000) >>> 0 : ~v >>> 0;
    }
    return values;
  }
}

/**
 * SWD x1e3 between two sets of n images of the same size, per pyramid level and averaged.
 * `onLevel` is called after each level (levels take seconds each at n in the thousands).
 */
export function swd(a: ImageSet, b: ImageSet, opts: SwdOptions = {}, onLevel?: (done: number, levels: number) => void): SwdResult {
  checkImageSet(a, 'swd: first set');
  return itemAt(swdAgainst(b, [a], opts, onLevel, 'second set'), 0, 'swd result');
}

/**
 * SWD x1e3 of each of `sets` against one `reference`, sharing the reference's descriptors and
 * sorted projections (a generated set and the real-halves baseline are both read against R1:
 * a quarter less work than two `swd` calls, with the same numbers).
 */
export function swdAgainst(reference: ImageSet, sets: readonly ImageSet[], opts: SwdOptions = {}, onLevel?: (done: number, levels: number) => void, referenceName = 'reference set'): SwdResult[] {
  const o: Required<SwdOptions> = { ...SWD_DEFAULTS, ...opts };
  checkImageSet(reference, `swd: ${referenceName}`);
  for (const [k, set] of sets.entries()) {
    checkImageSet(set, `swd: set ${k}`);
    if (set.n !== reference.n) throw new RangeError(`swd: the sets must have the same number of images (received ${set.n} and ${reference.n}); SWD depends on n`);
    if (set.height !== reference.height || set.width !== reference.width) throw new RangeError(`swd: images are ${set.height}x${set.width} and ${reference.height}x${reference.width}; resize them to one size first`);
  }
  if (!Number.isInteger(o.patchSize) || o.patchSize < 1 || o.patchSize % 2 !== 1) throw new RangeError(`swd: expected an odd patch size but received ${o.patchSize}`);
  const sizes = pyramidSizes(reference.height, reference.width, o.minResolution);
  if (sizes.length === 0) throw new RangeError(`swd: images of ${reference.height}x${reference.width} are smaller than the smallest pyramid level (${smallestImageSide(o.minResolution)} px)`);
  const dim = CHANNELS * o.patchSize * o.patchSize;
  const count = reference.n * o.patchesPerImage;
  const m = o.directionsPerRepeat;
  const tracks = sets.map((set) => ({ set, levels: [] as SwdLevel[] }));
  const sorter = new Float32Sorter();
  const sortColumns = (p: Float32Array): Float32Array => {
    for (let j = 0; j < m; j++) sorter.sort(p.subarray(j * count, (j + 1) * count));
    return p;
  };
  for (const [l, [h, w]] of sizes.entries()) {
    // The same positions for every set: a set against itself is exactly 0.
    const positions = patchPositions(o.seed, l, reference.n, o.patchesPerImage, h, w, o.patchSize);
    const dRef = levelDescriptors(reference, sizes.length, l, positions, o.patchesPerImage, o.patchSize);
    const work = tracks.map((track) => ({ track, desc: levelDescriptors(track.set, sizes.length, l, positions, o.patchesPerImage, o.patchSize), sum: 0 }));
    for (let r = 0; r < o.repeats; r++) {
      const dirs = swdDirections(o.seed, l, r, dim, m);
      const pRef = sortColumns(project(dRef, count, dim, dirs, m));
      for (const item of work) {
        const p = sortColumns(project(item.desc, count, dim, dirs, m));
        let total = 0;
        // `]!` in the hot loop: p and pRef are both [m, count].
        for (let i = 0; i < m * count; i++) total += Math.abs(p[i]! - pRef[i]!);
        item.sum += total / (m * count);
      }
    }
    for (const { track, sum } of work) track.levels.push({ height: h, width: w, value: (sum / o.repeats) * 1e3 });
    onLevel?.(l + 1, sizes.length);
  }
  return tracks.map(({ levels: ls }) => ({ levels: ls, mean: ls.reduce((s, l) => s + l.value, 0) / ls.length, n: reference.n, seed: o.seed }));
}
