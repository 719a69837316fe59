import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSpec } from '../../../src/config/presets.js';
import { createTfjsEngine, type TfjsEngine } from '../../../src/engines/tfjs/tfjs-engine.js';
import type { CelebaGanError } from '../../../src/errors.js';
import { initialWeights } from '../../../src/model/init.js';
import { allParameters, layerInfos } from '../../../src/model/shapes.js';
import type { ArchitectureSpec } from '../../../src/model/spec.js';
import type { TensorMap } from '../../../src/model/tensors.js';
import { stepLatents, stepRandomness } from '../../../src/engines/randomness.js';
import { Rng } from '../../../src/util/rng.js';
import { runTorchReference } from '../../support/torch-reference.js';
import { TORCH, referenceSkip } from '../../support/references.js';
import { fakeBatch, hwcToNchwFloat, layerGradientScales, maxAbs, maxAbsDiff } from '../../support/tensors.js';
import { TEST_ATTRIBUTES, fakeLabels } from '../labels.js';

// Attribute-conditional specs (concatenated labels into G, a projection discriminator), tiny widths.
const K = TEST_ATTRIBUTES.length;
const SPECS: ArchitectureSpec[] = [
  buildSpec('seed28', 0.03125, { attributes: TEST_ATTRIBUTES }),
  buildSpec('dcgan64', 0.03125, { attributes: TEST_ATTRIBUTES }),
];
const unconditional = buildSpec('seed28', 0.03125);

const engines = new Map<string, TfjsEngine>();
before(async () => {
  for (const spec of [...SPECS, unconditional]) {
    const e = await createTfjsEngine(spec, { backend: 'cpu' });
    await e.setWeights(initialWeights(spec, 7));
    engines.set(`${spec.preset}${spec.conditioning ? '+labels' : ''}`, e);
  }
});
after(() => {
  for (const e of engines.values()) e.dispose();
});

/** Initial weights with non-trivial batch-norm running statistics, so inference mode tests them. */
function testWeights(spec: ArchitectureSpec, seed: number): TensorMap {
  const w = initialWeights(spec, seed);
  const rng = new Rng(seed, 'running-stats');
  for (const p of allParameters(spec)) {
    if (p.role === 'runningMean') rng.fillUniform(w.get(p.name)!.data, -0.2, 0.2);
    if (p.role === 'runningVar') rng.fillUniform(w.get(p.name)!.data, 0.5, 1.5);
  }
  return w;
}

for (const spec of SPECS) {
  const key = `${spec.preset}+labels`;
  test(`${spec.preset} conditional: layer shapes match src/model/shapes.ts; the images and logits depend on the labels`, async () => {
    const e = engines.get(key)!;
    const n = 3;
    const y = fakeLabels(n, K, 1, 'cond-test-labels');
    for (const network of ['generator', 'discriminator'] as const) {
      const input = network === 'generator' ? stepLatents(spec, 1, 0, n) : new Float32Array(n * 3 * spec.image.height * spec.image.width);
      const traced = await e.traceLayers(network, input, n, y);
      const expected = layerInfos(spec, network);
      assert.equal(traced.length, expected.length);
      for (const [i, t] of traced.entries()) assert.deepEqual(t.shape, [n, ...expected[i]!.output], `${network} layer ${i} (${expected[i]!.layer.kind})`);
    }
    const z = stepLatents(spec, 1, 0, n);
    const images = await e.generate(z, n, 'raw', y);
    const scale = maxAbs(images);
    assert.ok(scale > 0, 'not all zero');
    assert.deepEqual(await e.generate(z, n, 'raw', y), images, 'deterministic');
    const flipped = y.map((v) => -v);
    assert.ok(maxAbsDiff(await e.generate(z, n, 'raw', flipped), images) > 0.01 * scale, 'other labels, other images from the same z');
    const logits = await e.discriminate(images, n, y);
    assert.equal(logits.length, n);
    // The projection term: D(x, y) - D(x, -y) = 2 sum_k y_k <e_k, h>, nonzero for E != 0.
    assert.ok(maxAbsDiff(await e.discriminate(images, n, flipped), logits) > 0, 'the labels reach the logit');
  });

  test(`${spec.preset} conditional: inference matches PyTorch eager`, { skip: referenceSkip(TORCH) }, async () => {
    const e = engines.get(key)!;
    const n = 3;
    const w = testWeights(spec, 11);
    await e.setWeights(w);
    const z = stepLatents(spec, 3, 0, n);
    const y = fakeLabels(n, K, 3, 'cond-test-labels');
    const images = new Rng(4).fillUniform(new Float32Array(n * 3 * spec.image.height * spec.image.width), -1, 1);
    const ref = runTorchReference(
      spec,
      w,
      new Map([
        ['z', { shape: [n, spec.zDim], data: z }],
        ['images', { shape: [n, 3, spec.image.height, spec.image.width], data: images }],
        ['labels', { shape: [n, K], data: y }],
      ]),
      { mode: 'forward', n },
    );
    assert.ok(maxAbsDiff(await e.generate(z, n, 'raw', y), ref.get('images')!.data) < 1e-5, 'generator');
    assert.ok(maxAbsDiff(await e.discriminate(images, n, y), ref.get('logits')!.data) < 1e-4, 'discriminator');
    await e.setWeights(initialWeights(spec, 7));
  });

  /*
   * One conditional training step against PyTorch, the tolerances of the torch-vs-tfjs step test
   * (test/engines/torch/engine.test.ts): losses |diff| <= 1e-4; gradients through Adam's m to
   * 1e-3 of the layer's gradient scale; updates to 0.5% of lr where |m| >= 1% of that scale,
   * 2 lr elsewhere (Adam's first step is ~lr * sign(grad)); running statistics to 1e-4.
   */
  test(
    `${spec.preset} conditional: one training step matches PyTorch (labels into G and D's projection, Adam on E)`,
    { skip: referenceSkip(TORCH) },
    async () => {
      const { height: H, width: W } = spec.image;
      const n = 4;
      const e = await createTfjsEngine(spec, { backend: 'cpu' });
      try {
        const w0 = testWeights(spec, 21);
        await e.setWeights(w0);
        const batch = fakeBatch(spec, n, 100, 'test-batch');
        const y = fakeLabels(n, K, 100, 'cond-test-labels');
        const r = stepRandomness(spec, 8, 0, n);
        const inputs: TensorMap = new Map([
          ['z0', { shape: [n, spec.zDim], data: r.z }],
          ['real0', { shape: [n, 3, H, W], data: hwcToNchwFloat(batch, n, H, W) }],
          ['y0', { shape: [n, K], data: y }],
        ]);
        r.dropoutD?.forEach((m, i) => inputs.set(`mD0_${i}`, { shape: [m.length], data: m }));
        r.dropoutG?.forEach((m, i) => inputs.set(`mG0_${i}`, { shape: [m.length], data: m }));
        const m = await e.trainStep(batch, n, { seed: 8, step: 0, randomness: r, labels: y });
        const dropouts = layerInfos(spec, 'generator').filter((l) => l.layer.kind === 'dropout').length;
        const ref = runTorchReference(spec, w0, inputs, { mode: 'train', n, steps: 1, masks: dropouts > 0 ? dropouts : null });
        const refMetrics = ref.get('metrics')!.data;
        [m.lossD, m.lossG, m.dReal, m.dFake].forEach((v, i) =>
          assert.ok(Math.abs(v - refMetrics[i]!) <= 1e-4, `metric ${i}: tfjs ${v} torch ${refMetrics[i]}`),
        );
        const weights = await e.getWeights();
        const opt = await e.getOptimizerState();
        assert.ok(opt.tensors.has('adam.m.discriminator.embed.weight'), 'E has Adam moments');
        const lr = spec.training.learningRate;
        const layerScale = layerGradientScales(spec, ref);
        let significant = 0;
        let trainable = 0;
        for (const p of allParameters(spec)) {
          const before = w0.get(p.name)!.data;
          const a = weights.get(p.name)!.data;
          const b = ref.get(p.name)!.data;
          if (!p.trainable) {
            assert.ok(maxAbsDiff(a, b) <= 1e-4, `${p.name}: running statistic max |diff| ${maxAbsDiff(a, b)}`);
            continue;
          }
          const mA = opt.tensors.get(`adam.m.${p.name}`)!.data;
          const mB = ref.get(`adam.m.${p.name}`)!.data;
          const scale = layerScale.get(p.name)!;
          assert.ok(scale > 0, `${p.name}: its layer has a gradient`);
          assert.ok(maxAbsDiff(mA, mB) <= 1e-3 * scale, `${p.name}: gradient (Adam m) max |diff| ${maxAbsDiff(mA, mB)}, layer scale ${scale}`);
          for (let i = 0; i < a.length; i++) {
            const big = Math.abs(mB[i]!) >= 0.01 * scale;
            const diff = Math.abs(a[i]! - before[i]! - (b[i]! - before[i]!));
            if (diff > (big ? 0.005 * lr : 2.01 * lr)) assert.fail(`${p.name}[${i}]: tfjs update ${a[i]! - before[i]!} vs torch ${b[i]! - before[i]!}`);
            if (big) significant++;
            trainable++;
          }
        }
        assert.ok(significant >= 0.8 * trainable, `only ${significant} of ${trainable} updates compared tightly`);
      } finally {
        e.dispose();
      }
    },
  );
}

test('seed28 conditional: a resumed run repeats the uninterrupted one exactly (E and its Adam moments included)', async () => {
  const spec = SPECS[0]!;
  const n = 4;
  const batchAt = (step: number): Uint8Array => fakeBatch(spec, n, step, 'cond-resume-batch');
  const labelsAt = (step: number): Float32Array => fakeLabels(n, K, step, 'cond-resume-labels');
  const make = async (): Promise<TfjsEngine> => {
    const e = await createTfjsEngine(spec, { backend: 'cpu' });
    await e.setWeights(initialWeights(spec, 13));
    return e;
  };
  const [a, b, c] = [await make(), await make(), await make()];
  try {
    const metricsA = [];
    const tensors: number[] = [];
    for (const step of [0, 1, 2]) {
      metricsA.push(await a.trainStep(batchAt(step), n, { seed: 13, step, labels: labelsAt(step) }));
      tensors.push(a.numTensors());
    }
    assert.equal(new Set(tensors).size, 1, `tfjs tensors leak across conditional steps: ${tensors.join(', ')}`);
    for (const step of [0, 1]) await b.trainStep(batchAt(step), n, { seed: 13, step, labels: labelsAt(step) });
    const opt = await b.getOptimizerState();
    assert.ok(maxAbs(opt.tensors.get('adam.v.discriminator.embed.weight')!.data) > 0, 'E was trained');
    await c.setWeights(await b.getWeights(), opt);
    assert.deepEqual(await c.trainStep(batchAt(2), n, { seed: 13, step: 2, labels: labelsAt(2) }), metricsA[2]);
    const [wa, wc] = [await a.getWeights(), await c.getWeights()];
    for (const [name, t] of wa) assert.deepEqual(wc.get(name)!.data, t.data, name);
    const [oa, oc] = [await a.getOptimizerState(), await c.getOptimizerState()];
    for (const [name, t] of oa.tensors) assert.deepEqual(oc.tensors.get(name)!.data, t.data, name);
    // The labels steer the step: other labels, another step.
    const other = await b.trainStep(batchAt(2), n, { seed: 13, step: 2, labels: labelsAt(2).map((v) => -v) });
    assert.notDeepEqual(other, metricsA[2]);
  } finally {
    for (const e of [a, b, c]) e.dispose();
  }
});

test('seed28 conditional: the EMA generator averages the widened first layer and keeps its statistics from labelled latents', async () => {
  const spec = SPECS[0]!;
  const e = await createTfjsEngine(spec, { backend: 'cpu' });
  try {
    await e.setWeights(initialWeights(spec, 3));
    await e.setEma(0.9);
    const n = 4;
    for (const step of [0, 1])
      await e.trainStep(fakeBatch(spec, n, step, 'cond-ema-batch'), n, { seed: 3, step, labels: fakeLabels(n, K, step, 'cond-ema-labels') });
    const ema = (await e.getEmaWeights())!;
    const raw = await e.getWeights();
    assert.deepEqual(ema.get('generator.fc.weight')!.shape, [raw.get('generator.fc.weight')!.shape[0], spec.zDim + K]);
    assert.ok(maxAbsDiff(ema.get('generator.fc.weight')!.data, raw.get('generator.fc.weight')!.data) > 0, 'the EMA lags the raw weights');
    assert.ok(!ema.has('discriminator.embed.weight'), "E is the discriminator's, not averaged");
    const z = stepLatents(spec, 5, 0, 2);
    const y = fakeLabels(2, K, 5, 'cond-ema-labels');
    assert.equal((await e.generate(z, 2, 'ema', y)).length, 2 * 3 * 28 * 28);
  } finally {
    e.dispose();
  }
});

test('ERROR PATH - labels missing for a conditional model, given to an unconditional one, or of the wrong size', async () => {
  const cond = engines.get('seed28+labels')!;
  const plain = engines.get('seed28')!;
  const spec = SPECS[0]!;
  const n = 2;
  const z = stepLatents(spec, 1, 0, n);
  const batch = fakeBatch(spec, n, 1, 'cond-bad-batch');
  const code = (c: string, re: RegExp) => (err: CelebaGanError) => {
    assert.equal(err.code, c);
    assert.match(err.message, re);
    return true;
  };
  await assert.rejects(cond.trainStep(batch, n, { seed: 1, step: 0 }), code('E_NO_LABELS', /conditional on 3 attributes \(Smiling, Eyeglasses, Blond_Hair\)/));
  await assert.rejects(cond.generate(z, n), code('E_NO_LABELS', /generate/));
  await assert.rejects(cond.generate(z, n, 'raw', new Float32Array(n * K + 1)), code('E_BAD_LABELS', /2x3 values/));
  await assert.rejects(
    cond.generate(
      z,
      n,
      'raw',
      Float32Array.from({ length: n * K }, (_, i) => (i === 4 ? NaN : 1)),
    ),
    code('E_BAD_LABELS', /image 1, Eyeglasses\) is NaN/),
  );
  await assert.rejects(plain.trainStep(batch, n, { seed: 1, step: 0, labels: fakeLabels(n, K, 1, 'x') }), code('E_NOT_CONDITIONAL', /unconditional/));
  await assert.rejects(plain.discriminate(new Float32Array(n * 3 * 28 * 28), n, fakeLabels(n, K, 1, 'x')), code('E_NOT_CONDITIONAL', /discriminate/));
});
