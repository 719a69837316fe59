import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildSpec } from '../../src/config/presets.js';
import { createTfjsEngine, type TfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import type { CelebaGanError } from '../../src/errors.js';
import { outputShape } from '../../src/model/shapes.js';
import { DEFAULT_OPSET, MIN_OPSET, buildGeneratorOnnx } from '../../src/onnx/export.js';
import { META } from '../../src/onnx/metadata.js';
import { decodeModel } from '../../src/onnx/onnx-proto.js';
import { weightsWithBatchNorm } from './fixtures.js';
import { maxAbsDiff, python, randomZ, runOnnx } from '../support/onnx.js';
import { ONNX, referenceSkip } from '../support/references.js';
import { TEST_ATTRIBUTES, fakeLabels } from '../engines/labels.js';

/**
 * A conditional generator's ONNX graph: a second input `attributes` [batch, K], concatenated to z
 * before the first layer; metadata names the attributes (and their training frequencies).
 */

const K = TEST_ATTRIBUTES.length;
const FREQUENCIES = [0.48, 0.07, 0.15];
const CASES = [
  { preset: 'seed28', width: 0.0625 },
  { preset: 'dcgan64', width: 0.0625 },
] as const;

for (const { preset, width } of CASES) {
  describe(`conditional ONNX export: ${preset} at width ${width}`, () => {
    const spec = buildSpec(preset, width, { attributes: TEST_ATTRIBUTES });
    const weights = weightsWithBatchNorm(spec, 13);
    let engine: TfjsEngine;
    before(async () => {
      engine = await createTfjsEngine(spec, { backend: 'cpu' });
      await engine.setWeights(weights);
    });
    after(() => engine?.dispose());

    test('inputs z and attributes; Concat feeds the first layer; metadata lists the attributes in order, with frequencies', () => {
      const m = decodeModel(buildGeneratorOnnx(spec, weights, { attributeFrequencies: FREQUENCIES }));
      assert.deepEqual(
        m.graph.input.map((v) => v.name),
        ['z', 'attributes'],
      );
      const concat = m.graph.node[0]!;
      assert.equal(concat.op_type, 'Concat');
      assert.deepEqual(concat.input, ['z', 'attributes']);
      assert.equal(m.graph.node[1]!.input[0], concat.output[0]);
      const meta = Object.fromEntries((m.metadata_props ?? []).map((p) => [p.key, p.value]));
      assert.deepEqual(JSON.parse(meta[META.attributes]!), [...TEST_ATTRIBUTES]);
      assert.deepEqual(JSON.parse(meta[META.attributeFrequencies]!), FREQUENCIES);
      // Without the option, no frequencies are claimed.
      const bare = decodeModel(buildGeneratorOnnx(spec, weights));
      assert.ok(!(bare.metadata_props ?? []).some((p) => p.key === META.attributeFrequencies));
    });

    for (const fold of [false, true]) {
      test(`onnxruntime matches the tfjs engine with the same z and attributes${fold ? ' (batch norm folded)' : ''}: max |diff| <= 1e-4`, async () => {
        const model = buildGeneratorOnnx(spec, weights, { foldBatchNorm: fold });
        const n = 5;
        const z = randomZ(200, n, spec.zDim, spec.latent);
        const y = fakeLabels(n, K, 200, 'onnx-cond-labels');
        const expected = await engine.generate(z, n, 'raw', y);
        const got = await runOnnx(model, z, n, spec.zDim, { data: y, k: K });
        assert.deepEqual([...got.dims], [n, ...outputShape(spec, 'generator')]);
        const diff = maxAbsDiff(got.data, expected);
        assert.ok(diff <= 1e-4, `max |onnx - tfjs| = ${diff}`);
        // The attributes reach the images: flipped rows, other images from the same z.
        const flipped = await runOnnx(model, z, n, spec.zDim, { data: y.map((v) => -v), k: K });
        assert.ok(maxAbsDiff(flipped.data, got.data) > 0.01, 'the attributes change the output');
      });
    }
  });
}

describe('conditional ONNX checker (python3 onnx, full_check=True)', () => {
  const skip = referenceSkip(ONNX);
  const tmp = mkdtempSync(join(tmpdir(), 'cg-onnx-cond-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const CHECK = `
import json, sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
print(json.dumps({"inputs": [[v.name, dims(v)] for v in m.graph.input], "outputs": [[v.name, dims(v)] for v in m.graph.output]}))
`;
  for (const { preset, width } of CASES) {
    for (const fold of [false, true]) {
      for (const opset of [MIN_OPSET, DEFAULT_OPSET]) {
        test(`${preset}, opset ${opset}${fold ? ', batch norm folded' : ''}: passes the checker with both inputs declared`, { skip }, () => {
          const spec = buildSpec(preset, width, { attributes: TEST_ATTRIBUTES });
          const path = join(tmp, `${preset}-${opset}-${fold}.onnx`);
          writeFileSync(path, buildGeneratorOnnx(spec, weightsWithBatchNorm(spec, 5), { opset, foldBatchNorm: fold, attributeFrequencies: FREQUENCIES }));
          const seen = JSON.parse(python(CHECK, [path])) as { inputs: unknown; outputs: unknown };
          assert.deepEqual(seen.inputs, [
            ['z', ['batch', spec.zDim]],
            ['attributes', ['batch', K]],
          ]);
          assert.deepEqual(seen.outputs, [['images', ['batch', ...outputShape(spec, 'generator')]]]);
        });
      }
    }
  }
});

test('ERROR PATH - attribute frequencies of the wrong count, out of range, or for an unconditional model', () => {
  const spec = buildSpec('seed28', 0.0625, { attributes: TEST_ATTRIBUTES });
  const weights = weightsWithBatchNorm(spec, 5);
  const fails = (f: () => unknown, code: string, re: RegExp) =>
    assert.throws(f, (err: CelebaGanError) => {
      assert.equal(err.code, code);
      assert.match(err.message, re);
      return true;
    });
  fails(
    () => buildGeneratorOnnx(spec, weights, { attributeFrequencies: [0.5] }),
    'E_BAD_ARGUMENT',
    /Expected 3 attribute frequencies \(Smiling, Eyeglasses, Blond_Hair\)/,
  );
  fails(() => buildGeneratorOnnx(spec, weights, { attributeFrequencies: [0.5, 2, 0.5] }), 'E_BAD_ARGUMENT', /frequency of Eyeglasses/);
  const plain = buildSpec('seed28', 0.0625);
  fails(() => buildGeneratorOnnx(plain, weightsWithBatchNorm(plain, 5), { attributeFrequencies: [0.5] }), 'E_NOT_CONDITIONAL', /unconditional/);
});
