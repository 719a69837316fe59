import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foldBatchNorm, type BatchNormStats, type FoldTarget } from '../../src/onnx/fold.js';
import { Rng } from '../../src/util/rng.js';
import { python } from '../support/onnx.js';
import { TORCH, referenceSkip } from '../support/references.js';
import { assertWithin } from '../support/tensors.js';

/**
 * src/onnx/fold.ts directly. By hand: values whose folded weights are exact. Against PyTorch:
 * batch_norm(layer(x)) with the unfolded weights and running statistics (inference mode), versus
 * layer(x) with the folded weights, for each layer kind the exporter folds.
 */

test("folds by hand: W' = s W per output, b' = s (b - mean) + beta, s = gamma / sqrt(var + eps)", () => {
  // s = [2 / sqrt(3 + 1), 0.5 / sqrt(0 + 1)] = [1, 0.5]
  const bn: BatchNormStats = {
    gamma: Float32Array.of(2, 0.5),
    beta: Float32Array.of(0.5, 0),
    mean: Float32Array.of(1, -2),
    variance: Float32Array.of(3, 0),
    epsilon: 1,
  };
  const conv = foldBatchNorm({ weight: Float32Array.of(3, 5, 4, 8), shape: [2, 2, 1, 1], outAxis: 0, bias: Float32Array.of(1, 1), outputsPerChannel: 1 }, bn);
  assert.deepEqual([...conv.weight], [3, 5, 2, 4]);
  assert.deepEqual([...conv.bias], [0.5, 1.5]);
  // convTranspose2d [in 2, out 2, 1, 1]: outputs on axis 1; no bias counts as 0.
  const deconv = foldBatchNorm({ weight: Float32Array.of(3, 4, 6, 8), shape: [2, 2, 1, 1], outAxis: 1, outputsPerChannel: 1 }, bn);
  assert.deepEqual([...deconv.weight], [3, 2, 6, 4]);
  assert.deepEqual([...deconv.bias], [-0.5, 1]);
  // dense [4 outputs, 1 input] reshaped to 2 channels x 2 positions.
  const dense = foldBatchNorm({ weight: Float32Array.of(1, 2, 3, 4), shape: [4, 1], outAxis: 0, outputsPerChannel: 2 }, bn);
  assert.deepEqual([...dense.weight], [1, 2, 1.5, 2]);
  assert.deepEqual([...dense.bias], [-0.5, -0.5, 1, 1]);
});

test("ERROR PATH - a batch norm whose channels do not match the layer's outputs", () => {
  const bn: BatchNormStats = { gamma: new Float32Array(3), beta: new Float32Array(3), mean: new Float32Array(3), variance: new Float32Array(3), epsilon: 1e-3 };
  assert.throws(
    () => foldBatchNorm({ weight: new Float32Array(8), shape: [4, 2], outAxis: 0, outputsPerChannel: 1 }, bn),
    /^Error: cannot fold batch norm of 3 channels into a layer with 4 outputs \(1 per channel\)$/,
  );
});

test('ERROR PATH - running statistics shorter than gamma are refused, not folded as NaN', () => {
  const bn: BatchNormStats = {
    gamma: Float32Array.of(1, 1),
    beta: new Float32Array(2),
    mean: new Float32Array(1),
    variance: new Float32Array(2),
    epsilon: 1e-3,
  };
  assert.throws(
    () => foldBatchNorm({ weight: new Float32Array(4), shape: [2, 2], outAxis: 0, outputsPerChannel: 1 }, bn),
    /^Error: cannot fold batch norm: 2 gammas but 1 mean values$/,
  );
});

const REFERENCE = String.raw`
import json, sys, torch, torch.nn.functional as F
torch.set_num_threads(1)
cases = json.load(sys.stdin)
out = []
for c in cases:
    T = lambda k: torch.tensor(c[k], dtype=torch.float64)
    W, Wf, bf = T('weight').view(c['shape']), T('foldedWeight').view(c['shape']), T('foldedBias')
    b = T('bias') if c.get('bias') is not None else None
    x = T('x').view(c['xShape'])
    kind = c['kind']
    def layer(w, bias):
        if kind == 'dense':
            return F.linear(x, w, bias).view(x.shape[0], len(c['gamma']), -1, 1)
        if kind == 'conv2d':
            return F.conv2d(x, w, bias, stride=2, padding=1)
        return F.conv_transpose2d(x, w, bias, stride=2, padding=1)
    unfolded = F.batch_norm(layer(W, b), T('mean'), T('variance'), T('gamma'), T('beta'), training=False, eps=c['epsilon'])
    folded = layer(Wf, bf)
    out.append([float((unfolded - folded).abs().max()), float(unfolded.abs().max())])
print(json.dumps(out))
`;

test('folded layers equal batch_norm(layer(x)) computed by PyTorch (dense reshaped, conv2d, convTranspose2d)', { skip: referenceSkip(TORCH) }, () => {
  const rng = new Rng(31, 'fold-test');
  const rand = (n: number, lo = -1, hi = 1): Float32Array => rng.fillUniform(new Float32Array(n), lo, hi);
  const C = 3;
  const stats = (): BatchNormStats => ({ gamma: rand(C, 0.5, 2), beta: rand(C), mean: rand(C, -0.5, 0.5), variance: rand(C, 0.1, 3), epsilon: 1e-3 });
  const cases: { kind: string; target: FoldTarget; xShape: number[] }[] = [
    { kind: 'dense', target: { weight: rand(C * 4 * 5), shape: [C * 4, 5], outAxis: 0, outputsPerChannel: 4 }, xShape: [2, 5] },
    { kind: 'conv2d', target: { weight: rand(C * 2 * 9), shape: [C, 2, 3, 3], outAxis: 0, bias: rand(C), outputsPerChannel: 1 }, xShape: [2, 2, 6, 6] },
    {
      kind: 'convTranspose2d',
      target: { weight: rand(2 * C * 16), shape: [2, C, 4, 4], outAxis: 1, bias: rand(C), outputsPerChannel: 1 },
      xShape: [2, 2, 5, 5],
    },
  ];
  const payload = cases.map(({ kind, target, xShape }) => {
    const bn = stats();
    const folded = foldBatchNorm(target, bn);
    const list = (a: Float32Array | undefined) => (a ? [...a] : null);
    return {
      kind,
      shape: target.shape,
      xShape,
      x: [...rand(xShape.reduce((a, b) => a * b, 1))],
      weight: list(target.weight),
      bias: list(target.bias),
      foldedWeight: list(folded.weight),
      foldedBias: list(folded.bias),
      gamma: list(bn.gamma),
      beta: list(bn.beta),
      mean: list(bn.mean),
      variance: list(bn.variance),
      epsilon: bn.epsilon,
    };
  });
  const results = JSON.parse(pythonWithInput(REFERENCE, JSON.stringify(payload))) as [number, number][];
  for (const [i, [diff, scale]] of results.entries()) {
    assert.ok(scale > 0.1, `${cases[i]!.kind}: a non-trivial output`);
    // float32 folded weights against float64 maths: a few float32 ulps of the output.
    assertWithin(
      `fold~PyTorch ${cases[i]!.kind}`,
      diff,
      1e-5 * Math.max(1, scale),
      `${cases[i]!.kind}: max |unfolded - folded| ${diff} (output scale ${scale})`,
    );
  }
});

function pythonWithInput(script: string, input: string): string {
  return python(`import sys, io\nsys.stdin = io.StringIO(${JSON.stringify(input)})\n${script}`);
}
