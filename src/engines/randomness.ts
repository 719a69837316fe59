import type { StepRandomness } from './engine.js';
import { layerInfos } from '../model/shapes.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { Rng } from '../util/rng.js';

/**
 * The randomness of one training step as a pure function of (seed, step), computed in
 * JavaScript so that every engine can draw exactly the same numbers (and a resumed run the same
 * as an uninterrupted one). Independent streams: z, and each dropout layer of each update.
 */

/** Latents for a step: [n, zDim], uniform(-1, 1) or normal(0, 1) as the spec says. */
export function stepLatents(spec: ArchitectureSpec, seed: number, step: number, n: number): Float32Array {
  const rng = new Rng(seed, 'z', step);
  const z = new Float32Array(n * spec.zDim);
  return spec.latent === 'uniform' ? rng.fillUniform(z, -1, 1) : rng.fillNormal(z, 0, 1);
}

/** Sizes (C*H*W) and rates of the generator's dropout layers, in layer order. */
export function dropoutLayers(spec: ArchitectureSpec): { index: number; size: number; rate: number }[] {
  return layerInfos(spec, 'generator')
    .filter((l) => l.layer.kind === 'dropout')
    .map((l) => ({ index: l.index, size: l.input.reduce((a, b) => a * b, 1), rate: (l.layer as { rate: number }).rate }));
}

/** Inverted-dropout keep masks (0 or 1 / (1 - rate)), [n, C*H*W] in C,H,W order. */
export function dropoutMasks(spec: ArchitectureSpec, seed: number, step: number, n: number, update: 'D' | 'G'): Float32Array[] {
  return dropoutLayers(spec).map(({ index, size, rate }) => {
    const rng = new Rng(seed, 'dropout', step, update, index);
    const keep = Math.fround(1 / (1 - rate));
    const mask = new Float32Array(n * size);
    if (rate === 0.5) {
      // One random bit per unit (32 per draw) instead of one draw per unit: the seed preset's
      // masks are large, and their cost matters next to a GPU step (docs/benchmarks.md has the figures).
      for (let i = 0; i < mask.length; i += 32) {
        let bits = rng.nextU32();
        const end = Math.min(mask.length, i + 32);
        for (let j = i; j < end; j++, bits >>>= 1) mask[j] = bits & 1 ? keep : 0;
      }
    } else {
      for (let i = 0; i < mask.length; i++) mask[i] = rng.uniform() >= rate ? keep : 0;
    }
    return mask;
  });
}

export function stepRandomness(spec: ArchitectureSpec, seed: number, step: number, n: number): StepRandomness {
  const hasDropout = dropoutLayers(spec).length > 0;
  return {
    z: stepLatents(spec, seed, step, n),
    dropoutD: hasDropout ? dropoutMasks(spec, seed, step, n, 'D') : null,
    dropoutG: hasDropout ? dropoutMasks(spec, seed, step, n, 'G') : null,
  };
}

/** The fixed noise behind the sample grids: image i always gets the same z. */
export function sampleLatents(spec: ArchitectureSpec, sampleSeed: number, n: number): Float32Array {
  const z = new Float32Array(n * spec.zDim);
  for (let i = 0; i < n; i++) {
    const rng = new Rng(sampleSeed, 'sample', i);
    const row = z.subarray(i * spec.zDim, (i + 1) * spec.zDim);
    if (spec.latent === 'uniform') rng.fillUniform(row, -1, 1);
    else rng.fillNormal(row, 0, 1);
  }
  return z;
}
