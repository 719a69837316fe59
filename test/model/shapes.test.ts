import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSpec } from '../../src/config/presets.js';
import { convAxis, convTransposeAxis, layerInfos, outputShape, parameterList, countParameters } from '../../src/model/shapes.js';
import { initialWeights } from '../../src/model/init.js';

test('seed28 generator layer shapes match SEED-NOTES', () => {
  const spec = buildSpec('seed28', 1);
  const shapes = layerInfos(spec, 'generator')
    .filter((l) => l.layer.kind === 'dense' || l.layer.kind === 'reshape' || l.layer.kind === 'convTranspose2d')
    .map((l) => l.output);
  assert.deepEqual(shapes, [[16384], [1024, 4, 4], [512, 7, 7], [256, 14, 14], [3, 28, 28]]);
  assert.deepEqual(outputShape(spec, 'discriminator'), [1]);
  const d = layerInfos(spec, 'discriminator')
    .filter((l) => l.layer.kind === 'conv2d')
    .map((l) => l.output);
  assert.deepEqual(d, [
    [64, 14, 14],
    [128, 7, 7],
    [256, 4, 4],
  ]);
});

test('dcgan64 shapes follow the PyTorch DCGAN reference', () => {
  const spec = buildSpec('dcgan64', 1);
  const g = layerInfos(spec, 'generator')
    .filter((l) => l.layer.kind === 'convTranspose2d')
    .map((l) => l.output);
  assert.deepEqual(g, [
    [512, 4, 4],
    [256, 8, 8],
    [128, 16, 16],
    [64, 32, 32],
    [3, 64, 64],
  ]);
  assert.deepEqual(outputShape(spec, 'discriminator'), [1]);
  // PyTorch's example: 3,576,704 generator and 2,765,568 discriminator parameters.
  assert.equal(countParameters(spec, 'generator'), 3576704);
  assert.equal(countParameters(spec, 'discriminator'), 2765568);
});

test('TensorFlow same padding puts the odd extra at the end', () => {
  assert.deepEqual(convTransposeAxis(7, 5, 2, 'same'), { out: 14, pads: { begin: 1, end: 2 } });
  assert.deepEqual(convTransposeAxis(4, 4, 1, 'valid'), { out: 7, pads: { begin: 0, end: 0 } });
  assert.deepEqual(convAxis(14, 5, 2, 'same'), { out: 7, pads: { begin: 1, end: 2 } });
  assert.deepEqual(convAxis(7, 5, 2, 'same'), { out: 4, pads: { begin: 2, end: 2 } });
  assert.deepEqual(convAxis(64, 4, 2, 'same'), { out: 32, pads: { begin: 1, end: 1 } });
});

test('width multiplier scales hidden channels only', () => {
  const spec = buildSpec('seed28', 0.0625);
  const g = layerInfos(spec, 'generator')
    .filter((l) => l.layer.kind === 'convTranspose2d')
    .map((l) => l.output[0]);
  assert.deepEqual(g, [32, 16, 3]);
  assert.deepEqual(parameterList(spec, 'generator')[0], {
    name: 'generator.fc.weight',
    network: 'generator',
    layer: 'fc',
    role: 'weight',
    shape: [1024, 100],
    trainable: true,
  });
});

test('initial weights are deterministic by seed and follow the init rule', () => {
  const spec = buildSpec('dcgan64', 0.125);
  const a = initialWeights(spec, 7);
  const b = initialWeights(spec, 7);
  const c = initialWeights(spec, 8);
  const w = a.get('generator.deconv1.weight')!;
  assert.deepEqual(w.data, b.get('generator.deconv1.weight')!.data);
  assert.notDeepEqual(w.data, c.get('generator.deconv1.weight')!.data);
  const mean = w.data.reduce((s, v) => s + v, 0) / w.data.length;
  const std = Math.sqrt(w.data.reduce((s, v) => s + (v - mean) ** 2, 0) / w.data.length);
  assert.ok(Math.abs(mean) < 0.002 && Math.abs(std - 0.02) < 0.002, `mean ${mean} std ${std}`);
  assert.ok(a.get('generator.bn1.running_var')!.data.every((v) => v === 1));
});

test('ERROR PATH - unknown preset and bad width name the input', () => {
  assert.throws(() => buildSpec('dcgan128'), { name: 'UsageError', message: /Unsupported preset "dcgan128". Should be one of: seed28, dcgan64/ });
  assert.throws(() => buildSpec('seed28', 0), { name: 'UsageError', message: /for width but received 0 of type number/ });
});

test('ERROR PATH - a network with no layers has no output shape: E_SPEC, not a TypeError', () => {
  const spec = buildSpec('seed28', 1);
  const empty = { ...spec, discriminator: [] };
  assert.throws(
    () => outputShape(empty, 'discriminator'),
    (e: Error & { code?: string }) => e.code === 'E_SPEC' && /discriminator has no layers/.test(e.message),
  );
});

test('ERROR PATH - a convolution after a dense layer is a rank error naming the layer', () => {
  const spec = buildSpec('seed28', 1);
  const conv = spec.generator.find((l) => l.kind === 'convTranspose2d');
  assert.ok(conv);
  const bad = { ...spec, generator: [spec.generator[0], conv].filter((l) => l !== undefined) };
  assert.throws(
    () => layerInfos(bad, 'generator'),
    (e: Error & { code?: string }) => e.code === 'E_SPEC' && /generator layer 1 \(convTranspose2d\) expects a rank-3 input but gets \[/.test(e.message),
  );
});
