import { CelebaGanError, UsageError } from '../errors.js';
import { checkWeights } from '../model/check-weights.js';
import { allParameters, attributeCount, parameterList } from '../model/shapes.js';
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

/**
 * The labels of a call (`trainStep`, `generate`, `discriminate`) checked against the spec: [n, K]
 * finite values for a conditional spec, none for an unconditional one. Returns them (or undefined).
 */
export function checkedLabels(spec: ArchitectureSpec, labels: Float32Array | undefined, n: number, where: string): Float32Array | undefined {
  const k = attributeCount(spec);
  if (k === 0) {
    if (labels !== undefined) {
      throw new UsageError('E_NOT_CONDITIONAL', `${where}: attribute labels were given, but this ${spec.preset} model is unconditional`, {
        hint: 'Leave the attributes out, or train a conditional model (train --conditional on a data set with labels).',
      });
    }
    return undefined;
  }
  const names = spec.conditioning!.attributes.join(', ');
  if (labels === undefined) {
    throw new UsageError('E_NO_LABELS', `${where}: this model is conditional on ${k} attributes (${names}) and needs a label row per image`, {
      hint: 'Use a data set prepared with attribute labels (prepare --attributes), or pass the attribute values.',
    });
  }
  if (!(labels instanceof Float32Array) || labels.length !== n * k) {
    throw new CelebaGanError(
      'E_BAD_LABELS',
      `${where}: labels must be a Float32Array of ${n}x${k} values (${names}); received ${labels instanceof Float32Array ? labels.length : typeof labels}`,
    );
  }
  for (let i = 0; i < labels.length; i++) {
    if (!Number.isFinite(labels[i]))
      throw new CelebaGanError('E_BAD_LABELS', `${where}: label ${i} (image ${Math.floor(i / k)}, ${spec.conditioning!.attributes[i % k]}) is ${labels[i]}`);
  }
  return labels;
}
