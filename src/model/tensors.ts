/** A named float32 tensor in a canonical layout (see spec.ts). Engines convert at their edges. */
export interface Tensor32 {
  shape: number[];
  data: Float32Array;
}

/** Canonical tensors by name, in a stable order (Map keeps insertion order). */
export type TensorMap = Map<string, Tensor32>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function tensor(shape: number[], data?: Float32Array): Tensor32 {
  const n = numel(shape);
  if (data && data.length !== n) throw new Error(`tensor data has ${data.length} values, shape [${shape.join(', ')}] needs ${n}`);
  return { shape, data: data ?? new Float32Array(n) };
}
