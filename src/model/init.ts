import { Rng } from '../util/rng.js';
import { allParameters, type ParamInfo } from './shapes.js';
import type { ArchitectureSpec } from './spec.js';
import { numel, tensor, type TensorMap } from './tensors.js';

/**
 * Initial weights for both networks, computed in JavaScript from the seed, so every engine
 * starts a run from the very same numbers. Each tensor has its own random stream (seed, name):
 * changing one layer's size does not change the others.
 */
export function initialWeights(spec: ArchitectureSpec, seed: number): TensorMap {
  const out: TensorMap = new Map();
  for (const p of allParameters(spec)) out.set(p.name, tensor(p.shape, initValues(spec, p, seed)));
  return out;
}

function fans(p: ParamInfo): { fanIn: number; fanOut: number } {
  const [a = 1, b = 1, kh = 1, kw = 1] = p.shape;
  const receptive = kh * kw;
  // dense/conv2d are [out, in, ...]; convTranspose2d is [in, out, ...]. Glorot is symmetric in
  // fanIn/fanOut, so the order does not change the bound.
  return { fanIn: b * receptive, fanOut: a * receptive };
}

function initValues(spec: ArchitectureSpec, p: ParamInfo, seed: number): Float32Array {
  const n = numel(p.shape);
  const data = new Float32Array(n);
  const init = spec.training.init;
  switch (p.role) {
    case 'bias':
    case 'beta':
    case 'runningMean':
      return data;
    case 'runningVar':
      return data.fill(1);
    case 'gamma':
      if (init.kind === 'normal') return new Rng(seed, 'init', p.name).fillNormal(data, 1, init.std);
      return data.fill(1);
    case 'weight': {
      const rng = new Rng(seed, 'init', p.name);
      if (init.kind === 'normal') return rng.fillNormal(data, 0, init.std);
      const { fanIn, fanOut } = fans(p);
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      return rng.fillUniform(data, -limit, limit);
    }
  }
}
