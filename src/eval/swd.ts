import { Rng } from '../util/rng.js';
import { itemAt } from '../util/at.js';
import { ColumnSorter } from './column-sort.js';
import { sharedSwdKernel, type SwdKernel, type SwdKernelName } from './swd-kernel.js';

export { Float32Sorter } from './float32-sort.js';

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
 * Speed: each image's pyramid is built once; the projections run on a matrix kernel
 * (swd-kernel.ts: onnxruntime's Gemm, or the JS loop where it cannot load) and their columns are
 * sorted by worker threads (column-sort.ts, a radix sort) while this thread projects the next
 * repeat.
 *
 * Memory: per set, every image's pyramid as float32 (16 bytes per pixel of the set's images at
 * most: 4 per byte, 4/3 for the levels), one level's descriptors, n x 128 of 147 float32s (about
 * 75 KB per image of n), and two repeats' projections, n x 128 x 128 float32s (64 KB per image
 * of n each).
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
  /** Which kernel computed the projections (swd-kernel.ts). */
  kernel: SwdKernelName;
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

/** Indices 0..n+3 -> the mirrored source index of i - 2: the blur's five taps without a modulo per tap. */
function mirroredTaps(n: number): Int32Array {
  const out = new Int32Array(n + 4);
  for (let i = 0; i < n + 4; i++) out[i] = mirror(i - 2, n);
  return out;
}

/** 5x5 binomial blur of one plane, mirrored borders, times `gain`. */
function blur(src: Float32Array, h: number, w: number, gain: number): Float32Array {
  // Hot loops keep `]!`: mx / my map 0..w+3 / 0..h+3 into the plane, and src holds h * w.
  const mx = mirroredTaps(w);
  const my = mirroredTaps(h);
  const [t0, t1, t2, t3, t4] = TAPS;
  const tmp = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      tmp[row + x] =
        t0 * src[row + mx[x]!]! + t1 * src[row + mx[x + 1]!]! + t2 * src[row + mx[x + 2]!]! + t3 * src[row + mx[x + 3]!]! + t4 * src[row + mx[x + 4]!]!;
    }
  }
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const r0 = my[y]! * w;
    const r1 = my[y + 1]! * w;
    const r2 = my[y + 2]! * w;
    const r3 = my[y + 3]! * w;
    const r4 = my[y + 4]! * w;
    for (let x = 0; x < w; x++) {
      out[y * w + x] = (t0 * tmp[r0 + x]! + t1 * tmp[r1 + x]! + t2 * tmp[r2 + x]! + t3 * tmp[r3 + x]! + t4 * tmp[r4 + x]!) * gain;
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
 * Every image's Laplacian pyramid, per level one [n, 3, h, w] array (finest first): computed once
 * per set and read by each level's descriptors (building it again per level was a quarter of
 * SWD's time at 28 px).
 */
function setPyramid(set: ImageSet, sizes: readonly [number, number][]): Float32Array[] {
  const { n, height, width } = set;
  const out = sizes.map(([h, w]) => new Float32Array(n * CHANNELS * h * w));
  const bytes = height * width * CHANNELS;
  for (let i = 0; i < n; i++) {
    const pyramid = laplacianPyramid(set.data.subarray(i * bytes, (i + 1) * bytes), height, width, sizes.length);
    pyramid.forEach((plane, l) => itemAt(out, l, 'pyramid level').set(plane, i * plane.length));
  }
  return out;
}

/**
 * Descriptors of one level for a whole set, from its planes [n, 3, h, w] (setPyramid):
 * [n * perImage, 3 * p * p] row-major, normalised per channel. Within a descriptor the layout is
 * (channel, column, row): the reference's ogrid puts x on the third axis, and with fixed
 * directions the layout decides the exact number.
 */
function levelDescriptors(planes: Float32Array, n: number, h: number, w: number, positions: Int32Array, perImage: number, patchSize: number): Float32Array {
  const p2 = patchSize * patchSize;
  const dim = CHANNELS * p2;
  const desc = new Float32Array(n * perImage * dim);
  // `]!` in the hot loop: positions holds n * perImage [x0, y0] pairs (patchPositions), and a
  // patch at x0 < w - 2r, y0 < h - 2r lies inside its image's h x w planes.
  for (let i = 0; i < n; i++) {
    const image = i * CHANNELS * h * w;
    for (let k = 0; k < perImage; k++) {
      const q = i * perImage + k;
      const x0 = positions[2 * q]!;
      const y0 = positions[2 * q + 1]!;
      let o = q * dim;
      for (let c = 0; c < CHANNELS; c++) {
        for (let dx = 0; dx < patchSize; dx++) {
          const col = image + c * h * w + y0 * w + x0 + dx;
          for (let dy = 0; dy < patchSize; dy++) desc[o++] = planes[col + dy * w]!;
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

/** How one SWD computation runs (not what it measures: that is SwdOptions). */
export interface SwdRun {
  /** The projection kernel (swd-kernel.ts); default: the process's `auto` kernel (onnxruntime, else js). */
  kernel?: SwdKernel;
  /** Called after each pyramid level (a level takes a second or more at n in the thousands). */
  onLevel?: (done: number, levels: number) => void;
  /** The reference set's name in error messages. */
  referenceName?: string;
}

/** SWD x1e3 between two sets of n images of the same size, per pyramid level and averaged. */
export async function swd(a: ImageSet, b: ImageSet, opts: SwdOptions = {}, run: SwdRun = {}): Promise<SwdResult> {
  checkImageSet(a, 'swd: first set');
  return itemAt(await swdAgainst(b, [a], opts, { referenceName: 'second set', ...run }), 0, 'swd result');
}

/**
 * SWD x1e3 of each of `sets` against one `reference`, sharing the reference's descriptors and
 * sorted projections (a generated set and the real-halves baseline are both read against R1:
 * a quarter less work than two `swd` calls, with the same numbers).
 */
export async function swdAgainst(reference: ImageSet, sets: readonly ImageSet[], opts: SwdOptions = {}, run: SwdRun = {}): Promise<SwdResult[]> {
  const o: Required<SwdOptions> = { ...SWD_DEFAULTS, ...opts };
  const sizes = checkSwdInputs(reference, sets, o, run.referenceName ?? 'reference set');
  const kernel = run.kernel ?? (await sharedSwdKernel());
  const sorter = new ColumnSorter();
  const sums = new LevelSums(sizes.length, sets.length, o.repeats, run.onLevel);
  try {
    const pyramids = [reference, ...sets].map((set) => setPyramid(set, sizes));
    // Two repeats in flight: the worker threads sort one repeat's projections while this thread
    // projects the next (or builds the next level's descriptors). At most 2 x (sets + 1)
    // projection arrays are alive.
    let previous: Promise<void> | null = null;
    for (const [l, [h, w]] of sizes.entries()) {
      // The same positions for every set: a set against itself is exactly 0.
      const positions = patchPositions(o.seed, l, reference.n, o.patchesPerImage, h, w, o.patchSize);
      const descriptors = pyramids.map((levels) =>
        levelDescriptors(itemAt(levels, l, 'pyramid level'), reference.n, h, w, positions, o.patchesPerImage, o.patchSize),
      );
      for (let r = 0; r < o.repeats; r++) {
        const dirs = swdDirections(o.seed, l, r, CHANNELS * o.patchSize * o.patchSize, o.directionsPerRepeat);
        const { sorted } = await projectAndSort(kernel, sorter, descriptors, dirs, o.directionsPerRepeat);
        await previous;
        previous = sorted.then((columns) => sums.add(l, columns));
        // Observed by the next `await previous`; if a later projection throws first, close()
        // rejects the queued sorts, which must not surface as unhandled rejections.
        previous.catch(() => {});
      }
    }
    await previous;
  } finally {
    await sorter.close();
  }
  return sums.perSet().map((values) => ({
    levels: sizes.map(([height, width], l) => ({ height, width, value: itemAt(values, l, 'level') })),
    mean: values.reduce((s, v) => s + v, 0) / values.length,
    n: reference.n,
    seed: o.seed,
    kernel: kernel.name,
  }));
}

/** The pyramid's sizes after checking the sets and options; RangeError saying what is wrong otherwise. */
function checkSwdInputs(reference: ImageSet, sets: readonly ImageSet[], o: Required<SwdOptions>, referenceName: string): [number, number][] {
  checkImageSet(reference, `swd: ${referenceName}`);
  for (const [k, set] of sets.entries()) {
    checkImageSet(set, `swd: set ${k}`);
    if (set.n !== reference.n)
      throw new RangeError(`swd: the sets must have the same number of images (received ${set.n} and ${reference.n}); SWD depends on n`);
    if (set.height !== reference.height || set.width !== reference.width)
      throw new RangeError(`swd: images are ${set.height}x${set.width} and ${reference.height}x${reference.width}; resize them to one size first`);
  }
  if (!Number.isInteger(o.patchSize) || o.patchSize < 1 || o.patchSize % 2 !== 1)
    throw new RangeError(`swd: expected an odd patch size but received ${o.patchSize}`);
  const sizes = pyramidSizes(reference.height, reference.width, o.minResolution);
  if (sizes.length === 0)
    throw new RangeError(
      `swd: images of ${reference.height}x${reference.width} are smaller than the smallest pyramid level (${smallestImageSide(o.minResolution)} px)`,
    );
  return sizes;
}

/**
 * One repeat: each set's descriptors [count, dim] projected on `dirs` [m, dim] here, and handed to
 * the worker threads, which sort every direction's column. Resolves once every projection is
 * queued; `sorted` then holds the sorted [m, count] arrays, reference first.
 */
async function projectAndSort(
  kernel: SwdKernel,
  sorter: ColumnSorter,
  descriptors: readonly Float32Array[],
  dirs: Float32Array,
  m: number,
): Promise<{ sorted: Promise<Float32Array[]> }> {
  const dim = dirs.length / m;
  const count = itemAt(descriptors, 0, 'reference descriptors').length / dim;
  const jobs: Promise<Float32Array>[] = [];
  for (const desc of descriptors) {
    const job = sorter.sort(await kernel.project(desc, count, dim, dirs, m), m, count);
    // Observed by Promise.all below; if a later projection throws, close() rejects the queued
    // sorts, which must not surface as unhandled rejections.
    job.catch(() => {});
    jobs.push(job);
  }
  return { sorted: Promise.all(jobs) };
}

/**
 * Per level and set, the sum over repeats of mean |sorted set - sorted reference|, and the
 * progress report of a level once all its repeats are in (they arrive in order).
 */
class LevelSums {
  private readonly sums: Float64Array[];
  private readonly done: Int32Array;

  constructor(
    private readonly levels: number,
    sets: number,
    private readonly repeats: number,
    private readonly onLevel?: (done: number, levels: number) => void,
  ) {
    this.sums = Array.from({ length: levels }, () => new Float64Array(sets));
    this.done = new Int32Array(levels);
  }

  add(level: number, [reference, ...rest]: readonly Float32Array[]): void {
    const sums = itemAt(this.sums, level, 'level');
    rest.forEach((p, k) => (sums[k]! += meanAbsDifference(p, reference!)));
    if (++this.done[level]! === this.repeats) this.onLevel?.(level + 1, this.levels);
  }

  /** Per set, per level (finest first): SWD x1e3, the mean over the repeats. */
  perSet(): number[][] {
    const sets = itemAt(this.sums, 0, 'level').length;
    return Array.from({ length: sets }, (_, k) => this.sums.map((level) => (level[k]! / this.repeats) * 1e3));
  }
}

/** mean |a - b| over two arrays of one length. */
function meanAbsDifference(a: Float32Array, b: Float32Array): number {
  let total = 0;
  // `]!` in the hot loop: a and b have one length.
  for (let i = 0; i < a.length; i++) total += Math.abs(a[i]! - b[i]!);
  return total / a.length;
}
