/**
 * Batch-norm folding for inference. Batch norm with running statistics is an affine map per
 * channel, y = s * x + (beta - s * mean) with s = gamma / sqrt(var + eps); when x = W * in + b
 * comes straight from a linear layer, the map folds into that layer: W' = s * W (per output),
 * b' = s * (b - mean) + beta. Computed in float64, rounded once to float32.
 */

export interface BatchNormStats {
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  epsilon: number;
}

export interface FoldTarget {
  weight: Float32Array;
  shape: readonly number[];
  /** Axis of `shape` that indexes the layer's outputs: 0 for dense/conv2d, 1 for convTranspose2d. */
  outAxis: 0 | 1;
  bias?: Float32Array;
  /**
   * Consecutive outputs that feed one batch-norm channel: 1 for convolutions (one output channel
   * each), H * W for a dense layer reshaped to C x H x W (C,H,W order) before the batch norm.
   */
  outputsPerChannel: number;
}

export function foldBatchNorm(t: FoldTarget, bn: BatchNormStats): { weight: Float32Array; bias: Float32Array } {
  const outputs = t.shape[t.outAxis];
  const before = t.outAxis === 0 ? 1 : t.shape[0]; // [in] for convTranspose2d's [in, out, kh, kw]
  if (outputs === undefined || before === undefined)
    throw new Error(`cannot fold batch norm into a layer of shape [${t.shape.join(', ')}]: it has no axis ${t.outAxis}`);
  const channels = bn.gamma.length;
  if (outputs !== channels * t.outputsPerChannel) {
    throw new Error(`cannot fold batch norm of ${channels} channels into a layer with ${outputs} outputs (${t.outputsPerChannel} per channel)`);
  }
  for (const [what, values] of [
    ['beta', bn.beta],
    ['mean', bn.mean],
    ['variance', bn.variance],
  ] as const) {
    if (values.length !== channels) throw new Error(`cannot fold batch norm: ${channels} gammas but ${values.length} ${what} values`);
  }
  if (t.weight.length % (before * outputs) !== 0)
    throw new Error(`cannot fold batch norm: ${t.weight.length} weights do not fill shape [${t.shape.join(', ')}]`);
  // `]!` below: c < channels, the length of gamma, beta, mean, variance and scale (checked
  // above); o < outputs and base + k < before * outputs * inner = weight.length.
  const scale = new Float64Array(channels);
  for (let c = 0; c < channels; c++) scale[c] = bn.gamma[c]! / Math.sqrt(bn.variance[c]! + bn.epsilon);

  const inner = t.weight.length / (before * outputs); // elements per (before, output) pair
  const weight = new Float32Array(t.weight.length);
  for (let a = 0; a < before; a++) {
    for (let o = 0; o < outputs; o++) {
      const s = scale[Math.floor(o / t.outputsPerChannel)]!;
      const base = (a * outputs + o) * inner;
      for (let k = 0; k < inner; k++) weight[base + k] = t.weight[base + k]! * s;
    }
  }
  const bias = new Float32Array(outputs);
  for (let o = 0; o < outputs; o++) {
    const c = Math.floor(o / t.outputsPerChannel);
    bias[o] = scale[c]! * ((t.bias?.[o] ?? 0) - bn.mean[c]!) + bn.beta[c]!;
  }
  return { weight, bias };
}
