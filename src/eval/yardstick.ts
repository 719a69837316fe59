import { colourDistance, type ColourDistance } from './colour.js';
import { imageSubset, swd, swdAgainst, checkImageSet, type ImageSet, type SwdOptions, type SwdResult, type SwdRun } from './swd.js';

/**
 * SWD and the colour distance read against what they must be read against: the same metric
 * between two disjoint halves of the real set, at the same n. Both numbers fall with n and
 * differ between data sets, so "SWD 60" means nothing alone; "SWD 60, real halves 43" does.
 *
 * The real set holds at least 2n images: the first n (R1) are compared with the generated set,
 * and the next n (R2) with R1 for the baseline. Both pairs share R1, so they differ only in what
 * is being judged. `realHalvesScores` is the one computation of the baseline: eval, train
 * --eval-every, the demo and the benchmarks all call it.
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
  /** How SWD runs: its kernel, progress per level. */
  run?: SwdRun;
}

/** SWD and colour distance of one set against R1. */
export interface SetScore {
  swd: SwdResult;
  colour: ColourDistance;
}

/** The first n and the next n images of `real` (disjoint). RangeError when it holds fewer than 2n. */
export function realHalves(real: ImageSet, n = Math.floor(real.n / 2)): [ImageSet, ImageSet] {
  checkImageSet(real, 'real set');
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`realHalves: expected an integer n >= 2 but received ${n}`);
  if (real.n < 2 * n) throw new RangeError(`realHalves: two disjoint halves of ${n} need ${2 * n} real images but the set has ${real.n}`);
  return [imageSubset(real, 0, n), imageSubset(real, n, n)];
}

/**
 * The real-halves baseline (R2 vs R1) and each of `generated` against R1, in one SWD pass that
 * computes R1's descriptors and sorted projections once (swdAgainst): the same numbers as
 * separate swd() calls. Every generated set holds exactly r1.n images.
 */
export async function realHalvesScores(
  r1: ImageSet,
  r2: ImageSet,
  generated: readonly ImageSet[],
  opts: Omit<YardstickOptions, 'n'> = {},
): Promise<{ baseline: SetScore; generated: SetScore[] }> {
  const [baseline, ...rest] = await swdAgainst(r1, [r2, ...generated], opts.swd, opts.run);
  return {
    baseline: { swd: baseline!, colour: colourDistance(r2, r1) },
    generated: rest.map((s, k) => ({ swd: s, colour: colourDistance(generated[k]!, r1) })),
  };
}

/** The real-halves baseline alone: SWD and colour distance between R2 and R1. */
export async function realHalvesBaseline(real: ImageSet, opts: YardstickOptions = {}): Promise<SetScore & { n: number }> {
  const [r1, r2] = realHalves(real, opts.n);
  return { n: r1.n, ...(await realHalvesScores(r1, r2, [], opts)).baseline };
}

/** SWD and colour distance of `set` against R1 (no baseline: computed once elsewhere, e.g. per training run). */
export async function scoreAgainst(r1: ImageSet, set: ImageSet, opts: Omit<YardstickOptions, 'n'> = {}): Promise<SetScore> {
  return { swd: await swd(set, r1, opts.swd, opts.run), colour: colourDistance(set, r1) };
}

/** SWD and colour distance of `generated` against the real set, each beside its real-halves baseline. */
export async function yardstick(generated: ImageSet, real: ImageSet, opts: YardstickOptions = {}): Promise<YardstickResult> {
  checkImageSet(generated, 'generated set');
  const n = opts.n ?? Math.min(generated.n, Math.floor(real.n / 2));
  if (generated.n < n) throw new RangeError(`yardstick: n = ${n} but the generated set has ${generated.n} images`);
  const [r1, r2] = realHalves(real, n);
  const {
    baseline,
    generated: [value],
  } = await realHalvesScores(r1, r2, [imageSubset(generated, 0, n)], opts);
  return { n, swd: { value: value!.swd, baseline: baseline.swd }, colour: { value: value!.colour, baseline: baseline.colour } };
}
