import { CelebaGanError } from '../errors.js';
import { packageVersion } from '../version.js';
import type { FeatureExtractor, ExtractorInfo } from './extractor.js';
import type { FaceDetector } from './face-detector.js';
import { featureSet, fid, kid, type FeatureSet, type KidOptions } from './metrics.js';
import type { ImageSource } from './sources.js';

/**
 * One evaluation: features of `n` generated and `n` real images -> KID and FID in that feature
 * space, plus (optionally) the face-detection rate of both sets. The report names the extractor
 * and its version next to every number: numbers from different extractors (faceres vs.
 * Inception) or different n are not comparable.
 */

export interface EvalProgress {
  phase: 'real' | 'generated' | 'metrics';
  done: number;
  total: number;
}

export interface EvaluateOptions {
  generated: ImageSource;
  real: ImageSource;
  /** Images taken from each source. */
  n: number;
  extractor: FeatureExtractor;
  detector?: FaceDetector | null;
  kid?: KidOptions;
  /** Images read and processed at a time (default 64). */
  chunk?: number;
  /** Features of the real set computed earlier (training evaluates against the same slice again and again). */
  realFeatures?: FeatureSet;
  /** Also give back the features (for caching). */
  keepFeatures?: boolean;
  onProgress?: (p: EvalProgress) => void;
}

export interface DetectionSummary {
  /** Share of images with a face score above the threshold. */
  rate: number;
  meanScore: number;
}

export interface EvalReport {
  celebaGanVersion: string;
  n: number;
  features: ExtractorInfo;
  kid: { value: number; std: number; subsets: number; subsetSize: number; seed: number };
  fid: { value: number; meanTerm: number; covTerm: number };
  detector: null | { description: string; source: string; runtime: string; threshold: number; generated: DetectionSummary; real: DetectionSummary | null };
  generated: { label: string; height: number; width: number };
  real: { label: string; height: number; width: number };
  seconds: { real: number; generated: number; metrics: number };
  /** Present with `keepFeatures`. */
  featureSets?: { real: FeatureSet; generated: FeatureSet };
}

/** Check that the two sources can be compared at this n (errors say what to change). */
export function checkSources(generated: ImageSource, real: ImageSource, n: number): void {
  if (!Number.isInteger(n) || n < 2) {
    throw new CelebaGanError('E_BAD_ARGUMENT', `Expected integer >= 2 for n but received ${String(n)}`, { kind: 'usage', hint: 'KID and FID need at least 2 images per set; 2000 or more gives stable numbers.' });
  }
  if (real.count < n) {
    throw new CelebaGanError('E_EVAL_NOT_ENOUGH_REAL', `the real set ${real.label} has ${real.count} images; --n ${n} needs at least ${n}`, {
      kind: 'usage',
      hint: `Pass --n ${real.count} or less, or a larger data set (\`celeba-gan prepare\`).`,
    });
  }
  if (generated.count < n) throw new RangeError(`generated source has ${generated.count} images, fewer than n = ${n}`);
  if (generated.height !== real.height || generated.width !== real.width) {
    throw new CelebaGanError(
      'E_EVAL_SIZE_MISMATCH',
      `generated images are ${generated.height}x${generated.width} but the real images (${real.label}) are ${real.height}x${real.width}`,
      {
        kind: 'usage',
        hint: 'Compare against a data set prepared at the model\'s size (`celeba-gan prepare --size ...`): both would be resized to the extractor\'s input, but the difference in sharpness alone would dominate the numbers.',
      },
    );
  }
}

async function measure(
  source: ImageSource,
  n: number,
  chunk: number,
  phase: 'real' | 'generated',
  extractor: FeatureExtractor | null,
  detector: FaceDetector | null | undefined,
  onProgress?: (p: EvalProgress) => void,
): Promise<{ features: FeatureSet | null; scores: Float32Array | null }> {
  const dim = extractor?.info.dim ?? 0;
  const features = extractor ? new Float32Array(n * dim) : null;
  const scores = detector ? new Float32Array(n) : null;
  onProgress?.({ phase, done: 0, total: n });
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const images = await source.read(start, count);
    if (extractor) features!.set(await extractor.extract(images, count, source.height, source.width), start * dim);
    if (detector) scores!.set(await detector.scores(images, count, source.height, source.width), start);
    onProgress?.({ phase, done: start + count, total: n });
  }
  return { features: features ? featureSet(features, n, dim) : null, scores };
}

function summarise(scores: Float32Array, threshold: number): DetectionSummary {
  let hits = 0;
  let sum = 0;
  for (const s of scores) {
    if (s > threshold) hits++;
    sum += s;
  }
  return { rate: hits / scores.length, meanScore: sum / scores.length };
}

export async function evaluate(opts: EvaluateOptions): Promise<EvalReport> {
  const { generated, real, n, extractor, detector, onProgress } = opts;
  const chunk = opts.chunk ?? 64;
  checkSources(generated, real, n);
  if (opts.realFeatures && (opts.realFeatures.n !== n || opts.realFeatures.d !== extractor.info.dim)) {
    throw new RangeError(`cached real features are [${opts.realFeatures.n}, ${opts.realFeatures.d}]; expected [${n}, ${extractor.info.dim}]`);
  }

  let t = performance.now();
  // With cached real features only the detector (if any) still needs the real images; skip it then.
  const realPart = opts.realFeatures
    ? { features: opts.realFeatures, scores: null }
    : await measure(real, n, chunk, 'real', extractor, detector, onProgress);
  const realSeconds = (performance.now() - t) / 1000;

  t = performance.now();
  const genPart = await measure(generated, n, chunk, 'generated', extractor, detector, onProgress);
  const generatedSeconds = (performance.now() - t) / 1000;

  t = performance.now();
  onProgress?.({ phase: 'metrics', done: 0, total: 1 });
  const kidSeed = opts.kid?.seed ?? 0;
  const k = kid(genPart.features!, realPart.features!, { ...opts.kid, seed: kidSeed });
  const f = fid(genPart.features!, realPart.features!);
  onProgress?.({ phase: 'metrics', done: 1, total: 1 });
  const metricsSeconds = (performance.now() - t) / 1000;

  return {
    celebaGanVersion: packageVersion(),
    n,
    features: extractor.info,
    kid: { value: k.kid, std: k.std, subsets: k.subsets, subsetSize: k.subsetSize, seed: kidSeed },
    fid: { value: f.fid, meanTerm: f.meanTerm, covTerm: f.covTerm },
    detector: detector
      ? {
          description: detector.info.description,
          source: detector.info.source,
          runtime: detector.info.runtime,
          threshold: detector.info.threshold,
          generated: summarise(genPart.scores!, detector.info.threshold),
          real: realPart.scores ? summarise(realPart.scores, detector.info.threshold) : null,
        }
      : null,
    generated: { label: generated.label, height: generated.height, width: generated.width },
    real: { label: real.label, height: real.height, width: real.width },
    seconds: { real: realSeconds, generated: generatedSeconds, metrics: metricsSeconds },
    ...(opts.keepFeatures ? { featureSets: { real: realPart.features!, generated: genPart.features! } } : {}),
  };
}

/** The same images' face-detection rate alone (no features), e.g. `--features none`. */
export async function detectionRate(source: ImageSource, n: number, detector: FaceDetector, chunk = 64): Promise<DetectionSummary> {
  const { scores } = await measure(source, n, chunk, 'generated', null, detector);
  return summarise(scores!, detector.info.threshold);
}
