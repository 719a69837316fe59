import type { ArchitectureSpec } from '../model/spec.js';
import type { TensorMap } from '../model/tensors.js';

/**
 * The seam every training engine implements (TensorFlow.js in src/engines/tfjs, libtorch in
 * src/engines/torch). Engines exchange only canonical tensors (src/model/spec.ts layouts and
 * names), so a checkpoint written by one engine loads in the other and in the ONNX exporter.
 *
 * One training step (identical in every engine):
 *   z ~ latent(batch, zDim)                 (spec.latent: uniform(-1, 1) or normal(0, 1))
 *   D update: fake = G(z; train, dropout mask m1)
 *             lossD = BCE(D(real; train), realLabel) + BCE(D(fake; train), 0)   (each a batch mean)
 *             Adam step on D's trainable tensors
 *   G update: fake2 = G(z; train, fresh dropout mask m2)   (same z)
 *             lossG = BCE(D(fake2; train), 1)               (non-saturating), with D's updated weights
 *             Adam step on G's trainable tensors
 *   Batch norm: every train-mode forward normalises with the batch's statistics and updates the
 *   running statistics (G twice per step, D three times: real, fake, fake2).
 *   dReal / dFake report mean sigmoid(D(real)) and mean sigmoid(D(fake)) from the D update.
 * Real images enter as uint8 HWC and are scaled to [-1, 1] as x / 127.5 - 1.
 * Conditional specs (spec.conditioning, K attributes): every step takes the batch's labels y
 * [batch, K] (+1/-1). Both G forwards use G(z, y) and every D forward D(., y), i.e. the fakes get
 * the SAME label rows as the real images: the step draws nothing more, so its randomness stays
 * a function of (seed, step).
 * Randomness for a step (z, dropout masks) is a function of (seed, step) alone, so a resumed run
 * repeats exactly what an uninterrupted run would have done.
 * EMA generator (src/engines/ema.ts), when on: after the G update, the EMA copy of the generator
 * takes the raw weights in with the warmed-up decay; it only reads the raw weights.
 */

export type EngineName = 'tfjs' | 'torch';

/** Which generator: the trained (`raw`) weights or their moving average (`ema`). */
export type GeneratorWeights = 'raw' | 'ema';

export interface EngineInfo {
  engine: EngineName;
  /** What actually runs the maths, e.g. `tensorflow (tfjs-node-gpu, CUDA)`, `cpu (pure JS)`, `libtorch 1.13.1 cpu`. */
  backend: string;
  device: string;
  /** Why better backends were not used, one line each (printed by the CLI). */
  notes: string[];
}

export interface StepMetrics {
  lossD: number;
  lossG: number;
  /** Mean D(x) for real images (probability). */
  dReal: number;
  /** Mean D(G(z)) for generated images during the D update (probability). */
  dFake: number;
  /** Data-parallel training: ms this step spent averaging gradients over the ranks (both updates). */
  allReduceMs?: number;
}

/** Optional fixed randomness for a step, used by cross-engine tests. */
export interface StepRandomness {
  /** [batch, zDim] */
  z: Float32Array;
  /**
   * Dropout keep-masks (already scaled: 0 or 1/(1-rate)) for the generator's dropout layers, in
   * layer order, each [batch, C*H*W] in C,H,W order; one list for the D update and one for the
   * G update. `null` disables dropout for the step.
   */
  dropoutD: Float32Array[] | null;
  dropoutG: Float32Array[] | null;
}

export interface TrainStepOptions {
  seed: number;
  step: number;
  randomness?: StepRandomness;
  /** Conditional specs only (required there): the batch's attribute rows, [n, K] +1/-1, in spec.conditioning order. */
  labels?: Float32Array;
}

export interface OptimizerState {
  /** Adam moments by canonical name: `adam.m.<param name>` and `adam.v.<param name>`. */
  tensors: TensorMap;
  /** Number of Adam updates applied so far, per network. */
  steps: { generator: number; discriminator: number };
}

export interface TrainingEngine {
  readonly info: EngineInfo;
  readonly spec: ArchitectureSpec;
  /** Replace every weight (and, if given, the optimiser state). Missing or misshaped names are an error. */
  setWeights(weights: TensorMap, optimizer?: OptimizerState): Promise<void>;
  /** Canonical copies of all weights (generator + discriminator, running stats included). */
  getWeights(): Promise<TensorMap>;
  getOptimizerState(): Promise<OptimizerState>;
  /**
   * One full training step on `batch` (uint8 HWC images, spec.training.batchSize or any N >= 2).
   * `seed` and `step` determine the step's randomness unless `randomness` is given.
   */
  trainStep(batch: Uint8Array, n: number, opts: TrainStepOptions): Promise<StepMetrics>;
  /**
   * Keep an EMA generator with `decay` (0 turns it off). It starts from `generator` (the
   * canonical `generator.*` tensors, e.g. a checkpoint's `ema.*` ones renamed by emaAsGenerator)
   * or, without it, from the raw generator's current weights. Call after setWeights.
   */
  setEma(decay: number, generator?: TensorMap): Promise<void>;
  /** The EMA generator's tensors under their `generator.*` names; null when the EMA is off. */
  getEmaWeights(): Promise<TensorMap | null>;
  /**
   * Generator in inference mode: z [n, zDim] -> images [n, C, H, W] float32 in [-1, 1].
   * `weights: 'ema'` runs the EMA generator (an error when the EMA is off). Conditional specs take
   * `labels` [n, K] (any finite values: +1/-1 as trained, in between to walk an attribute).
   */
  generate(z: Float32Array, n: number, weights?: GeneratorWeights, labels?: Float32Array): Promise<Float32Array>;
  /** Discriminator in inference mode: images [n, C, H, W] in [-1, 1] (and labels [n, K]) -> logits [n]. */
  discriminate(images: Float32Array, n: number, labels?: Float32Array): Promise<Float32Array>;
  dispose(): void;
}
