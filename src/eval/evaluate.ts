import { CelebaGanError } from '../errors.js';
import { packageVersion } from '../version.js';
import { itemAt } from '../util/at.js';
import type { ColourDistance } from './colour.js';
import type { FeatureExtractor, ExtractorInfo } from './extractor.js';
import type { FaceDetector } from './face-detector.js';
import { featureSet, fid, kid, type FeatureSet, type KidOptions, type KidResult } from './metrics.js';
import type { ImageSource } from './sources.js';
import { imageSubset, pyramidSizes, SWD_DEFAULTS, type ImageSet, type SwdOptions, type SwdResult } from './swd.js';
import { sharedSwdKernel, type SwdKernel } from './swd-kernel.js';
import { realHalves, realHalvesScores } from './yardstick.js';
import { COLOUR_CHECK_NOTE, smallestSideWithLevels, swdValidity, SWD_MIN_LEVELS, type SwdValidity } from './validity.js';

/**
 * One evaluation of n generated images against the real set, every number beside its
 * real-halves baseline (the same metric between two disjoint halves of the real set, R2 vs R1,
 * at the same n: what "as good as real data" reads as at this n).
 *
 * - SWD (ProGAN) and the colour-statistics distance: always (no weights), from 23 px, where SWD's
 *   pyramid has two levels; each with what the validation ladder says it ranks at this size
 *   (validity.ts).
 * - KID/FID in a feature space (faceres, or a user-supplied Inception) and faceres' blank-image
 *   ceiling (KID of flat grey images: what a generator that learned nothing scores).
 * - The face-detection rate of the tiny face detector.
 * faceres and the detector are not meaningful below 64 px, and from 64 px they fail the
 * validation ladder (docs/eval.md: "Valid range of each metric"): the report says so instead of giving
 * a number, unless `faceMetrics` asks for them anyway.
 *
 * The real source holds at least 2n images: R1 = its first n, R2 = the next n.
 */

/**
 * The fewest images per set eval compares (and so 2x this many real ones, for the baseline): below
 * it the spread within a set, which the metrics' normalisation and covariances need, is undefined.
 */
export const MIN_EVAL_N = 2;

export const FACE_METRICS_MIN_SIZE = 64;
export const NOT_MEANINGFUL = `not meaningful below ${FACE_METRICS_MIN_SIZE} px`;
/** From 64 px up they are not meaningless, but they do not hold the validation ladder either (docs/eval.md). */
export const NOT_VALIDATED = 'not validated: does not rank blur, checkerboard, noise and flat grey in order at 64 px (docs/eval.md)';

export interface EvalProgress {
  /** `attributes`: per-attribute SWD (attribute-eval.ts), done/total in attribute settings. */
  phase: 'real' | 'generated' | 'swd' | 'features' | 'detector' | 'attributes';
  done: number;
  total: number;
}

export interface EvaluateOptions {
  generated: ImageSource;
  /** At least 2n images: the first n are compared with the generated ones, the next n give the baseline. */
  real: ImageSource;
  /** Images per set. */
  n: number;
  swd?: SwdOptions;
  /** SWD's projection kernel (swd-kernel.ts); default: the process's `auto` kernel. */
  swdKernel?: SwdKernel;
  /** faceres or Inception; null/undefined: no KID/FID. */
  extractor?: FeatureExtractor | null;
  detector?: FaceDetector | null;
  /** Compute faceres KID/FID and the detection rate anyway (they do not rank images in order; docs/eval.md). */
  faceMetrics?: boolean;
  /**
   * Descriptions of face metrics the caller did not load because `faceMetrics` is off (loading
   * faceres costs seconds): reported with the reason instead of a number.
   */
  notLoaded?: { features?: string; detector?: string };
  kid?: KidOptions;
  /** Images read or processed at a time (default 64). */
  chunk?: number;
  onProgress?: (p: EvalProgress) => void;
}

export interface KidSummary {
  value: number;
  std: number;
}

export type FeatureReport =
  | { skipped: string; description: string }
  | {
      info: ExtractorInfo;
      kid: KidSummary & { baseline: KidSummary; subsets: number; subsetSize: number; seed: number };
      /** faceres only: KID of n flat grey images against R1, the score of a generator that learned nothing. */
      blankKid: KidSummary | null;
      fid: { value: number; meanTerm: number; covTerm: number; baseline: number };
    };

export interface DetectionSummary {
  /** Share of images with a face score above the threshold. */
  rate: number;
  meanScore: number;
}

export type DetectorReport =
  | { skipped: string; description: string }
  | {
      description: string;
      source: string;
      runtime: string;
      threshold: number;
      generated: DetectionSummary;
      real: DetectionSummary;
      baseline: DetectionSummary;
    };

export interface EvalReport {
  celebaGanVersion: string;
  n: number;
  height: number;
  width: number;
  /** `notes`: what the user should know about these images (a conditional model's attribute draw). */
  generated: { label: string; notes: readonly string[] };
  real: { label: string };
  /** `kernel`: which projection kernel ran, and why (swd-kernel.ts). */
  swd: { value: SwdResult; baseline: SwdResult; options: Required<SwdOptions>; kernel: string };
  colour: { value: ColourDistance; baseline: ColourDistance };
  /** What SWD and the colour distance rank at this size (the validation ladder; docs/eval.md). */
  validity: { swd: SwdValidity; colour: string };
  features: FeatureReport | null;
  detector: DetectorReport | null;
  seconds: { read: number; swd: number; features: number; detector: number };
}

/** Check that the two sources can be compared at this n (errors say what to change); what SWD ranks at their size. */
export function checkSources(generated: ImageSource, real: ImageSource, n: number): SwdValidity {
  if (!Number.isInteger(n) || n < MIN_EVAL_N) {
    throw new CelebaGanError('E_BAD_ARGUMENT', `Expected integer >= ${MIN_EVAL_N} for n but received ${String(n)}`, {
      hint: `The metrics need at least ${MIN_EVAL_N} images per set; 1000 or more gives stable numbers.`,
    });
  }
  if (real.count < 2 * n) {
    const most = Math.floor(real.count / 2);
    throw new CelebaGanError(
      'E_EVAL_NOT_ENOUGH_REAL',
      `the real set ${real.label} has ${real.count} images; --n ${n} needs at least ${2 * n} (n to compare with, n more for the real-halves baseline)`,
      {
        hint:
          most >= MIN_EVAL_N
            ? `Pass --n ${most} or less, or a larger real set.`
            : `The real set needs at least ${2 * MIN_EVAL_N} images; pass a larger one (a folder of images, or \`celeba-gan prepare\`).`,
      },
    );
  }
  if (generated.count < n) {
    throw new CelebaGanError(
      'E_EVAL_NOT_ENOUGH_GENERATED',
      `the generated set ${generated.label} has ${generated.count} images; --n ${n} needs at least ${n}`,
      {
        hint:
          generated.count >= MIN_EVAL_N
            ? `Pass --n ${Math.min(generated.count, Math.floor(real.count / 2))} or less, or generate more images.`
            : `Pass a folder with at least ${MIN_EVAL_N} images.`,
      },
    );
  }
  return checkSizes(generated, real);
}

/** Check that two image sets share one size that SWD can measure; what SWD ranks at that size. */
export function checkSizes(generated: Pick<ImageSource, 'label' | 'height' | 'width'>, real: Pick<ImageSource, 'label' | 'height' | 'width'>): SwdValidity {
  if (generated.height !== real.height || generated.width !== real.width) {
    throw new CelebaGanError(
      'E_EVAL_SIZE_MISMATCH',
      `generated images (${generated.label}) are ${generated.height}x${generated.width} but the real images (${real.label}) are ${real.height}x${real.width}`,
      {
        hint: "Compare images of one size: pass --resize <px> to resize image folders, or a data set prepared at the model's size (`celeba-gan prepare --size ...`).",
      },
    );
  }
  const validity = swdValidity(real.height, real.width);
  if (!validity) {
    const side = smallestSideWithLevels(SWD_MIN_LEVELS);
    throw new CelebaGanError(
      'E_EVAL_TOO_SMALL',
      `images of ${real.height}x${real.width} are too small for SWD: it needs ${SWD_MIN_LEVELS} pyramid levels (images of at least ${side} px); with one level it ranks a fine checkerboard below blur (docs/eval.md, valid range of each metric)`,
      {
        hint: `Pass --resize ${side} or more for image folders, or compare larger images.`,
      },
    );
  }
  return validity;
}

/** Images start..start+count-1 of a source, in memory. */
async function readImages(
  source: ImageSource,
  start: number,
  count: number,
  chunk: number,
  phase: 'real' | 'generated',
  offset: number,
  total: number,
  onProgress?: (p: EvalProgress) => void,
): Promise<ImageSet> {
  const bytes = source.height * source.width * 3;
  const data = new Uint8Array(count * bytes);
  for (let done = 0; done < count;) {
    const k = Math.min(chunk, count - done);
    data.set(await source.read(start + done, k), done * bytes);
    done += k;
    onProgress?.({ phase, done: offset + done, total });
  }
  return { data, n: count, height: source.height, width: source.width };
}

async function extractAll(extractor: FeatureExtractor, set: ImageSet, chunk: number, tick: (k: number) => void): Promise<FeatureSet> {
  const dim = extractor.info.dim;
  const out = new Float32Array(set.n * dim);
  for (let start = 0; start < set.n; start += chunk) {
    const part = imageSubset(set, start, Math.min(chunk, set.n - start));
    out.set(await extractor.extract(part.data, part.n, set.height, set.width), start * dim);
    tick(part.n);
  }
  return featureSet(out, set.n, dim);
}

async function detectAll(detector: FaceDetector, set: ImageSet, chunk: number, tick: (k: number) => void): Promise<DetectionSummary> {
  let hits = 0;
  let sum = 0;
  for (let start = 0; start < set.n; start += chunk) {
    const part = imageSubset(set, start, Math.min(chunk, set.n - start));
    for (const s of await detector.scores(part.data, part.n, set.height, set.width)) {
      if (s > detector.info.threshold) hits++;
      sum += s;
    }
    tick(part.n);
  }
  return { rate: hits / set.n, meanScore: sum / set.n };
}

function kidSummary(r: KidResult): KidSummary {
  return { value: r.kid, std: r.std };
}

/** n rows, each a copy of `row` (the features of one flat image, extracted once). */
function repeatRow(row: Float32Array, n: number): FeatureSet {
  const out = new Float32Array(n * row.length);
  for (let i = 0; i < n; i++) out.set(row, i * row.length);
  return featureSet(out, n, row.length);
}

export async function evaluate(opts: EvaluateOptions): Promise<EvalReport> {
  const { generated, real, n, onProgress } = opts;
  const chunk = opts.chunk ?? 64;
  const swdValid = checkSources(generated, real, n);
  const { height, width } = real;
  const faceOk = opts.faceMetrics === true;
  const why = Math.min(height, width) < FACE_METRICS_MIN_SIZE ? NOT_MEANINGFUL : NOT_VALIDATED;

  // The projection kernel's onnxruntime session opens (~0.3 s) while the images decode.
  const kernelReady = opts.swdKernel ? Promise.resolve(opts.swdKernel) : sharedSwdKernel();
  kernelReady.catch(() => undefined); // a failure is thrown where the kernel is awaited, below
  let t = performance.now();
  const realAll = await readImages(real, 0, 2 * n, chunk, 'real', 0, 2 * n, onProgress);
  const [r1, r2] = realHalves(realAll, n);
  const gen = await readImages(generated, 0, n, chunk, 'generated', 0, n, onProgress);
  const readSeconds = (performance.now() - t) / 1000;

  t = performance.now();
  const swdOptions: Required<SwdOptions> = { ...SWD_DEFAULTS, ...opts.swd };
  // Progress in pyramid levels of the two pairs (computed together against R1).
  const levels = pyramidSizes(height, width, swdOptions.minResolution).length;
  onProgress?.({ phase: 'swd', done: 0, total: 2 * levels });
  const kernel = await kernelReady;
  const scores = await realHalvesScores(r1, r2, [gen], {
    swd: swdOptions,
    run: { kernel, onLevel: (done) => onProgress?.({ phase: 'swd', done: 2 * done, total: 2 * levels }) },
  });
  const generatedScore = itemAt(scores.generated, 0, 'generated score');
  const swdSeconds = (performance.now() - t) / 1000;

  t = performance.now();
  let features: FeatureReport | null = null;
  const extractor = opts.extractor ?? null;
  if (opts.notLoaded?.features && !faceOk) {
    features = { skipped: why, description: opts.notLoaded.features };
  } else if (extractor && extractor.info.features === 'faceres' && !faceOk) {
    features = { skipped: why, description: extractor.info.description };
  } else if (extractor) {
    const total = 3 * n + (extractor.info.features === 'faceres' ? 1 : 0);
    let done = 0;
    const tick = (k: number) => onProgress?.({ phase: 'features', done: (done += k), total });
    onProgress?.({ phase: 'features', done: 0, total });
    const f1 = await extractAll(extractor, r1, chunk, tick);
    const f2 = await extractAll(extractor, r2, chunk, tick);
    const fg = await extractAll(extractor, gen, chunk, tick);
    const kidOpts: KidOptions = { ...opts.kid, seed: opts.kid?.seed ?? 0 };
    const k = kid(fg, f1, kidOpts);
    const kb = kid(f2, f1, kidOpts);
    const f = fid(fg, f1);
    let blankKid: KidSummary | null = null;
    if (extractor.info.features === 'faceres') {
      // Every flat grey image has the same features: extract one, repeat it n times.
      const grey = new Uint8Array(height * width * 3).fill(128);
      blankKid = kidSummary(kid(repeatRow(await extractor.extract(grey, 1, height, width), n), f1, kidOpts));
      tick(1);
    }
    features = {
      info: extractor.info,
      kid: { ...kidSummary(k), baseline: kidSummary(kb), subsets: k.subsets, subsetSize: k.subsetSize, seed: kidOpts.seed! },
      blankKid,
      fid: { value: f.fid, meanTerm: f.meanTerm, covTerm: f.covTerm, baseline: fid(f2, f1).fid },
    };
  }
  const featuresSeconds = (performance.now() - t) / 1000;

  t = performance.now();
  let detector: DetectorReport | null = null;
  const d = opts.detector ?? null;
  if (opts.notLoaded?.detector && !faceOk) {
    detector = { skipped: why, description: opts.notLoaded.detector };
  } else if (d && !faceOk) {
    detector = { skipped: why, description: d.info.description };
  } else if (d) {
    let done = 0;
    const tick = (k: number) => onProgress?.({ phase: 'detector', done: (done += k), total: 3 * n });
    onProgress?.({ phase: 'detector', done: 0, total: 3 * n });
    const realRate = await detectAll(d, r1, chunk, tick);
    const baseline = await detectAll(d, r2, chunk, tick);
    const generatedRate = await detectAll(d, gen, chunk, tick);
    detector = {
      description: d.info.description,
      source: d.info.source,
      runtime: d.info.runtime,
      threshold: d.info.threshold,
      generated: generatedRate,
      real: realRate,
      baseline,
    };
  }
  const detectorSeconds = (performance.now() - t) / 1000;

  return {
    celebaGanVersion: packageVersion(),
    n,
    height,
    width,
    generated: { label: generated.label, notes: generated.notes ?? [] },
    real: { label: real.label },
    swd: { value: generatedScore.swd, baseline: scores.baseline.swd, options: swdOptions, kernel: kernel.description },
    colour: { value: generatedScore.colour, baseline: scores.baseline.colour },
    validity: { swd: swdValid, colour: COLOUR_CHECK_NOTE },
    features,
    detector,
    seconds: { read: readSeconds, swd: swdSeconds, features: featuresSeconds, detector: detectorSeconds },
  };
}
