import { CelebaGanError, UsageError, describe } from '../errors.js';
import { attributeCount, parameterList, type ParamInfo } from '../model/shapes.js';
import type { ArchitectureSpec } from '../model/spec.js';
import type { TensorMap } from '../model/tensors.js';
import { Rng } from '../util/rng.js';

/**
 * The EMA generator: an exponential moving average of the generator's weights, kept by every
 * engine beside the raw weights (never instead of them: the training trajectory is the same with
 * or without it, so the presets stay faithful).
 *
 * After the G update number t + 1 (t = G updates before it, i.e. Adam's generator step count
 * before the update):
 *   d   = min(decay, (1 + t) / (10 + t))          warmup, as ema-pytorch and StyleGAN2-ADA's ema_rampup
 *   ema = ema * d + raw * (1 - d)                  trainable tensors (float32: two rounded products, a rounded sum)
 * Without the warmup, a decay of 0.999 still gives the random initial weights a third of their
 * weight after 1100 steps.
 *
 * Batch-norm running statistics are neither averaged (that made the generator worse in the
 * issue's calibration) nor copied from the raw generator (they fit the raw weights, and were
 * gathered with dropout on, which inference runs without): they are recomputed for the averaged
 * weights, as SWA's bn_update does. Whenever the EMA generator is read (generate 'ema',
 * getEmaWeights: sample grids, checkpoints, export) after an update, each batch-norm layer's
 * running mean and (unbiased) variance become the average over EMA_STATS_CHUNKS chunks of
 * EMA_STATS_CHUNK latents of its input's batch statistics, computed by train-mode forwards of the
 * EMA generator WITHOUT dropout on emaStatsLatents (a fixed stream of their own). So they are a
 * function of the averaged weights alone: training draws nothing from it (the raw weights, and
 * the PyTorch parity tests, are unchanged) and a resumed run recomputes exactly what an
 * uninterrupted one would. setEma starts them as given (or as the raw generator's, when it
 * starts from the raw weights) until the next update.
 *
 * In checkpoints the EMA copy is saved as `ema.<generator tensor name>`, e.g.
 * `ema.generator.deconv1.weight`, beside the raw weights; the warmup needs no state of its own
 * (t is the optimiser's generator step count, saved already).
 */

export const DEFAULT_EMA_DECAY = 0.999;
export const EMA_PREFIX = 'ema.';

function emaName(name: string): string {
  return `${EMA_PREFIX}${name}`;
}

/** The generator tensors the EMA copy holds (all of them: running statistics included). */
export function emaParameters(spec: ArchitectureSpec): ParamInfo[] {
  return parameterList(spec, 'generator');
}

/** Latents per train-mode forward when recomputing the EMA generator's batch-norm statistics. */
export const EMA_STATS_CHUNK = 64;
/** Forwards averaged (512 latents in all). */
export const EMA_STATS_CHUNKS = 8;

/**
 * The latents behind the EMA generator's batch-norm statistics, [EMA_STATS_CHUNKS *
 * EMA_STATS_CHUNK, zDim]: the same for every run and step, from a stream nothing else draws from.
 */
export function emaStatsLatents(spec: ArchitectureSpec): Float32Array {
  const z = new Float32Array(EMA_STATS_CHUNKS * EMA_STATS_CHUNK * spec.zDim);
  const rng = new Rng(0, 'ema-batch-norm-statistics');
  return spec.latent === 'uniform' ? rng.fillUniform(z, -1, 1) : rng.fillNormal(z, 0, 1);
}

/**
 * The attribute rows beside emaStatsLatents for a conditional generator, [EMA_STATS_CHUNKS *
 * EMA_STATS_CHUNK, K] +1/-1: attribute k is +1 with probability spec.conditioning.frequencies[k]
 * (0.5 when not given), so the statistics see the label mix training does. Undefined when the
 * spec is unconditional. A fixed stream of its own, like the latents.
 */
export function emaStatsLabels(spec: ArchitectureSpec): Float32Array | undefined {
  const k = attributeCount(spec);
  if (k === 0) return undefined;
  const odds = spec.conditioning?.frequencies;
  const y = new Float32Array(EMA_STATS_CHUNKS * EMA_STATS_CHUNK * k);
  const rng = new Rng(0, 'ema-batch-norm-statistics-labels');
  for (let i = 0; i < y.length; i++) y[i] = rng.uniform() < (odds?.[i % k] ?? 0.5) ? 1 : -1;
  return y;
}

/** The decay applied after the G update with `t` updates before it. */
export function emaDecayAt(decay: number, t: number): number {
  return Math.min(decay, (1 + t) / (10 + t));
}

/** Validate `--ema`: 0 (off) or a decay in (0, 1). */
export function assertEmaDecay(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    throw new UsageError('E_BAD_ARGUMENT', `Expected a number in [0, 1) for ema but received ${describe(value)}`, {
      hint: `Pass --ema ${DEFAULT_EMA_DECAY} (the default), another decay below 1, or --ema 0 to keep no EMA generator.`,
    });
  }
  return value;
}

/** True when a weight map (e.g. a checkpoint's) carries an EMA copy of the generator. */
export function hasEma(spec: ArchitectureSpec, weights: TensorMap): boolean {
  return emaParameters(spec).every((p) => weights.has(emaName(p.name)));
}

/**
 * The EMA copy of a weight map as generator tensors under their own names (`generator.*`),
 * checked against the spec; for engines' `setEma` and the ONNX exporter.
 */
export function emaAsGenerator(spec: ArchitectureSpec, weights: TensorMap, where: string): TensorMap {
  const out: TensorMap = new Map();
  for (const p of emaParameters(spec)) {
    const t = weights.get(emaName(p.name));
    if (!t) {
      throw new CelebaGanError('E_NO_EMA', `${where} has no EMA generator (${emaName(p.name)} is missing)`, {
        hint: 'Use the raw weights (--weights raw), or train with --ema 0.999 (the default) to keep an EMA generator.',
      });
    }
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new CelebaGanError('E_WEIGHTS_MISMATCH', `${where}: ${emaName(p.name)} has shape [${t.shape.join(', ')}], expected [${p.shape.join(', ')}]`, {
        hint: 'Load weights saved for the same --preset and --width.',
      });
    }
    out.set(p.name, t);
  }
  return out;
}

/** Generator tensors (`generator.*`) renamed to their EMA names (`ema.generator.*`). */
export function generatorAsEma(generator: TensorMap): TensorMap {
  return new Map([...generator].map(([name, t]) => [emaName(name), t]));
}
