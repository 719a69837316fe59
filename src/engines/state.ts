import { checkWeights } from '../model/check-weights.js';
import { allParameters, parameterList } from '../model/shapes.js';
import type { ArchitectureSpec } from '../model/spec.js';
import type { TensorMap } from '../model/tensors.js';
import type { OptimizerState } from './engine.js';

/** Canonical tensors by name, checked against the spec (data only: shapes are the spec's). */
export interface CheckedState {
  weights: Record<string, Float32Array>;
  /** `adam.m.<name>` / `adam.v.<name>` for every trainable tensor; null when no optimiser state was given. */
  optimizer: Record<string, Float32Array> | null;
}

/**
 * Every engine's `setWeights` starts here: all of the spec's tensors (and, when given, Adam's
 * moments for the trainable ones) must be present with their canonical shapes. Everything is
 * checked before anything is returned, so an engine handed a bad map changes nothing.
 */
export function checkedState(spec: ArchitectureSpec, weights: TensorMap, optimizer?: OptimizerState): CheckedState {
  checkWeights(spec, weights, { where: 'setWeights' });
  if (optimizer) for (const prefix of ['adam.m.', 'adam.v.']) checkWeights(spec, optimizer.tensors, { where: 'setWeights (optimizer state)', prefix });
  const checked = (name: string, map: TensorMap): Float32Array => map.get(name)!.data;
  const w: Record<string, Float32Array> = {};
  const o: Record<string, Float32Array> | null = optimizer ? {} : null;
  for (const p of allParameters(spec)) {
    w[p.name] = checked(p.name, weights);
    if (optimizer && o && p.trainable) {
      for (const k of [`adam.m.${p.name}`, `adam.v.${p.name}`]) o[k] = checked(k, optimizer.tensors);
    }
  }
  return { weights: w, optimizer: o };
}

/** An EMA generator for `setEma`: every generator tensor under its `generator.*` name, canonical shapes. */
export function checkedEma(spec: ArchitectureSpec, generator: TensorMap): Record<string, Float32Array> {
  checkWeights(spec, generator, { where: 'setEma (EMA generator)', network: 'generator', hint: 'Load EMA weights saved for the same --preset and --width.' });
  const out: Record<string, Float32Array> = {};
  for (const p of parameterList(spec, 'generator')) out[p.name] = generator.get(p.name)!.data;
  return out;
}
