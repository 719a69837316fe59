import { DatasetReader } from '../data/dataset-file.js';
import type { StepEndContext, StepHook } from '../train/loop.js';
import { deriveSeed } from '../util/rng.js';
import { datasetSource, engineSource, sampleIndices, type LabelRows } from './sources.js';
import type { ImageSet } from './swd.js';
import { realHalves, realHalvesScores, scoreAgainst, type SetScore } from './yardstick.js';
import { smallestSideWithLevels, swdValidity, SWD_MIN_LEVELS } from './validity.js';

/**
 * `train --eval-every N [--eval-n 200]`: every N steps, SWD (ProGAN) and the colour distance
 * between n images of the training engine's generator (inference mode, fixed latents: no ONNX
 * needed) and a fixed slice R1 of the training data, beside the real-halves baseline (a second
 * fixed slice R2 against R1, computed once). The slices and the latents derive from the run's
 * seed, so every point of the curve measures the same thing and a resumed run continues it.
 *
 * The slices are not withheld from training (the loop trains on every image): the point is a
 * stable yardstick that shows a run improving or collapsing, not a test of memorisation.
 * Values go to metrics.jsonl as {"kind": "eval", "step": N, "swd": ..., "swdBaseline": ..., "swdKernel": ...}.
 *
 * A conditional generator is fed the labels of n more training images, a fixed sample of their
 * own (not R1's): label rows drawn from the data's joint distribution, as `generate` and `eval`
 * draw them from an exported model's training rows.
 */

export const DEFAULT_TRAIN_EVAL_N = 200;
export const TRAIN_EVAL_HOOK = 'eval';

export interface TrainingEvalOptions {
  /** Evaluate after every `every` steps. */
  every: number;
  /** Images per set (default 200; the data set needs 2n). */
  n?: number;
  /** Also evaluate after step 1: the near-untrained point the curve starts from. */
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
  let real: { dataPath: string; r1: ImageSet; baseline: SetScore; labels: Float32Array | null } | null = null;

  return {
    name: TRAIN_EVAL_HOOK,
    async onStepEnd(ctx: StepEndContext) {
      if (ctx.step % every !== 0 && !(opts.includeFirstStep && ctx.step === 1)) return;
      const started = performance.now();
      if (!real || real.dataPath !== ctx.run.data.path) {
        const reader = new DatasetReader(ctx.run.data.path);
        try {
          // Fewer than 2n images: compare at half the data set, so the baseline stays at the same n.
          const count = Math.min(n, Math.floor(reader.count / 2));
          if (count < 2) throw new RangeError(`--eval-every needs a data set of at least 4 images; ${ctx.run.data.path} has ${reader.count}`);
          const { height, width } = reader.header;
          if (!swdValidity(height, width))
            throw new RangeError(
              `--eval-every: SWD needs ${SWD_MIN_LEVELS} pyramid levels, images of at least ${smallestSideWithLevels(SWD_MIN_LEVELS)} px (docs/eval.md, valid range of each metric); ${ctx.run.data.path} holds ${height}x${width}`,
            );
          const source = datasetSource(reader, sampleIndices(reader.count, 2 * count, ctx.run.seed, 'train-eval-real'), ctx.run.data.path);
          const all: ImageSet = { data: await source.read(0, 2 * count), n: 2 * count, height, width };
          const [r1, r2] = realHalves(all, count);
          const labels = ctx.spec.conditioning ? conditioningLabels(reader, ctx.spec.conditioning.attributes, count, ctx.run.seed) : null;
          real = { dataPath: ctx.run.data.path, r1, baseline: (await realHalvesScores(r1, r2, [], { swd: { seed: ctx.run.seed } })).baseline, labels };
        } finally {
          reader.close();
        }
      }
      const { r1, labels } = real;
      const k = ctx.spec.conditioning?.attributes.length ?? 0;
      const rows: LabelRows | undefined = labels ? (start, count) => labels.subarray(start * k, (start + count) * k) : undefined;
      const generated = engineSource(ctx.engine, r1.n, deriveSeed(ctx.run.seed, 'train-eval-latents'), `step ${ctx.step}`, rows);
      const gen: ImageSet = { data: await generated.read(0, r1.n), n: r1.n, height: generated.height, width: generated.width };
      const { swd: s, colour: c } = await scoreAgainst(r1, gen, { swd: { seed: ctx.run.seed } });
      return {
        swd: s.mean,
        swdBaseline: real.baseline.swd.mean,
        swdLevels: s.levels.map((l) => l.value.toFixed(2)).join(' '),
        colour: c.value,
        colourBaseline: real.baseline.colour.value,
        n: r1.n,
        // Which kernel projected (onnxruntime, or the JS loop where it cannot load): swd-kernel.ts.
        swdKernel: s.kernel,
        seconds: (performance.now() - started) / 1000,
      };
    },
    async dispose() {
      real = null;
    },
  };
}

/**
 * Label rows for the generated images of a conditional run: the labels of `count` training images
 * (a fixed sample keyed by the run's seed), in the order the generator takes its attributes.
 */
function conditioningLabels(reader: DatasetReader, attributes: readonly string[], count: number, seed: number): Float32Array {
  const names = reader.attributes?.names ?? [];
  const columns = attributes.map((a) => names.indexOf(a));
  const missing = attributes.filter((_, i) => columns[i]! < 0);
  if (missing.length > 0)
    throw new RangeError(
      `--eval-every: the generator is conditional on ${missing.join(', ')}, which ${reader.path} has no labels for (its attributes: ${names.join(', ') || 'none'})`,
    );
  const k = names.length;
  const all = reader.readLabels(sampleIndices(reader.count, count, seed, 'train-eval-labels'));
  const out = new Float32Array(count * attributes.length);
  for (let i = 0; i < count; i++) columns.forEach((c, j) => (out[i * attributes.length + j] = all[i * k + c]!));
  return out;
}
