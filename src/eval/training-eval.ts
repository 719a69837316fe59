import { DatasetReader } from '../data/dataset-file.js';
import type { StepEndContext, StepHook } from '../train/loop.js';
import { deriveSeed } from '../util/rng.js';
import { evaluate } from './evaluate.js';
import type { FeatureExtractor } from './extractor.js';
import { loadFaceres } from './faceres.js';
import { HUMAN_PACKAGE, findPackage } from './model-files.js';
import type { FeatureSet } from './metrics.js';
import { datasetSource, engineSource, sampleIndices } from './sources.js';
import type { EvalBackendName } from './tfjs-runtime.js';

/**
 * `train --eval-every N [--eval-n 500]`: every N steps, KID (and FID) in faceres space between
 * the training engine's generator (inference mode, fixed latents: no ONNX needed) and a fixed
 * slice of the training data. Both the slice (indices) and the latents derive from the run's
 * seed, so every point of the curve measures the same thing and a resumed run continues it.
 * The slice's features are computed once, at the first evaluation.
 *
 * The slice is not withheld from training (the loop trains on every image): the point is a
 * stable yardstick that shows a run improving or collapsing, not a test of memorisation.
 * Values go to metrics.jsonl as {"kind": "eval", "step": N, "kid": ..., ...}.
 */

export const DEFAULT_TRAIN_EVAL_N = 500;
export const TRAIN_EVAL_HOOK = 'eval';

export interface TrainingEvalOptions {
  /** Evaluate after every `every` steps. */
  every: number;
  /** Images per set (default 500). */
  n?: number;
  /** KID subsets (default 50: n is small, the estimate settles quickly). */
  kidSubsets?: number;
  backend?: EvalBackendName;
  /** Also evaluate after step 1: the near-untrained baseline the curve starts from. */
  includeFirstStep?: boolean;
}

export interface TrainingEvalHook extends StepHook {
  dispose(): Promise<void>;
}

export function createTrainingEvalHook(opts: TrainingEvalOptions): TrainingEvalHook {
  const every = opts.every;
  const n = opts.n ?? DEFAULT_TRAIN_EVAL_N;
  if (!Number.isInteger(every) || every < 1) throw new RangeError(`eval-every must be an integer >= 1, got ${every}`);
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`eval-n must be an integer >= 2, got ${n}`);
  // A missing model package should stop the run before it trains, not at the first evaluation.
  findPackage(HUMAN_PACKAGE);
  let extractor: FeatureExtractor | null = null;
  let realFeatures: FeatureSet | null = null;

  return {
    name: TRAIN_EVAL_HOOK,
    async onStepEnd(ctx: StepEndContext) {
      if (ctx.step % every !== 0 && !(opts.includeFirstStep && ctx.step === 1)) return;
      extractor ??= await loadFaceres({ backend: opts.backend });
      const reader = new DatasetReader(ctx.run.data.path);
      try {
        const count = Math.min(n, reader.count);
        const real = datasetSource(reader, sampleIndices(reader.count, count, ctx.run.seed, 'train-eval-real'), `${ctx.run.data.path}: fixed slice of ${count}`);
        const generated = engineSource(ctx.engine, count, deriveSeed(ctx.run.seed, 'train-eval-latents'), `step ${ctx.step}`);
        const report = await evaluate({
          generated,
          real,
          n: count,
          extractor,
          // Subsets of half the set, so the ± spread over subsets means something at small n.
          kid: { subsets: opts.kidSubsets ?? 50, subsetSize: Math.max(2, Math.floor(count / 2)), seed: ctx.run.seed },
          ...(realFeatures ? { realFeatures } : {}),
          keepFeatures: realFeatures === null,
        });
        realFeatures ??= report.featureSets!.real;
        return {
          kid: report.kid.value,
          kidStd: report.kid.std,
          fid: report.fid.value,
          n: count,
          features: 'faceres',
          seconds: report.seconds.real + report.seconds.generated + report.seconds.metrics,
        };
      } finally {
        reader.close();
      }
    },
    async dispose() {
      await extractor?.dispose();
      extractor = null;
      realFeatures = null;
    },
  };
}
