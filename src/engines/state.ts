import { CelebaGanError } from '../errors.js';
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
  const mismatch = (what: string): CelebaGanError =>
    new CelebaGanError('E_WEIGHTS_MISMATCH', `weights do not fit ${spec.preset} at width ${spec.width}: ${what}`, {
      hint: 'Load weights saved for the same --preset and --width.',
    });
  const checked = (name: string, shape: readonly number[], map: TensorMap): Float32Array => {
    const t = map.get(name);
    if (!t) throw mismatch(`${name} is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw mismatch(`${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    return t.data;
  };
  const w: Record<string, Float32Array> = {};
  const o: Record<string, Float32Array> | null = optimizer ? {} : null;
  for (const p of allParameters(spec)) {
    w[p.name] = checked(p.name, p.shape, weights);
    if (optimizer && o && p.trainable) {
      for (const k of [`adam.m.${p.name}`, `adam.v.${p.name}`]) o[k] = checked(k, p.shape, optimizer.tensors);
    }
  }
  return { weights: w, optimizer: o };
}

/** An EMA generator for `setEma`: every generator tensor (`generator.*` names), canonical shapes. */
export function checkedEma(spec: ArchitectureSpec, generator: TensorMap): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const p of parameterList(spec, 'generator')) {
    const t = generator.get(p.name);
    if (!t || t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new CelebaGanError('E_WEIGHTS_MISMATCH', `EMA weights do not fit ${spec.preset} at width ${spec.width}: ${p.name} is ${t ? `[${t.shape.join(', ')}], expected [${p.shape.join(', ')}]` : 'missing'}`, {
        hint: 'Load EMA weights saved for the same --preset and --width.',
      });
    }
    out[p.name] = t.data;
  }
  return out;
}
