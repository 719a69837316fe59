import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildSpec } from '../../src/config/presets.js';
import { initialWeights } from '../../src/model/init.js';
import { outputShape, parameterList } from '../../src/model/shapes.js';
import type { ArchitectureSpec, LayerSpec } from '../../src/model/spec.js';
import { tensor, type TensorMap } from '../../src/model/tensors.js';
import { DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, buildGeneratorOnnx, generatorWeightBytes, irVersionFor } from '../../src/onnx/export.js';
import { META } from '../../src/onnx/metadata.js';
import { decodeModel } from '../../src/onnx/onnx-proto.js';
import { Rng } from '../../src/util/rng.js';
import { packageVersion } from '../../src/version.js';
import { weightsWithBatchNorm } from './fixtures.js';
import { python, randomZ, runOnnx } from '../support/onnx.js';
import { ONNX, referenceSkip } from '../support/references.js';

const tmp = mkdtempSync(join(tmpdir(), 'celeba-gan-onnx-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const PRESETS = [
  { preset: 'seed28', width: 0.0625 },
  { preset: 'dcgan64', width: 0.0625 },
] as const;

describe('model structure', () => {
  for (const { preset, width } of PRESETS) {
    const spec = buildSpec(preset, width);
    const weights = weightsWithBatchNorm(spec, 3);

    test(`${preset}: metadata, producer, IR version and graph signature round-trip`, () => {
      const model = decodeModel(buildGeneratorOnnx(spec, weights, { metadata: { [META.step]: '1234', [META.checkpointSha256]: 'ab'.repeat(32) } }));
      const meta = Object.fromEntries(model.metadata_props.map((p) => [p.key, p.value]));
      const [c, h, w] = outputShape(spec, 'generator');
      assert.deepEqual(meta, {
        [META.version]: packageVersion(),
        [META.preset]: preset,
        [META.width]: String(width),
        [META.zDim]: '100',
        [META.latent]: spec.latent,
        [META.imageHeight]: String(h),
        [META.imageWidth]: String(w),
        [META.imageChannels]: String(c),
        [META.layout]: 'NCHW',
        [META.outputRange]: '-1,1',
        [META.batchNorm]: 'running-stats',
        [META.step]: '1234',
        [META.checkpointSha256]: 'ab'.repeat(32),
      });
      assert.equal(model.ir_version, 8);
      assert.deepEqual(model.opset_import, [{ domain: '', version: DEFAULT_OPSET }]);
      assert.equal(model.producer_name, 'celeba-gan');
      assert.equal(model.producer_version, packageVersion());
      assert.match(model.doc_string ?? '', /step 1234/);
      const dims = (v: (typeof model.graph.input)[number]): (number | string)[] =>
        v.type.tensor_type.shape.dim.map((d) => (d.dim_param ? d.dim_param : Number(d.dim_value)));
      assert.deepEqual(
        model.graph.input.map((v) => [v.name, dims(v)]),
        [['z', ['batch', 100]]],
      );
      assert.deepEqual(
        model.graph.output.map((v) => [v.name, dims(v)]),
        [['images', ['batch', 3, h, w]]],
      );
    });

    test(`${preset}: inference graph: no dropout; batch norm as nodes, or none when folded`, () => {
      const ops = (fold: boolean): string[] => {
        const graph = decodeModel(buildGeneratorOnnx(spec, weights, { foldBatchNorm: fold })).graph;
        // Every intermediate value has its shape declared (the checker verifies them below).
        assert.deepEqual(
          graph.value_info?.map((v) => v.name),
          graph.node.slice(0, -1).map((n) => n.output[0]),
        );
        return graph.node.map((n) => n.op_type);
      };
      const bnCount = spec.generator.filter((l) => l.kind === 'batchNorm').length;
      const plain = ops(false);
      const folded = ops(true);
      assert.equal(plain.filter((o) => o === 'BatchNormalization').length, bnCount);
      assert.equal(folded.filter((o) => o === 'BatchNormalization').length, 0);
      assert.equal(plain.length - folded.length, bnCount);
      for (const list of [plain, folded]) {
        assert.ok(!list.includes('Dropout'));
        assert.equal(list[list.length - 1], 'Tanh');
      }
    });

    test(`${preset}: file size is the float32 weights plus under 4 KiB`, () => {
      const bytes = buildGeneratorOnnx(spec, weights).byteLength;
      const weightBytes = generatorWeightBytes(spec);
      assert.ok(bytes >= weightBytes && bytes - weightBytes < 4096, `${bytes} bytes for ${weightBytes} bytes of weights`);
      // Folded: the (fewer) tensors it stores, plus the same small overhead.
      const folded = buildGeneratorOnnx(spec, weights, { foldBatchNorm: true });
      const stored = decodeModel(folded).graph.initializer.reduce((n, t) => n + t.raw_data.byteLength, 0);
      assert.ok(folded.byteLength - stored < 4096, `${folded.byteLength} bytes for ${stored} bytes of tensors`);
    });

    test(`${preset}: the same inputs give the same bytes`, () => {
      const a = buildGeneratorOnnx(spec, weights, { foldBatchNorm: true });
      const b = buildGeneratorOnnx(spec, weightsWithBatchNorm(spec, 3), { foldBatchNorm: true });
      assert.deepEqual(Buffer.from(a), Buffer.from(b));
    });

    test(`${preset}: batch norm statistics matter (the parity tests can fail)`, async () => {
      // Same kernels, default statistics: a very different output from the exported model.
      const plainWeights = new Map(weights);
      for (const [name, t] of initialWeights(spec, 0)) if (/running_(mean|var)$/.test(name)) plainWeights.set(name, t);
      const z = randomZ(5, 2, spec.zDim, spec.latent);
      const a = await runOnnx(buildGeneratorOnnx(spec, weights), z, 2, spec.zDim);
      const b = await runOnnx(buildGeneratorOnnx(spec, plainWeights), z, 2, spec.zDim);
      let diff = 0;
      for (let i = 0; i < a.data.length; i++) diff = Math.max(diff, Math.abs(a.data[i]! - b.data[i]!));
      assert.ok(diff > 1e-2, `max diff ${diff}`);
    });
  }

  test('opsets: every supported one loads and gives the same images', async () => {
    const spec = buildSpec('seed28', 0.0625);
    const weights = weightsWithBatchNorm(spec, 4);
    const z = randomZ(9, 3, spec.zDim, spec.latent);
    const reference = await runOnnx(buildGeneratorOnnx(spec, weights), z, 3, spec.zDim);
    for (let opset = MIN_OPSET; opset <= MAX_OPSET; opset++) {
      const bytes = buildGeneratorOnnx(spec, weights, { opset });
      const model = decodeModel(bytes);
      assert.equal(model.opset_import[0]!.version, opset);
      assert.equal(model.ir_version, irVersionFor(opset));
      const got = await runOnnx(bytes, z, 3, spec.zDim);
      assert.deepEqual(got.data, reference.data, `opset ${opset}`);
    }
  });
});

describe('ONNX checker (python3 onnx, full_check=True)', () => {
  const missing = referenceSkip(ONNX);
  const maxKnown = missing ? 0 : Number(python('import onnx.defs; print(onnx.defs.onnx_opset_version())').trim());
  const CHECK = `
import json, sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
print(json.dumps({
  "inputs": [[v.name, dims(v)] for v in m.graph.input],
  "outputs": [[v.name, dims(v)] for v in m.graph.output],
  "meta": {p.key: p.value for p in m.metadata_props},
}))
`;
  for (const { preset, width } of PRESETS) {
    for (const fold of [false, true]) {
      for (const opset of [MIN_OPSET, DEFAULT_OPSET, MAX_OPSET]) {
        const name = `${preset}, opset ${opset}${fold ? ', batch norm folded' : ''}: passes the checker (declared shapes agree with ONNX shape inference)`;
        const skip = missing ? missing : opset > maxKnown ? `SKIPPED: the installed onnx knows opsets up to ${maxKnown}, not ${opset}` : false;
        test(name, { skip }, () => {
          const spec = buildSpec(preset, width);
          const path = join(tmp, `${preset}-${opset}-${fold}.onnx`);
          writeFileSync(path, buildGeneratorOnnx(spec, weightsWithBatchNorm(spec, 5), { opset, foldBatchNorm: fold, metadata: { [META.step]: '7' } }));
          const seen = JSON.parse(python(CHECK, [path])) as { inputs: unknown; outputs: unknown; meta: Record<string, string> };
          const [c, h, w] = outputShape(spec, 'generator');
          assert.deepEqual(seen.inputs, [['z', ['batch', 100]]]);
          assert.deepEqual(seen.outputs, [['images', ['batch', c, h, w]]]);
          assert.equal(seen.meta[META.preset], preset);
          assert.equal(seen.meta[META.latent], spec.latent);
          assert.equal(seen.meta[META.step], '7');
        });
      }
    }
  }
});

/**
 * Padding semantics, independent of src/model/shapes.ts: a one-layer generator whose transposed
 * convolution is computed here by its definition (scatter each input pixel times the kernel into
 * the full (in - 1) * stride + kernel output), then cropped by TensorFlow's rule worked out by
 * hand: `same` gives in * stride outputs, cropping total = kernel - stride rows, floor(total / 2)
 * at the start and the odd extra at the END.
 */
describe('transposed convolution padding (hand-computed reference)', () => {
  const CASES = [
    // kernel, stride, padding, input size, rows cropped at the start (by hand), output size
    { kernel: 3, stride: 2, padding: 'same', size: 3, begin: 0, out: 6 }, // total 1: 0 + 1
    { kernel: 5, stride: 2, padding: 'same', size: 3, begin: 1, out: 6 }, // total 3: 1 + 2
    { kernel: 4, stride: 2, padding: 'same', size: 3, begin: 1, out: 6 }, // total 2: 1 + 1
    { kernel: 4, stride: 1, padding: 'valid', size: 3, begin: 0, out: 6 }, // nothing cropped
  ] as const;
  for (const c of CASES) {
    test(`kernel ${c.kernel}, stride ${c.stride}, ${c.padding}, ${c.size}x${c.size} -> ${c.out}x${c.out}`, async () => {
      const cin = 2;
      const cout = 2;
      const layers: LayerSpec[] = [
        { kind: 'reshape', channels: cin, height: c.size, width: c.size },
        { kind: 'convTranspose2d', name: 'up', filters: cout, kernel: c.kernel, stride: c.stride, padding: c.padding, bias: true },
      ];
      const spec: ArchitectureSpec = {
        ...buildSpec('seed28', 0.0625),
        zDim: cin * c.size * c.size,
        image: { channels: cout, height: c.out, width: c.out },
        generator: layers,
        discriminator: [],
      };
      const rng = new Rng(1, 'pad-test', c.kernel);
      const wShape = [cin, cout, c.kernel, c.kernel];
      const weights: TensorMap = new Map([
        ['generator.up.weight', tensor(wShape, rng.fillUniform(new Float32Array(cin * cout * c.kernel ** 2), -1, 1))],
        ['generator.up.bias', tensor([cout], Float32Array.from([0.25, -0.5]))],
      ]);
      const x = rng.fillUniform(new Float32Array(spec.zDim), -1, 1);
      const W = weights.get('generator.up.weight')!.data;
      const full = (c.size - 1) * c.stride + c.kernel;
      const expected = new Float32Array(cout * c.out * c.out);
      for (let o = 0; o < cout; o++) {
        const plane = new Float64Array(full * full).fill(o === 0 ? 0.25 : -0.5);
        for (let ci = 0; ci < cin; ci++)
          for (let i = 0; i < c.size; i++)
            for (let j = 0; j < c.size; j++)
              for (let ky = 0; ky < c.kernel; ky++)
                for (let kx = 0; kx < c.kernel; kx++)
                  plane[(i * c.stride + ky) * full + j * c.stride + kx]! +=
                    x[(ci * c.size + i) * c.size + j]! * W[((ci * cout + o) * c.kernel + ky) * c.kernel + kx]!;
        for (let y = 0; y < c.out; y++) for (let xx = 0; xx < c.out; xx++) expected[(o * c.out + y) * c.out + xx] = plane[(y + c.begin) * full + xx + c.begin]!;
      }
      assert.deepEqual(outputShape(spec, 'generator'), [cout, c.out, c.out]);
      const got = await runOnnx(buildGeneratorOnnx(spec, weights), x, 1, spec.zDim);
      assert.deepEqual([...got.dims], [1, cout, c.out, c.out]);
      for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(got.data[i]! - expected[i]!) <= 1e-5, `element ${i}: ${got.data[i]} vs ${expected[i]}`);
    });
  }
});

describe('buildGeneratorOnnx: bad calls', () => {
  const spec = buildSpec('seed28', 0.0625);
  const weights = initialWeights(spec, 1);

  for (const opset of [12, 22, 17.5, '17', Number.NaN, -1]) {
    test(`ERROR PATH - opset ${typeof opset === 'string' ? JSON.stringify(opset) : String(opset)} is refused with E_OPSET naming the supported range`, () => {
      assert.throws(
        () => buildGeneratorOnnx(spec, weights, { opset: opset as number }),
        (err: Error & { code?: string; hint?: string }) => {
          assert.equal(err.name, 'UsageError');
          assert.equal(err.code, 'E_OPSET');
          assert.match(err.message, new RegExp(`between ${MIN_OPSET} and ${MAX_OPSET} for opset`));
          assert.match(err.hint ?? '', /--opset/);
          return true;
        },
      );
    });
  }

  test('ERROR PATH - a missing generator tensor is named', () => {
    const partial = new Map(weights);
    partial.delete('generator.deconv2.bias');
    assert.throws(() => buildGeneratorOnnx(spec, partial), {
      name: 'CelebaGanError',
      code: 'E_WEIGHTS_MISMATCH',
      message: /generator\.deconv2\.bias is missing/,
    });
  });

  test('ERROR PATH - weights holding NaN or Inf are refused: E_WEIGHTS_NOT_FINITE naming the tensor', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const poisoned = new Map(weights);
      const t = weights.get('generator.deconv2.weight')!;
      poisoned.set('generator.deconv2.weight', { shape: t.shape, data: t.data.map((v, i) => (i === 7 ? bad : v)) });
      assert.throws(() => buildGeneratorOnnx(spec, poisoned), {
        name: 'CelebaGanError',
        code: 'E_WEIGHTS_NOT_FINITE',
        message: new RegExp(`hold ${bad} in generator\\.deconv2\\.weight \\(value 7\\)`),
      });
    }
  });

  test('ERROR PATH - weights of another width are refused with both shapes', () => {
    const other = initialWeights(buildSpec('seed28', 0.125), 1);
    assert.throws(() => buildGeneratorOnnx(spec, other), {
      name: 'CelebaGanError',
      code: 'E_WEIGHTS_MISMATCH',
      message: /generator\.fc\.weight has shape \[2048, 100\], expected \[1024, 100\]/,
    });
  });

  test('ERROR PATH - folding a batch norm that follows an activation is refused, not skipped', () => {
    const odd: ArchitectureSpec = {
      ...spec,
      generator: [
        { kind: 'dense', name: 'fc', units: 12, bias: true },
        { kind: 'relu' },
        { kind: 'batchNorm', name: 'bn', momentum: 0.9, epsilon: 1e-5 },
        { kind: 'reshape', channels: 3, height: 2, width: 2 },
        { kind: 'tanh' },
      ],
    };
    const w: TensorMap = new Map(parameterList(odd, 'generator').map((p) => [p.name, tensor(p.shape)]));
    assert.throws(() => buildGeneratorOnnx(odd, w, { foldBatchNorm: true }), { name: 'UsageError', code: 'E_FOLD_BATCHNORM', message: /bn/ });
    assert.ok(buildGeneratorOnnx(odd, w).byteLength > 0); // unfolded is fine
  });
});
