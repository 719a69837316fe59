import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadInception, resizeToFloat } from '../../src/eval/inception.js';
import { python } from '../support/onnx.js';
import { ONNX, referenceSkip } from '../support/references.js';
import { tempDir } from '../inference/fixtures.js';

/**
 * The Inception path with stand-in ONNX graphs made by python3-onnx (no real Inception weights
 * exist offline): a per-channel mean over the image is a "feature extractor" whose output can
 * be computed by hand, which checks layout, resizing, value range and batching.
 */

const MAKE_MODEL = `
import sys, onnx
from onnx import helper, TensorProto
kind, path = sys.argv[1], sys.argv[2]
if kind == 'nchw64':
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 3, 64, 64])
    y = helper.make_tensor_value_info('pool', TensorProto.FLOAT, ['batch', 3, 1, 1])
    nodes = [helper.make_node('GlobalAveragePool', ['x'], ['pool'])]
elif kind == 'nhwc':
    x = helper.make_tensor_value_info('image', TensorProto.FLOAT, ['batch', 'h', 'w', 3])
    y = helper.make_tensor_value_info('features', TensorProto.FLOAT, ['batch', 3])
    nodes = [helper.make_node('ReduceMean', ['image'], ['features'], axes=[1, 2], keepdims=0)]
else:
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 5, 8, 8])
    y = helper.make_tensor_value_info('pool', TensorProto.FLOAT, ['batch', 5, 1, 1])
    nodes = [helper.make_node('GlobalAveragePool', ['x'], ['pool'])]
graph = helper.make_graph(nodes, 'standin', [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, path)
`;

let dir: string;

function solid(n: number, size: number, colours: [number, number, number][]): Uint8Array {
  const out = new Uint8Array(n * size * size * 3);
  for (let i = 0; i < n; i++) for (let p = 0; p < size * size; p++) out.set(colours[i % colours.length]!, (i * size * size + p) * 3);
  return out;
}

before(() => {
  dir = tempDir('cg-inception-');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('inception (user-supplied ONNX)', { skip: referenceSkip(ONNX) }, () => {
  it('reads layout and size from an NCHW graph, resizes, scales to 0..1 and flattens [N, 3, 1, 1]', async () => {
    const path = join(dir, 'nchw64.onnx');
    python(MAKE_MODEL, ['nchw64', path]);
    const inc = await loadInception(path, { batchSize: 2 });
    try {
      assert.equal(inc.info.features, 'inception');
      assert.equal(inc.info.dim, 3);
      assert.equal(inc.info.inputSize, 64);
      assert.match(inc.info.description, /64x64 NCHW input in \[0,1\]/);
      assert.match(inc.info.source, /sha256 [0-9a-f]{64}/);
      const f = await inc.extract(
        solid(3, 28, [
          [255, 0, 51],
          [0, 102, 255],
        ]),
        3,
        28,
        28,
      );
      const expected = [1, 0, 0.2, 0, 0.4, 1, 1, 0, 0.2];
      assert.equal(f.length, expected.length);
      for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(f[i]! - expected[i]!) < 1e-5, `feature ${i}: ${f[i]} vs ${expected[i]}`);
    } finally {
      await inc.dispose();
    }
  });

  it('takes 299 for symbolic NHWC sizes and honours the -1,1 range', async () => {
    const path = join(dir, 'nhwc.onnx');
    python(MAKE_MODEL, ['nhwc', path]);
    const inc = await loadInception(path, { range: '-1,1' });
    try {
      assert.equal(inc.info.inputSize, 299);
      assert.match(inc.info.description, /299x299 NHWC input in \[-1,1\]/);
      const f = await inc.extract(solid(1, 16, [[255, 0, 51]]), 1, 16, 16);
      // float32 sums over 299 x 299 values: about 1e-3 of rounding.
      assert.ok(Math.abs(f[0]! - 1) < 2e-3 && Math.abs(f[1]! + 1) < 2e-3 && Math.abs(f[2]! + 0.6) < 2e-3, `${[...f]}`);
    } finally {
      await inc.dispose();
    }
  });

  it('ERROR PATH - a graph whose input is not an RGB image', async () => {
    const path = join(dir, 'five.onnx');
    python(MAKE_MODEL, ['five', path]);
    await assert.rejects(loadInception(path), { name: 'CelebaGanError', code: 'E_INCEPTION_IO', message: /no dimension of 3 channels/ });
  });

  it('ERROR PATH - a file that is not ONNX', async () => {
    const path = join(dir, 'junk.onnx');
    writeFileSync(path, 'not a model');
    await assert.rejects(loadInception(path), { name: 'UsageError', code: 'E_INCEPTION_INVALID' });
  });
});

describe('resizeToFloat', () => {
  it('is bilinear with half-pixel centres and edge clamping', () => {
    // 2x2 single image, red channel [[0, 100], [200, 40]]; resized to 4x4.
    const img = new Uint8Array([0, 0, 0, 100, 0, 0, 200, 0, 0, 40, 0, 0]);
    const out = resizeToFloat(img, 1, 2, 2, 4, 'NCHW', '0,255');
    // Output (0, 1): source x = 0.25, y clamped to 0 -> 0.75*0 + 0.25*100.
    assert.ok(Math.abs(out[1]! - 25) < 1e-4);
    // Output (1, 1): x = 0.25, y = 0.25 -> bilinear of the four corners.
    const v = (0 * 0.75 + 100 * 0.25) * 0.75 + (200 * 0.75 + 40 * 0.25) * 0.25;
    assert.ok(Math.abs(out[4 + 1]! - v) < 1e-4);
    // Corners keep the corner values.
    assert.equal(out[0], 0);
    assert.equal(out[15], 40);
  });
});
