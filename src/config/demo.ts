import type { ArchitectureSpec } from '../model/spec.js';
import { buildSpec } from './presets.js';

/**
 * The demo's own recipe, `demo28` (`celeba-gan demo`, bench:ema): seed28's networks (so export,
 * generate and eval see an ordinary seed28 model), trained to show learning within minutes on 2
 * CPU cores, with an EMA generator. The faithful presets are untouched; docs say why each number.
 * `benchSteps`: about what an idle 2-core machine reaches in the 3-minute demo (bench:ema's default).
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

/** seed28 at `width` with the demo recipe's Adam settings (or `training`'s). */
export function demoSpec(width: number, training: DemoTraining = DEMO_RECIPE): ArchitectureSpec {
  const base = buildSpec(DEMO_PRESET, width);
  return Object.freeze({ ...base, training: Object.freeze({ ...base.training, learningRate: training.learningRate, beta1: training.beta1 }) });
}

/**
 * libtorch's intra-op threads for the demo on the CPU: half the cores, at least one. OpenBLAS
 * runs its own threads under libtorch's matrix products, so libtorch threads on every core
 * oversubscribe them: on 2 cores, 1 thread trains the demo's width 0.25 faster than 2 (measured:
 * docs, "demo"). Twice as many cores get twice as many threads.
 */
export function demoThreads(cores: number): number {
  return Math.max(1, Math.floor(cores / 2));
}
