import { colourDistance, type ColourDistance } from './colour.js';
import { imageSubset, swd, checkImageSet, type ImageSet, type SwdOptions, type SwdResult } from './swd.js';

/**
 * SWD and the colour distance read against what they must be read against: the same metric
 * between two disjoint halves of the real set, at the same n. Both numbers fall with n and
 * differ between data sets, so "SWD 60" means nothing alone; "SWD 60, real halves 43" does.
 *
 * The real set holds at least 2n images: the first n (R1) are compared with the generated set,
 * and the next n (R2) with R1 for the baseline. Both pairs share R1, so they differ only in what
 * is being judged.
 */

export interface MetricPair<T> {
  /** generated vs R1 */
  value: T;
  /** R2 vs R1: the real-halves baseline */
  baseline: T;
}

export interface YardstickResult {
  n: number;
  swd: MetricPair<SwdResult>;
  colour: MetricPair<ColourDistance>;
}

export interface YardstickOptions {
  /** Images per set (default: all the generated ones, or half the real ones if fewer). */
  n?: number;
  swd?: SwdOptions;
}

/** The first n and the next n images of `real` (disjoint). RangeError when it holds fewer than 2n. */
export function realHalves(real: ImageSet, n = Math.floor(real.n / 2)): [ImageSet, ImageSet] {
  checkImageSet(real, 'real set');
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`realHalves: expected an integer n >= 2 but received ${n}`);
  if (real.n < 2 * n) throw new RangeError(`realHalves: two disjoint halves of ${n} need ${2 * n} real images but the set has ${real.n}`);
  return [imageSubset(real, 0, n), imageSubset(real, n, n)];
}

/** The real-halves baseline alone: SWD and colour distance between R2 and R1. */
export function realHalvesBaseline(real: ImageSet, opts: YardstickOptions = {}): { n: number; swd: SwdResult; colour: ColourDistance } {
  const [r1, r2] = realHalves(real, opts.n);
  return { n: r1.n, swd: swd(r2, r1, opts.swd), colour: colourDistance(r2, r1) };
}

/** SWD and colour distance of `generated` against the real set, each beside its real-halves baseline. */
export function yardstick(generated: ImageSet, real: ImageSet, opts: YardstickOptions = {}): YardstickResult {
  checkImageSet(generated, 'generated set');
  const n = opts.n ?? Math.min(generated.n, Math.floor(real.n / 2));
  if (generated.n < n) throw new RangeError(`yardstick: n = ${n} but the generated set has ${generated.n} images`);
  const [r1, r2] = realHalves(real, n);
  const g = imageSubset(generated, 0, n);
  return {
    n,
    swd: { value: swd(g, r1, opts.swd), baseline: swd(r2, r1, opts.swd) },
    colour: { value: colourDistance(g, r1), baseline: colourDistance(r2, r1) },
  };
}
