import type { ArchitectureSpec } from '../model/spec.js';
import { buildSpec, type SpecOptions } from './presets.js';

/**
 * The demo's own recipe, `demo28` (`celeba-gan demo`, bench:ema): seed28's networks (so export,
 * generate and eval see an ordinary seed28 model), trained to show learning within minutes on 2
 * CPU cores, with an EMA generator. The faithful presets are untouched; docs say why each number.
 * `benchSteps`: about what an idle 2-core machine reaches in the 3-minute demo (bench:ema's default).
 * No thread count: libtorch trains on every core (its default, availableParallelism()). At width
 * 0.25 on 2 cores, 2 threads made 1.9x the steps per second of 1, at the same CPU seconds per
 * step (measured: docs, "demo"); an earlier recipe forced 1 thread everywhere.
 */

export const DEMO_PRESET = 'seed28';

export const DEMO_RECIPE = Object.freeze({
  name: 'demo28',
  width: 0.25,
  batchSize: 32,
  learningRate: 0.0005,
  beta1: 0.5,
  ema: 0.999,
  synthetic: 4096,
  seed: 2018,
  benchSteps: 1800,
});

export interface DemoTraining {
  learningRate: number;
  beta1: number;
}

/**
 * seed28 at `width` with the demo recipe's Adam settings (or `training`'s). With `conditioning`
 * (the data set's attribute names and frequencies) it is the conditional demo recipe
 * (`demo --attributes`, bench:conditional): the same numbers, the labels concatenated to z and a
 * projection discriminator (src/config/presets.ts); nothing else changes, so the conditional
 * and the unconditional model are compared at one recipe.
 */
export function demoSpec(width: number, training: DemoTraining = DEMO_RECIPE, conditioning: SpecOptions = {}): ArchitectureSpec {
  const base = buildSpec(DEMO_PRESET, width, conditioning);
  return Object.freeze({ ...base, training: Object.freeze({ ...base.training, learningRate: training.learningRate, beta1: training.beta1 }) });
}
