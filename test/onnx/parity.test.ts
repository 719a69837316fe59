import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildSpec } from '../../src/config/presets.js';
import { createTfjsEngine, type TfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import { outputShape } from '../../src/model/shapes.js';
import { buildGeneratorOnnx } from '../../src/onnx/export.js';
import { weightsWithBatchNorm } from './fixtures.js';
import { maxAbsDiff, randomZ, runOnnx } from '../support/onnx.js';

/**
 * The exported model against the training engine: the TensorFlow.js engine's generator in
 * inference mode (pure-JS CPU backend, as in CI) on the same weights and z. Batch-norm statistics
 * are random, so a wrongly exported batch norm or padding shows up as a large difference.
 */

const CASES = [
  { preset: 'seed28', width: 0.0625 },
  { preset: 'dcgan64', width: 0.0625 },
] as const;

for (const { preset, width } of CASES) {
  describe(`ONNX parity with the tfjs engine: ${preset} at width ${width}`, () => {
    const spec = buildSpec(preset, width);
    const weights = weightsWithBatchNorm(spec, 11);
    let engine: TfjsEngine;
    before(async () => {
      engine = await createTfjsEngine(spec, { backend: 'cpu' });
      await engine.setWeights(weights);
    });
    after(() => engine?.dispose());

    for (const fold of [false, true]) {
      const model = buildGeneratorOnnx(spec, weights, { foldBatchNorm: fold });
      for (const n of [1, 7]) {
        test(`batch ${n}, ${fold ? 'batch norm folded' : 'batch norm with running statistics'}: max |diff| <= 1e-4`, async () => {
          const z = randomZ(100 + n, n, spec.zDim, spec.latent);
          const expected = await engine.generate(z, n);
          const got = await runOnnx(model, z, n, spec.zDim);
          assert.deepEqual([...got.dims], [n, ...outputShape(spec, 'generator')]);
          const diff = maxAbsDiff(got.data, expected);
          assert.ok(diff <= 1e-4, `max |onnx - tfjs| = ${diff}`);
          // The images must not be saturated or constant, or the comparison would prove little.
          const spread = Math.max(...got.data) - Math.min(...got.data);
          assert.ok(spread > 0.05, `output spread ${spread}`);
        });
      }
    }
  });
}
