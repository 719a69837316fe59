import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSpec } from '../../../src/config/presets.js';
import type { OptimizerState, TrainingEngine } from '../../../src/engines/engine.js';
import { createTfjsEngine, type TfjsEngine } from '../../../src/engines/tfjs/tfjs-engine.js';
import { createTorchEngine, type TorchEngine } from '../../../src/engines/torch/torch-engine.js';
import type { CelebaGanError } from '../../../src/errors.js';
import { initialWeights } from '../../../src/model/init.js';
import { allParameters } from '../../../src/model/shapes.js';
import type { ArchitectureSpec } from '../../../src/model/spec.js';
import { loadCheckpoint, saveCheckpoint } from '../../../src/train/checkpoint.js';
import { stepLatents, stepRandomness } from '../../../src/engines/randomness.js';
import { Rng } from '../../../src/util/rng.js';
import { torchSkip } from '../../support/torch-addon.js';
import { fakeBatch, layerGradientScales, maxAbs, maxAbsDiff, testWeights } from '../../support/tensors.js';
import { TEST_ATTRIBUTES, fakeLabels } from '../labels.js';

// Attribute-conditional specs in the native engine against the tfjs engine (itself checked
// against PyTorch in test/engines/tfjs/conditional.test.ts). Tiny widths.
const K = TEST_ATTRIBUTES.length;
const SPECS: ArchitectureSpec[] = [
  buildSpec('seed28', 0.0625, { attributes: TEST_ATTRIBUTES, frequencies: [0.5, 0.1, 0.2] }),
  buildSpec('dcgan64', 0.03125, { attributes: TEST_ATTRIBUTES }),
];
const skip = torchSkip();

describe('torch engine, conditional specs', { skip }, () => {
  const tfjs = new Map<string, TfjsEngine>();
  const torch = new Map<string, TorchEngine>();
  before(async () => {
    for (const spec of SPECS) {
      tfjs.set(spec.preset, await createTfjsEngine(spec, { backend: 'cpu' }));
      torch.set(spec.preset, await createTorchEngine(spec, { device: 'cpu', threads: 1 }));
    }
  });
  after(() => {
    for (const e of [...tfjs.values(), ...torch.values()]) e.dispose();
  });

  for (const spec of SPECS) {
    test(`${spec.preset}: generator and discriminator with labels equal the tfjs engine's in inference mode (max |diff| <= 1e-4)`, async () => {
      const [t, j] = [torch.get(spec.preset)!, tfjs.get(spec.preset)!];
      const w = testWeights(spec, 7);
      await t.setWeights(w);
      await j.setWeights(w);
      const n = 3;
      const z = stepLatents(spec, 3, 0, n);
      const y = fakeLabels(n, K, 3, 'torch-cond-labels');
      const imgT = await t.generate(z, n, 'raw', y);
      assert.ok(maxAbs(imgT) > 0.01, 'the generator output is not trivially zero');
      assert.ok(maxAbsDiff(imgT, await j.generate(z, n, 'raw', y)) <= 1e-4, 'generator');
      const logitsT = await t.discriminate(imgT, n, y);
      assert.ok(maxAbsDiff(logitsT, await j.discriminate(imgT, n, y)) <= 1e-4, 'discriminator');
      // The labels act. (Checked on the initial weights: the random running statistics above
      // swamp a tiny-width dcgan64's activations, so its images barely depend on z or y.)
      await t.setWeights(initialWeights(spec, 7));
      const plainT = await t.generate(z, n, 'raw', y);
      const flippedDiff = maxAbsDiff(
        await t.generate(
          z,
          n,
          'raw',
          y.map((v) => -v),
        ),
        plainT,
      );
      assert.ok(flippedDiff > 0.05 * maxAbs(plainT), `the labels reach the images (flipped: max |diff| ${flippedDiff} of ${maxAbs(plainT)})`);
      assert.ok(
        maxAbsDiff(
          await t.discriminate(
            imgT,
            n,
            y.map((v) => -v),
          ),
          await t.discriminate(imgT, n, y),
        ) > 0,
        'the labels reach the logit',
      );
    });

    // Tolerances of test/engines/torch/engine.test.ts's step test (the comment there says why).
    test(`${spec.preset}: one conditional training step from the same weights, batch, labels and randomness matches tfjs`, async () => {
      const [t, j] = [torch.get(spec.preset)!, tfjs.get(spec.preset)!];
      const w = testWeights(spec, 9);
      await t.setWeights(w);
      await j.setWeights(w);
      const n = 4;
      const batch = fakeBatch(spec, n, 1, 'torch-test-batch');
      const labels = fakeLabels(n, K, 1, 'torch-cond-labels');
      const randomness = stepRandomness(spec, 21, 0, n);
      const mT = await t.trainStep(batch, n, { seed: 21, step: 0, randomness, labels });
      const mJ = await j.trainStep(batch, n, { seed: 21, step: 0, randomness, labels });
      for (const k of ['lossD', 'lossG', 'dReal', 'dFake'] as const) assert.ok(Math.abs(mT[k] - mJ[k]) <= 1e-4, `${k}: torch ${mT[k]} tfjs ${mJ[k]}`);
      const [wT, wJ] = [await t.getWeights(), await j.getWeights()];
      const [oT, oJ] = [await t.getOptimizerState(), await j.getOptimizerState()];
      const lr = spec.training.learningRate;
      const layerScale = layerGradientScales(spec, oJ.tensors);
      let significant = 0;
      let trainable = 0;
      for (const p of allParameters(spec)) {
        const before = w.get(p.name)!.data;
        const a = wT.get(p.name)!.data;
        const b = wJ.get(p.name)!.data;
        if (!p.trainable) {
          assert.ok(maxAbsDiff(a, b) <= 1e-4, `${p.name}: running statistic max |diff| ${maxAbsDiff(a, b)}`);
          continue;
        }
        const mA = oT.tensors.get(`adam.m.${p.name}`)!.data;
        const mB = oJ.tensors.get(`adam.m.${p.name}`)!.data;
        const scale = layerScale.get(p.name)!;
        assert.ok(maxAbsDiff(mA, mB) <= 1e-3 * scale, `${p.name}: gradient (Adam m) max |diff| ${maxAbsDiff(mA, mB)}, layer scale ${scale}`);
        for (let i = 0; i < a.length; i++) {
          const big = Math.abs(mB[i]!) >= 0.01 * scale;
          const diff = Math.abs(a[i]! - before[i]! - (b[i]! - before[i]!));
          if (diff > (big ? 0.005 * lr : 2.01 * lr)) assert.fail(`${p.name}[${i}]: torch update ${a[i]! - before[i]!} vs tfjs ${b[i]! - before[i]!}`);
          if (big) significant++;
          trainable++;
        }
      }
      assert.ok(maxAbs(oT.tensors.get('adam.m.discriminator.embed.weight')!.data) > 0, 'E got a gradient');
      assert.ok(significant >= 0.8 * trainable, `only ${significant} of ${trainable} updates compared tightly`);
    });
  }

  test('dcgan64: channels-last memory gives the same conditional logits (the projection flattens in C,H,W order)', async () => {
    const spec = SPECS[1]!;
    const w = testWeights(spec, 4);
    const last = await createTorchEngine(spec, { device: 'cpu', threads: 1, channelsLast: true });
    try {
      const t = torch.get(spec.preset)!;
      await t.setWeights(w);
      await last.setWeights(w);
      const n = 3;
      const images = new Rng(8).fillUniform(new Float32Array(n * 3 * 64 * 64), -1, 1);
      const y = fakeLabels(n, K, 8, 'torch-cond-labels');
      const d = maxAbsDiff(await last.discriminate(images, n, y), await t.discriminate(images, n, y));
      assert.ok(d <= 1e-4, `channels-last max |diff| ${d}`);
    } finally {
      last.dispose();
    }
  });

  test('seed28: a resumed conditional run repeats the uninterrupted one exactly, through a checkpoint (E and its Adam moments included), and crosses to tfjs bit for bit', async () => {
    const spec = SPECS[0]!;
    const n = 4;
    const batchAt = (step: number): Uint8Array => fakeBatch(spec, n, step, 'torch-cond-resume');
    const labelsAt = (step: number): Float32Array => fakeLabels(n, K, step, 'torch-cond-resume');
    const run = mkdtempSync(join(tmpdir(), 'cgt-torch-cond-'));
    const make = async (): Promise<TorchEngine> => {
      const e = await createTorchEngine(spec, { device: 'cpu', threads: 1 });
      await e.setWeights(initialWeights(spec, 13));
      return e;
    };
    const [a, b, c] = [await make(), await make(), await make()];
    try {
      const metricsA = [];
      for (const step of [0, 1, 2]) metricsA.push(await a.trainStep(batchAt(step), n, { seed: 13, step, labels: labelsAt(step) }));
      for (const step of [0, 1]) await b.trainStep(batchAt(step), n, { seed: 13, step, labels: labelsAt(step) });
      const saved = { weights: await b.getWeights(), optimizer: await b.getOptimizerState() };
      assert.ok(saved.weights.has('discriminator.embed.weight') && saved.optimizer.tensors.has('adam.v.discriminator.embed.weight'));
      saveCheckpoint(run, {
        spec,
        step: 2,
        stepsPerEpoch: 100,
        batchSize: n,
        seed: 13,
        dataChecksum: 'test',
        engine: 'torch',
        backend: b.info.backend,
        ...saved,
      });
      const ck = await loadCheckpoint(run, 'latest');
      assert.deepEqual(ck.manifest.spec.conditioning, spec.conditioning, 'the checkpoint records the attributes');
      await c.setWeights(ck.weights, ck.optimizer);
      assert.deepEqual(await c.trainStep(batchAt(2), n, { seed: 13, step: 2, labels: labelsAt(2) }), metricsA[2]);
      const [wa, wc] = [await a.getWeights(), await c.getWeights()];
      for (const [name, t] of wa) assert.deepEqual(wc.get(name)!.data, t.data, name);
      const [oa, oc]: [OptimizerState, OptimizerState] = [await a.getOptimizerState(), await c.getOptimizerState()];
      for (const [name, t] of oa.tensors) assert.deepEqual(oc.tensors.get(name)!.data, t.data, name);
      // The same checkpoint in tfjs holds the very same numbers.
      const j: TrainingEngine = tfjs.get('seed28')!;
      await j.setWeights(ck.weights, ck.optimizer);
      const wj = await j.getWeights();
      for (const [name, t] of saved.weights) assert.deepEqual(wj.get(name)!.data, t.data, `tfjs ${name}`);
    } finally {
      for (const e of [a, b, c]) e.dispose();
      rmSync(run, { recursive: true, force: true });
    }
  });

  test("seed28: the EMA generator with labels (statistics from labelled latents) equals the tfjs engine's", async () => {
    const spec = SPECS[0]!;
    // Fresh engines: the same weights AND Adam state (zero) in both.
    const t = await createTorchEngine(spec, { device: 'cpu', threads: 1 });
    const j = await createTfjsEngine(spec, { backend: 'cpu' });
    try {
      const n = 4;
      for (const e of [t, j] as TrainingEngine[]) {
        await e.setWeights(initialWeights(spec, 5));
        await e.setEma(0.9);
        for (const step of [0, 1]) {
          await e.trainStep(fakeBatch(spec, n, step, 'torch-cond-ema'), n, {
            seed: 2,
            step,
            randomness: stepRandomness(spec, 2, step, n),
            labels: fakeLabels(n, K, step, 'torch-cond-ema'),
          });
        }
      }
      const z = stepLatents(spec, 9, 0, n);
      const y = fakeLabels(n, K, 9, 'torch-cond-ema');
      const [eT, eJ] = [await t.generate(z, n, 'ema', y), await j.generate(z, n, 'ema', y)];
      assert.ok(maxAbsDiff(eT, eJ) <= 1e-4, `EMA generator max |diff| ${maxAbsDiff(eT, eJ)}`);
      assert.ok(maxAbsDiff(eT, await t.generate(z, n, 'raw', y)) > 1e-4, 'the EMA generator is not the raw one');
    } finally {
      t.dispose();
      j.dispose();
    }
  });

  test('ERROR PATH - the native engine refuses missing labels and labels for an unconditional model', async () => {
    const spec = SPECS[0]!;
    const t = torch.get(spec.preset)!;
    const n = 2;
    await assert.rejects(t.trainStep(fakeBatch(spec, n, 1, 'x'), n, { seed: 1, step: 0 }), (err: CelebaGanError) => err.code === 'E_NO_LABELS');
    await assert.rejects(t.generate(stepLatents(spec, 1, 0, n), n), (err: CelebaGanError) => err.code === 'E_NO_LABELS');
    const plainSpec = buildSpec('seed28', 0.0625);
    const plain = await createTorchEngine(plainSpec, { device: 'cpu', threads: 1 });
    try {
      await assert.rejects(
        plain.generate(stepLatents(plainSpec, 1, 0, n), n, 'raw', fakeLabels(n, K, 1, 'x')),
        (err: CelebaGanError) => err.code === 'E_NOT_CONDITIONAL',
      );
    } finally {
      plain.dispose();
    }
  });
});
