import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildSpec } from '../../../src/config/presets.js';
import { createTorchEngine, type TorchEngine } from '../../../src/engines/torch/torch-engine.js';
import { CelebaGanError } from '../../../src/errors.js';
import { initialWeights } from '../../../src/model/init.js';
import type { ArchitectureSpec } from '../../../src/model/spec.js';
import { stepLatents, stepRandomness } from '../../../src/engines/randomness.js';
import { cudaSkip } from '../../support/torch-addon.js';
import { fakeBatch, layerGradientScales, maxAbs, maxAbsDiff } from '../../support/tensors.js';

/**
 * The torch engine on a CUDA device, checked against the same engine on the CPU (the CPU engine
 * is checked against tfjs and PyTorch elsewhere). Runs where the addon's libtorch sees a GPU;
 * mandatory under CELEBA_GAN_REQUIRE_CUDA=1 (npm run check:gpu), skipped with a message elsewhere.
 *
 * Tolerances: cuDNN convolutions run in TF32 by default on Ampere and later GPUs (10-bit
 * mantissa), so outputs agree with the CPU to about 1e-3 relative, not 1e-6; a wrong layer, pad
 * or device copy gives differences of order 1. bfloat16 autocast (--amp) keeps 8 bits: losses to
 * a few percent.
 */

const SPECS: ArchitectureSpec[] = [buildSpec('seed28', 0.0625), buildSpec('dcgan64', 0.03125)];

describe('torch engine on CUDA', { skip: cudaSkip() }, () => {
  const cpu = new Map<string, TorchEngine>();
  const cuda = new Map<string, TorchEngine>();
  before(async () => {
    for (const spec of SPECS) {
      cpu.set(spec.preset, await createTorchEngine(spec, { device: 'cpu', threads: 2 }));
      cuda.set(spec.preset, await createTorchEngine(spec, { device: 'cuda' }));
    }
  });
  after(() => {
    for (const e of [...cpu.values(), ...cuda.values()]) e.dispose();
  });

  for (const spec of SPECS) {
    test(`CUDA: ${spec.preset} generator and discriminator equal the CPU engine's (inference mode)`, async () => {
      const [c, g] = [cpu.get(spec.preset)!, cuda.get(spec.preset)!];
      assert.match(g.info.device, /^cuda:\d+$/);
      assert.match(g.info.backend, /^libtorch \S+ cuda \(float32/);
      const w = initialWeights(spec, 7);
      await c.setWeights(w);
      await g.setWeights(w);
      const n = 5;
      const z = stepLatents(spec, 3, 0, n);
      const [imgC, imgG] = [await c.generate(z, n), await g.generate(z, n)];
      assert.ok(maxAbs(imgC) > 0.01, 'a non-trivial output');
      assert.ok(maxAbsDiff(imgC, imgG) <= 1e-2 * maxAbs(imgC), `generator max |cpu - cuda| ${maxAbsDiff(imgC, imgG)} of ${maxAbs(imgC)}`);
      const [lC, lG] = [await c.discriminate(imgC, n), await g.discriminate(imgC, n)];
      assert.ok(maxAbsDiff(lC, lG) <= 1e-2 * Math.max(1, maxAbs(lC)), `discriminator max |cpu - cuda| ${maxAbsDiff(lC, lG)}`);
    });

    test(`CUDA: ${spec.preset} weights and Adam moments cross the device exactly`, async () => {
      const g = cuda.get(spec.preset)!;
      const c = cpu.get(spec.preset)!;
      await c.setWeights(initialWeights(spec, 9));
      await c.trainStep(fakeBatch(spec, 4, 1, 'cuda-test-batch'), 4, { seed: 1, step: 0 });
      const [w, o] = [await c.getWeights(), await c.getOptimizerState()];
      await g.setWeights(w, o);
      const [w2, o2] = [await g.getWeights(), await g.getOptimizerState()];
      for (const [name, t] of w) assert.deepEqual(w2.get(name)!.data, t.data, name);
      for (const [name, t] of o.tensors) assert.deepEqual(o2.tensors.get(name)!.data, t.data, name);
      assert.deepEqual(o2.steps, o.steps);
    });

    test(`CUDA: ${spec.preset} one training step from the same state and randomness matches the CPU engine`, async () => {
      const [c, g] = [cpu.get(spec.preset)!, cuda.get(spec.preset)!];
      const w = initialWeights(spec, 11);
      await c.setWeights(w);
      await g.setWeights(w);
      const n = 8;
      const batch = fakeBatch(spec, n, 2, 'cuda-test-batch');
      const randomness = stepRandomness(spec, 4, 0, n);
      const mC = await c.trainStep(batch, n, { seed: 4, step: 0, randomness });
      const mG = await g.trainStep(batch, n, { seed: 4, step: 0, randomness });
      for (const k of ['lossD', 'lossG', 'dReal', 'dFake'] as const) {
        assert.ok(Number.isFinite(mG[k]), `${k} finite`);
        assert.ok(Math.abs(mC[k] - mG[k]) <= 1e-2 * Math.max(1, Math.abs(mC[k])), `${k}: cpu ${mC[k]} cuda ${mG[k]}`);
      }
      // Gradients, through Adam's first moment, per tensor.
      const [oC, oG] = [await c.getOptimizerState(), await g.getOptimizerState()];
      // Each to 2% of its layer's gradient scale: a bias before batch norm has a zero gradient in
      // exact arithmetic, so its own largest value is rounding noise (see layerGradientScales).
      const layerScale = layerGradientScales(spec, oC.tensors);
      for (const [param, scale] of layerScale) {
        const [cpu, cuda] = [oC.tensors.get(`adam.m.${param}`)!.data, oG.tensors.get(`adam.m.${param}`)!.data];
        assert.ok(maxAbsDiff(cpu, cuda) <= 2e-2 * scale, `adam.m.${param}: max |cpu - cuda| ${maxAbsDiff(cpu, cuda)}, its layer's gradient scale ${scale}`);
      }
    });
  }

  test('CUDA --amp (bfloat16 autocast): steps run and their losses stay near float32', async () => {
    const spec = SPECS[0]!;
    const amp = await createTorchEngine(spec, { device: 'cuda', amp: true });
    const f32 = await createTorchEngine(spec, { device: 'cuda' });
    try {
      assert.match(amp.info.backend, /bfloat16 autocast/);
      const w = initialWeights(spec, 13);
      await amp.setWeights(w);
      await f32.setWeights(w);
      const n = 16;
      for (const step of [0, 1, 2]) {
        const batch = fakeBatch(spec, n, 10 + step, 'cuda-test-batch');
        const randomness = stepRandomness(spec, 6, step, n);
        const a = await amp.trainStep(batch, n, { seed: 6, step, randomness });
        const f = await f32.trainStep(batch, n, { seed: 6, step, randomness });
        for (const k of ['lossD', 'lossG'] as const) {
          assert.ok(Number.isFinite(a[k]), `step ${step} ${k} finite`);
          assert.ok(Math.abs(a[k] - f[k]) <= 0.05 * Math.abs(f[k]) + 0.01, `step ${step} ${k}: amp ${a[k]} float32 ${f[k]}`);
        }
      }
      // Weights stay float32 (autocast changes the compute, not the stored parameters).
      const back = await amp.getWeights();
      for (const [name, t] of back) assert.ok(t.data instanceof Float32Array && t.data.every(Number.isFinite), name);
    } finally {
      amp.dispose();
      f32.dispose();
    }
  });

  test('CUDA: --device auto picks cuda:0; a device index past the last GPU is E_TORCH_DEVICE', async () => {
    const spec = SPECS[0]!;
    const e = await createTorchEngine(spec, { device: 'auto' });
    try {
      assert.equal(e.info.device, 'cuda:0');
    } finally {
      e.dispose();
    }
    await assert.rejects(createTorchEngine(spec, { device: 'cuda:99' }), (err: unknown) => {
      assert.ok(err instanceof CelebaGanError);
      assert.equal(err.code, 'E_TORCH_DEVICE');
      assert.match(err.message, /Expected a CUDA device index below \d+ for device but received "cuda:99"/);
      return true;
    });
  });
});
