import { CelebaGanError } from '../errors.js';
import { allParameters, parameterList, type ParamInfo } from './shapes.js';
import type { ArchitectureSpec, NetworkName } from './spec.js';
import { numel, type TensorMap } from './tensors.js';

/**
 * The one check that a map of canonical tensors fits a spec: every parameter present, with its
 * canonical shape and as many values as the shape says. The checkpoint writer and reader, every
 * engine's setWeights and the ONNX exporter all call it, so a misfit is always E_WEIGHTS_MISMATCH
 * naming where the tensors came from.
 */

export interface CheckWeightsOptions {
  /** Where the tensors came from, for the message: `checkpoint runs/a/checkpoints/step-000000100`. */
  where: string;
  /** Only this network's parameters (default both). */
  network?: NetworkName;
  /** Check `<prefix><name>` for the trainable parameters only (Adam moments: `adam.m.`). */
  prefix?: string;
  hint?: string;
}

function expectedParameters(spec: ArchitectureSpec, network?: NetworkName): ParamInfo[] {
  return network ? parameterList(spec, network) : allParameters(spec);
}

export function checkWeights(spec: ArchitectureSpec, tensors: TensorMap, o: CheckWeightsOptions): void {
  const mismatch = (what: string): CelebaGanError =>
    new CelebaGanError('E_WEIGHTS_MISMATCH', `tensors of ${o.where} do not fit ${spec.preset} at width ${spec.width}: ${what}`, {
      hint: o.hint ?? "Use weights saved for the same --preset and --width (each checkpoint's manifest.json names them).",
    });
  for (const p of expectedParameters(spec, o.network)) {
    if (o.prefix !== undefined && !p.trainable) continue;
    const name = `${o.prefix ?? ''}${p.name}`;
    const t = tensors.get(name);
    if (!t) throw mismatch(`${name} is missing (shape [${p.shape.join(', ')}])`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw mismatch(`${name} has shape [${t.shape.join(', ')}], expected [${p.shape.join(', ')}]`);
    }
    if (t.data.length !== numel(p.shape)) throw mismatch(`${name} holds ${t.data.length} values but its shape [${p.shape.join(', ')}] needs ${numel(p.shape)}`);
  }
}

/** The first tensor holding NaN or an infinity, or null when all values are finite. */
export function firstNonFinite(tensors: TensorMap): { name: string; index: number; value: number } | null {
  for (const [name, t] of tensors) {
    let index = 0;
    for (const value of t.data) {
      if (!Number.isFinite(value)) return { name, index, value };
      index++;
    }
  }
  return null;
}
