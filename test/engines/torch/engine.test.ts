import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTorchAddon } from '../../../src/bindings/torch.js';
import { buildSpec } from '../../../src/config/presets.js';
import type { OptimizerState, TrainingEngine } from '../../../src/engines/engine.js';
import { createEngine } from '../../../src/engines/create-engine.js';
import { createTfjsEngine, type TfjsEngine } from '../../../src/engines/tfjs/tfjs-engine.js';
import { createTorchEngine, type TorchEngine } from '../../../src/engines/torch/torch-engine.js';
import { CelebaGanError } from '../../../src/errors.js';
import { initialWeights } from '../../../src/model/init.js';
import { allParameters } from '../../../src/model/shapes.js';
import type { ArchitectureSpec } from '../../../src/model/spec.js';
import type { TensorMap } from '../../../src/model/tensors.js';
import { loadCheckpoint, saveCheckpoint } from '../../../src/train/checkpoint.js';
import { stepLatents, stepRandomness } from '../../../src/engines/randomness.js';
import { torchSkip } from '../../support/torch-addon.js';
import { assertWithin, fakeBatch, layerGradientScales, maxAbs, maxAbsDiff, testWeights } from '../../support/tensors.js';

// Tiny widths: the tfjs side runs on the pure-JS CPU backend in CI.
const SPECS: ArchitectureSpec[] = [buildSpec('seed28', 0.0625), buildSpec('dcgan64', 0.03125)];
const skip = torchSkip();

describe('torch engine', { skip }, () => {
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
    test(`${spec.preset}: generator and discriminator outputs equal the tfjs engine's in inference mode (max |diff| <= 1e-4)`, async () => {
      const [t, j] = [torch.get(spec.preset)!, tfjs.get(spec.preset)!];
      const w = testWeights(spec, 7);
      await t.setWeights(w);
      await j.setWeights(w);
      const n = 3;
      const z = stepLatents(spec, 3, 0, n);
      const imgT = await t.generate(z, n);
      const imgJ = await j.generate(z, n);
      assert.equal(imgT.length, n * spec.image.channels * spec.image.height * spec.image.width);
      assert.ok(maxAbs(imgT) > 0.01, 'the generator output is not trivially zero');
      assertWithin(`torch~tfjs ${spec.preset} generator`, maxAbsDiff(imgT, imgJ), 1e-4);
      const logitsT = await t.discriminate(imgJ, n);
      const logitsJ = await j.discriminate(imgJ, n);
      assert.equal(logitsT.length, n);
      assertWithin(`torch~tfjs ${spec.preset} discriminator`, maxAbsDiff(logitsT, logitsJ), 1e-4);
    });

    /*
     * Tolerance of one training step. Losses and D(x) are float32 reductions whose order differs
     * between engines: |diff| <= 1e-4. Gradients are compared through Adam's first moment
     * (m = (1 - beta1) * grad after one step), per tensor, to 1e-3 of the gradient scale of the
     * tensor's layer (the largest |m| over the layer's weight and bias). Not the tensor's own
     * largest |m|: a bias followed by batch norm has an exactly zero gradient in exact arithmetic,
     * so both engines compute rounding noise there, and that noise depends on the CPU's BLAS
     * kernels (AVX2 vs AVX-512, OPENBLAS_CORETYPE); it is small next to the layer's weight
     * gradient, which sets the scale rounding happens at. The weight update itself is
     * lr * m / (sqrt(v) + eps) ~ lr * sign(grad) on the first step, so an element whose gradient
     * is ~0 may move by +lr in one engine and -lr in the other: updates are compared to 0.5% of
     * lr where |m| >= 1% of the layer's scale; elsewhere each engine's step is only held to Adam's
     * bound for a first step, |update| <= lr (a property, not a parity: its size is set by
     * rounding noise). Batch-norm running statistics (no division) to 1e-4.
     */
    test(`${spec.preset}: one training step from the same weights, batch and randomness matches tfjs`, async () => {
      const [t, j] = [torch.get(spec.preset)!, tfjs.get(spec.preset)!];
      const w = testWeights(spec, 9);
      await t.setWeights(w);
      await j.setWeights(w);
      const n = 4;
      const batch = fakeBatch(spec, n, 1, 'torch-test-batch');
      const randomness = stepRandomness(spec, 21, 0, n);
      const mT = await t.trainStep(batch, n, { seed: 21, step: 0, randomness });
      const mJ = await j.trainStep(batch, n, { seed: 21, step: 0, randomness });
      for (const k of ['lossD', 'lossG', 'dReal', 'dFake'] as const) {
        assert.ok(Number.isFinite(mT[k]), `${k} finite`);
        assertWithin(`torch~tfjs ${spec.preset} step ${k}`, Math.abs(mT[k] - mJ[k]), 1e-4, `${k}: torch ${mT[k]} tfjs ${mJ[k]}`);
      }
      const [wT, wJ] = [await t.getWeights(), await j.getWeights()];
      const [oT, oJ] = [await t.getOptimizerState(), await j.getOptimizerState()];
      assert.deepEqual(oT.steps, { generator: 1, discriminator: 1 });
      assert.deepEqual(oJ.steps, oT.steps);
      const lr = spec.training.learningRate;
      const layerScale = layerGradientScales(spec, oJ.tensors);
      let moved = 0;
      let significantCount = 0;
      let trainableCount = 0;
      for (const p of allParameters(spec)) {
        const before = w.get(p.name)!.data;
        const a = wT.get(p.name)!.data;
        const b = wJ.get(p.name)!.data;
        if (!p.trainable) {
          assertWithin(`torch~tfjs ${spec.preset} running statistic ${p.name}`, maxAbsDiff(a, b), 1e-4);
          continue;
        }
        const mA = oT.tensors.get(`adam.m.${p.name}`)!.data;
        const mB = oJ.tensors.get(`adam.m.${p.name}`)!.data;
        const scale = layerScale.get(p.name)!;
        assertWithin(
          `torch~tfjs ${spec.preset} Adam m ${p.name}`,
          maxAbsDiff(mA, mB),
          1e-3 * scale,
          `${p.name}: gradient (Adam m) max |diff| ${maxAbsDiff(mA, mB)}, its layer's gradient scale ${scale}`,
        );
        // Where the gradient is real: the update furthest from tfjs's.
        let worst = { diff: 0, what: `${p.name}: no element with |m| >= 1% of its layer's scale` };
        for (let i = 0; i < a.length; i++) {
          const [stepT, stepJ] = [a[i]! - before[i]!, b[i]! - before[i]!];
          if (Math.abs(mB[i]!) >= 0.01 * scale) {
            significantCount++;
            const diff = Math.abs(stepT - stepJ);
            if (diff > worst.diff) worst = { diff, what: `${p.name}[${i}]: torch update ${stepT} vs tfjs ${stepJ}` };
          } else if (Math.max(Math.abs(stepT), Math.abs(stepJ)) > 1.001 * lr) {
            assert.fail(`${p.name}[${i}]: a first Adam step larger than lr ${lr}: torch ${stepT}, tfjs ${stepJ}`);
          }
          if (a[i] !== before[i]) moved++;
          trainableCount++;
        }
        assertWithin(`torch~tfjs ${spec.preset} update ${p.name}`, worst.diff, 0.005 * lr, worst.what);
      }
      assert.ok(moved > 0, 'the step changed the weights');
      // The tight comparison must cover most of the weights for the test to mean something.
      assert.ok(significantCount >= 0.8 * trainableCount, `only ${significantCount} of ${trainableCount} updates compared tightly`);
    });

    test(`${spec.preset}: checkpoints cross engines exactly (2 steps torch -> 1 step tfjs -> 1 step torch): weights and Adam moments bit for bit`, async () => {
      const run = mkdtempSync(join(tmpdir(), 'cgt-torch-run-'));
      const n = 4;
      const batch = fakeBatch(spec, n, 2, 'torch-test-batch');
      type State = { weights: TensorMap; optimizer: OptimizerState };
      const state = async (e: TrainingEngine): Promise<State> => ({ weights: await e.getWeights(), optimizer: await e.getOptimizerState() });
      const save = (e: TrainingEngine, step: number, s: State): void => {
        saveCheckpoint(run, {
          spec,
          step,
          stepsPerEpoch: 100,
          batchSize: n,
          seed: 5,
          dataChecksum: 'test',
          engine: e.info.engine,
          backend: e.info.backend,
          ...s,
        });
      };
      // The checkpoint format is float32 safetensors: what one engine saved, the other holds
      // after loading, bit for bit (weights, running statistics, both Adam moments, step counts).
      const assertSameState = (got: State, want: State, what: string): void => {
        assert.deepEqual([...got.weights.keys()].sort(), [...want.weights.keys()].sort(), `${what}: weight names`);
        for (const [name, t] of want.weights) assert.deepEqual(got.weights.get(name)!.data, t.data, `${what}: ${name}`);
        assert.deepEqual([...got.optimizer.tensors.keys()].sort(), [...want.optimizer.tensors.keys()].sort(), `${what}: Adam tensor names`);
        for (const [name, t] of want.optimizer.tensors) assert.deepEqual(got.optimizer.tensors.get(name)!.data, t.data, `${what}: ${name}`);
        assert.deepEqual(got.optimizer.steps, want.optimizer.steps, `${what}: Adam steps`);
      };
      const resume = async (e: TrainingEngine, step: number): Promise<void> => {
        const ck = await loadCheckpoint(run, 'latest');
        assert.equal(ck.manifest.step, step);
        await e.setWeights(ck.weights, ck.optimizer);
      };
      try {
        const t = torch.get(spec.preset)!;
        const j = tfjs.get(spec.preset)!;
        await t.setWeights(initialWeights(spec, 5), {
          tensors: new Map([...(await t.getOptimizerState()).tensors].map(([k, v]) => [k, { shape: v.shape, data: new Float32Array(v.data.length) }])),
          steps: { generator: 0, discriminator: 0 },
        });
        for (const step of [0, 1]) await t.trainStep(batch, n, { seed: 5, step });
        const afterTorch = await state(t);
        for (const [name, t] of afterTorch.optimizer.tensors) if (name.endsWith('.weight')) assert.ok(maxAbs(t.data) > 0, `${name} is non-trivial`);
        save(t, 2, afterTorch);

        await resume(j, 2);
        assertSameState(await state(j), afterTorch, 'torch -> tfjs');
        // The next step from that state, with the same randomness, agrees with torch's own.
        const randomness = stepRandomness(spec, 5, 2, n);
        const mJ = await j.trainStep(batch, n, { seed: 5, step: 2, randomness });
        const afterTfjs = await state(j);
        assert.deepEqual(afterTfjs.optimizer.steps, { generator: 3, discriminator: 3 });
        save(j, 3, afterTfjs);

        const t2 = await createTorchEngine(spec, { device: 'cpu', threads: 1 });
        try {
          await resume(t2, 3);
          assertSameState(await state(t2), afterTfjs, 'tfjs -> torch');
          // torch from the torch checkpoint at step 2 takes the same step as tfjs did: same losses.
          const t3 = await createTorchEngine(spec, { device: 'cpu', threads: 1 });
          try {
            await t3.setWeights(afterTorch.weights, afterTorch.optimizer);
            const mT = await t3.trainStep(batch, n, { seed: 5, step: 2, randomness });
            for (const k of ['lossD', 'lossG', 'dReal', 'dFake'] as const)
              assertWithin(`torch~tfjs ${spec.preset} resumed step ${k}`, Math.abs(mT[k] - mJ[k]), 1e-4, `${k}: torch ${mT[k]} tfjs ${mJ[k]}`);
          } finally {
            t3.dispose();
          }
          await t2.trainStep(batch, n, { seed: 5, step: 3 });
          assert.deepEqual((await t2.getOptimizerState()).steps, { generator: 4, discriminator: 4 });
        } finally {
          t2.dispose();
        }
      } finally {
        rmSync(run, { recursive: true, force: true });
      }
    });
  }

  test('seed28: a resumed run repeats the uninterrupted one exactly (randomness from (seed, step))', async () => {
    const spec = SPECS[0]!;
    const n = 4;
    const batch = fakeBatch(spec, n, 3, 'torch-test-batch');
    const make = (): Promise<TorchEngine> => createTorchEngine(spec, { device: 'cpu', threads: 1 });
    const [a, b, c] = [await make(), await make(), await make()];
    try {
      for (const e of [a, b]) await e.setWeights(initialWeights(spec, 13));
      const metricsA = [];
      for (const step of [0, 1, 2]) metricsA.push(await a.trainStep(batch, n, { seed: 13, step }));
      for (const step of [0, 1]) await b.trainStep(batch, n, { seed: 13, step });
      await c.setWeights(await b.getWeights(), await b.getOptimizerState());
      const m2 = await c.trainStep(batch, n, { seed: 13, step: 2 });
      assert.deepEqual(m2, metricsA[2]);
      const [wa, wc] = [await a.getWeights(), await c.getWeights()];
      for (const [name, t] of wa) assert.deepEqual(wc.get(name)!.data, t.data, name);
      // A different step draws different randomness.
      const other = await b.trainStep(batch, n, { seed: 13, step: 7 });
      assert.notDeepEqual(other, metricsA[2]);
    } finally {
      for (const e of [a, b, c]) e.dispose();
    }
  });

  test('channels-last and the aten transposed convolution give the same results; weights round-trip exactly', async () => {
    const spec = SPECS[0]!;
    const w = testWeights(spec, 17);
    const n = 4;
    const batch = fakeBatch(spec, n, 5, 'torch-test-batch');
    const randomness = stepRandomness(spec, 3, 0, n);
    // A fresh engine (the shared ones carry Adam state from earlier tests).
    const base = await createTorchEngine(spec, { device: 'cpu', threads: 1 });
    await base.setWeights(w);
    const z = stepLatents(spec, 3, 1, n);
    const ref = await base.generate(z, n);
    const refStep = await base.trainStep(batch, n, { seed: 3, step: 0, randomness });
    base.dispose();
    for (const opts of [{ channelsLast: true }, { convTranspose: 'aten' as const }]) {
      const e = await createTorchEngine(spec, { device: 'cpu', threads: 1, ...opts });
      try {
        await e.setWeights(w);
        const back = await e.getWeights();
        for (const [name, t] of w) assert.deepEqual(back.get(name)!.data, t.data, `${JSON.stringify(opts)} ${name}`);
        assertWithin(`torch ${JSON.stringify(opts)} generator`, maxAbsDiff(await e.generate(z, n), ref), 1e-4);
        const m = await e.trainStep(batch, n, { seed: 3, step: 0, randomness });
        for (const k of ['lossD', 'lossG', 'dReal', 'dFake'] as const) {
          assertWithin(`torch ${JSON.stringify(opts)} step ${k}`, Math.abs(m[k] - refStep[k]), 1e-4, `${JSON.stringify(opts)} ${k}: ${m[k]} vs ${refStep[k]}`);
        }
      } finally {
        e.dispose();
      }
    }
  });

  test('a training step runs off the JavaScript thread: the event loop keeps turning while it runs', async () => {
    const spec = buildSpec('seed28', 0.25);
    const e = await createTorchEngine(spec, { device: 'cpu', threads: 1 });
    try {
      let done = false;
      let turns = 0;
      const spin = (): void => {
        if (done) return;
        turns++;
        setImmediate(spin);
      };
      const step = e.trainStep(fakeBatch(spec, 16, 4, 'torch-test-batch'), 16, { seed: 1, step: 0 }).finally(() => (done = true));
      setImmediate(spin);
      const m = await step;
      assert.ok(Number.isFinite(m.lossD));
      assert.ok(turns > 0, 'no event-loop turn happened during the step');
      e.dispose();
      await assert.rejects(e.generate(new Float32Array(spec.zDim), 1), /torch engine used after dispose\(\)/);
    } finally {
      e.dispose();
    }
  });

  test('createEngine: --engine torch and auto give the torch engine when the addon loads', async () => {
    const spec = SPECS[0]!;
    for (const engine of ['torch', 'auto'] as const) {
      const e = await createEngine(spec, { engine, device: 'cpu', threads: 1 });
      try {
        assert.equal(e.info.engine, 'torch');
        assert.equal(e.info.device, 'cpu');
        assert.match(e.info.backend, /^libtorch \d+\.\d+\.\d+ cpu \(1 thread, BLAS \w+/);
      } finally {
        e.dispose();
      }
    }
  });

  describe('ERROR PATH', () => {
    const spec = SPECS[0]!;
    const rejectsWith = async (p: Promise<unknown>, code: string, message: RegExp): Promise<void> => {
      await assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof CelebaGanError, String(err));
        assert.equal(err.code, code);
        assert.match(err.message, message);
        return true;
      });
    };

    test('ERROR PATH - --device cuda on a libtorch without CUDA', async (t) => {
      if (loadTorchAddon().systemInfo().cuda) return t.skip('this libtorch has CUDA');
      await assert.rejects(createTorchEngine(spec, { device: 'cuda' }), (err: unknown) => {
        assert.ok(err instanceof CelebaGanError);
        assert.equal(err.code, 'E_TORCH_DEVICE');
        assert.equal(err.kind, 'usage');
        assert.match(err.message, /--device cuda needs a libtorch built with CUDA/);
        assert.match(err.hint ?? '', /LIBTORCH=.* npm run build:native/);
        return true;
      });
    });

    test('ERROR PATH - unknown device, backend, --amp on the CPU, bad threads', async () => {
      await rejectsWith(
        createTorchEngine(spec, { device: 'gpu' }),
        'E_BAD_ARGUMENT',
        /^Unsupported device "gpu" for the torch engine\. Should be one of: auto, cpu, cuda, cuda:N$/,
      );
      await rejectsWith(createTorchEngine(spec, { backend: 'tfjs-node' }), 'E_BAD_ARGUMENT', /^Unsupported backend "tfjs-node" for the torch engine/);
      await rejectsWith(createTorchEngine(spec, { device: 'cpu', amp: true }), 'E_BAD_ARGUMENT', /--amp\) needs --device cuda/);
      await rejectsWith(
        createTorchEngine(spec, { device: 'cpu', threads: 0 }),
        'E_BAD_ARGUMENT',
        /^Expected integer between 1 and 1024 for threads but received 0 of type number$/,
      );
    });

    test('ERROR PATH - weights of another width, a batch of one image', async () => {
      const e = torch.get('seed28')!;
      await rejectsWith(
        e.setWeights(initialWeights(buildSpec('seed28', 0.125), 1)),
        'E_WEIGHTS_MISMATCH',
        /generator\.fc\.weight has shape \[\d+, 100\], expected \[\d+, 100\]/,
      );
      const missing = initialWeights(spec, 1);
      missing.delete('discriminator.fc.bias');
      await rejectsWith(e.setWeights(missing), 'E_WEIGHTS_MISMATCH', /discriminator\.fc\.bias is missing/);
      await rejectsWith(e.trainStep(fakeBatch(spec, 1, 1, 'torch-test-batch'), 1, { seed: 1, step: 0 }), 'E_BAD_ARGUMENT', /at least 2 images/);
    });
  });
});
