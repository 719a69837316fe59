import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSpec } from '../../src/config/presets.js';
import { EMA_STATS_CHUNK, emaDecayAt, emaStatsLatents } from '../../src/engines/ema.js';
import type { OptimizerState, TrainingEngine } from '../../src/engines/engine.js';
import { createTfjsEngine, type TfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import { createTorchEngine } from '../../src/engines/torch/torch-engine.js';
import { CelebaGanError } from '../../src/errors.js';
import { initialWeights } from '../../src/model/init.js';
import { layerInfos, parameterList } from '../../src/model/shapes.js';
import type { ArchitectureSpec } from '../../src/model/spec.js';
import type { TensorMap } from '../../src/model/tensors.js';
import { stepLatents } from '../../src/engines/randomness.js';
import { torchSkip } from '../support/torch-addon.js';
import { assertWithin, fakeBatch, maxAbsDiff } from '../support/tensors.js';

/**
 * The EMA generator, on both engines: it never changes the raw weights, it follows the formula
 * of src/engines/ema.ts (recomputed here in plain float32 TypeScript from the raw weights of
 * consecutive steps: an independent reference, not the engines' code), its batch-norm statistics
 * are those of its own weights (a float64 forward written here), it resumes bit for bit, and its
 * tensors cross engines.
 */

// Tiny: the tfjs side runs on the pure-JS CPU backend.
const spec: ArchitectureSpec = buildSpec('seed28', 0.03125);
const N = 4;
const SEED = 11;

function zeroOptimizer(): OptimizerState {
  const tensors: TensorMap = new Map();
  for (const p of [...parameterList(spec, 'generator'), ...parameterList(spec, 'discriminator')].filter((q) => q.trainable)) {
    for (const k of ['m', 'v']) tensors.set(`adam.${k}.${p.name}`, { shape: [...p.shape], data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)) });
  }
  return { tensors, steps: { generator: 0, discriminator: 0 } };
}

async function start(e: TrainingEngine, decay: number): Promise<void> {
  await e.setWeights(initialWeights(spec, 3), zeroOptimizer());
  await e.setEma(decay);
}

async function steps(e: TrainingEngine, from: number, to: number): Promise<void> {
  for (let step = from; step < to; step++) await e.trainStep(fakeBatch(spec, N, step, 'ema-test-batch'), N, { seed: SEED, step });
}

function assertSameMaps(a: TensorMap, b: TensorMap, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: names`);
  for (const [name, t] of a)
    assert.ok(
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(
        Buffer.from(b.get(name)!.data.buffer, b.get(name)!.data.byteOffset, b.get(name)!.data.byteLength),
      ),
      `${what}: ${name} bit-identical`,
    );
}

function generatorOf(w: TensorMap): TensorMap {
  return new Map([...w].filter(([name]) => name.startsWith('generator.')));
}

/** The reference: plain float32 arithmetic, as documented in src/engines/ema.ts (trainable tensors). */
function referenceUpdate(ema: TensorMap, raw: TensorMap, decay: number, t: number): TensorMap {
  const d = Math.min(decay, (1 + t) / (10 + t)); // written out here, not emaDecayAt: an independent reference
  const fd = Math.fround(d);
  const f1 = Math.fround(1 - d);
  const out: TensorMap = new Map();
  for (const p of parameterList(spec, 'generator')) {
    if (!p.trainable) continue;
    const r = raw.get(p.name)!.data;
    const e = ema.get(p.name)!.data;
    const next = new Float32Array(e.length);
    for (let i = 0; i < e.length; i++) next[i] = Math.fround(Math.fround(e[i]! * fd) + Math.fround(r[i]! * f1));
    out.set(p.name, { shape: [...p.shape], data: next });
  }
  return out;
}

function trainableOf(w: TensorMap): TensorMap {
  const trainable = new Set(
    parameterList(spec, 'generator')
      .filter((p) => p.trainable)
      .map((p) => p.name),
  );
  return new Map([...w].filter(([name]) => trainable.has(name)));
}

/**
 * The EMA generator's batch-norm statistics as src/engines/ema.ts defines them, in float64 from
 * its weights (dense, transposed convolutions with the spec's pads, batch norm, leaky ReLU; no
 * dropout): per chunk of emaStatsLatents, each layer's input mean and unbiased variance, averaged
 * over the chunks. Written here from the definitions, not from either engine.
 */
function referenceStatistics(w: TensorMap): Map<string, Float64Array> {
  const z = emaStatsLatents(spec);
  const chunks = z.length / spec.zDim / EMA_STATS_CHUNK;
  const out = new Map<string, Float64Array>();
  const get = (name: string): Float32Array => w.get(`generator.${name}`)!.data;
  for (let k = 0; k < chunks; k++) {
    const n = EMA_STATS_CHUNK;
    let x = new Float64Array(0);
    let shape: number[] = [];
    for (const info of layerInfos(spec, 'generator')) {
      const l = info.layer;
      if (l.kind === 'dense') {
        const W = get(`${l.name}.weight`); // [units, in]
        const inDim = spec.zDim;
        x = new Float64Array(n * l.units);
        for (let i = 0; i < n; i++)
          for (let o = 0; o < l.units; o++) {
            let acc = 0;
            for (let j = 0; j < inDim; j++) acc += z[(k * n + i) * inDim + j]! * W[o * inDim + j]!;
            x[i * l.units + o] = acc;
          }
        shape = [l.units];
      } else if (l.kind === 'reshape') {
        shape = [l.channels, l.height, l.width];
      } else if (l.kind === 'convTranspose2d') {
        const [cin, h, wd] = shape as [number, number, number];
        const W = get(`${l.name}.weight`); // [Cin, Cout, kh, kw]
        const b = get(`${l.name}.bias`);
        const [cout, oh, ow] = info.output as [number, number, number];
        const { h: ph, w: pw } = info.pads!;
        const y = new Float64Array(n * cout * oh * ow);
        for (let i = 0; i < n; i++) for (let co = 0; co < cout; co++) for (let p = 0; p < oh * ow; p++) y[(i * cout + co) * oh * ow + p] = b[co]!;
        for (let i = 0; i < n; i++)
          for (let ci = 0; ci < cin; ci++)
            for (let iy = 0; iy < h; iy++)
              for (let ix = 0; ix < wd; ix++) {
                const v = x[((i * cin + ci) * h + iy) * wd + ix]!;
                for (let co = 0; co < cout; co++)
                  for (let ky = 0; ky < l.kernel; ky++)
                    for (let kx = 0; kx < l.kernel; kx++) {
                      const oy = iy * l.stride + ky - ph.begin;
                      const ox = ix * l.stride + kx - pw.begin;
                      if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                      y[((i * cout + co) * oh + oy) * ow + ox]! += v * W[((ci * cout + co) * l.kernel + ky) * l.kernel + kx]!;
                    }
              }
        x = y;
        shape = [cout, oh, ow];
      } else if (l.kind === 'batchNorm') {
        const [c, h, wd] = shape as [number, number, number];
        const m = n * h * wd;
        const gamma = get(`${l.name}.weight`);
        const beta = get(`${l.name}.bias`);
        const mean = new Float64Array(c);
        const vr = new Float64Array(c);
        for (let ch = 0; ch < c; ch++) {
          let s1 = 0;
          for (let i = 0; i < n; i++) for (let p = 0; p < h * wd; p++) s1 += x[(i * c + ch) * h * wd + p]!;
          mean[ch] = s1 / m;
          let s2 = 0;
          for (let i = 0; i < n; i++) for (let p = 0; p < h * wd; p++) s2 += (x[(i * c + ch) * h * wd + p]! - mean[ch]!) ** 2;
          vr[ch] = s2 / m;
          for (let i = 0; i < n; i++)
            for (let p = 0; p < h * wd; p++) {
              const at = (i * c + ch) * h * wd + p;
              x[at] = ((x[at]! - mean[ch]!) / Math.sqrt(vr[ch]! + l.epsilon)) * gamma[ch]! + beta[ch]!;
            }
        }
        for (const [param, value] of [
          ['running_mean', mean],
          ['running_var', vr.map((v) => (v * m) / (m - 1))],
        ] as const) {
          const key = `generator.${l.name}.${param}`;
          const acc = out.get(key) ?? new Float64Array(c);
          for (let ch = 0; ch < c; ch++) acc[ch]! += value[ch]! / chunks;
          out.set(key, acc);
        }
      } else if (l.kind === 'leakyRelu') {
        x = x.map((v) => (v < 0 ? v * l.alpha : v));
      } else if (l.kind === 'tanh') {
        break;
      }
    }
  }
  return out;
}

const engines: { name: string; skip: string | false; make: () => Promise<TrainingEngine> }[] = [
  { name: 'tfjs', skip: false, make: () => createTfjsEngine(spec, { backend: 'cpu' }) },
  { name: 'torch', skip: torchSkip(), make: () => createTorchEngine(spec, { device: 'cpu', threads: 1 }) },
];

for (const { name, skip, make } of engines) {
  describe(`${name} engine: EMA generator`, { skip }, () => {
    let e: TrainingEngine;
    before(async () => {
      e = await make();
    });
    after(() => e.dispose());

    test('raw weights after 5 steps are bit-identical with --ema 0.999 and with --ema 0', async () => {
      await start(e, 0.999);
      await steps(e, 0, 5);
      const withEma = await e.getWeights();
      const optWith = await e.getOptimizerState();
      assert.ok(await e.getEmaWeights(), 'EMA on');
      await start(e, 0);
      await steps(e, 0, 5);
      assert.equal(await e.getEmaWeights(), null, 'EMA off');
      assertSameMaps(withEma, await e.getWeights(), 'weights');
      assertSameMaps(optWith.tensors, (await e.getOptimizerState()).tensors, 'Adam moments');
    });

    for (const decay of [0.3, 0.999]) {
      test(`decay ${decay}: the EMA equals float32 ema*d + raw*(1-d), d = min(${decay}, (1+t)/(10+t)), from the raw weights of each step`, async () => {
        await start(e, decay);
        let expected = trainableOf(generatorOf(await e.getWeights())); // the EMA starts from the raw weights
        assertSameMaps(generatorOf(await e.getWeights()), (await e.getEmaWeights())!, 'EMA at start (running statistics included)');
        for (let t = 0; t < 5; t++) {
          await steps(e, t, t + 1);
          expected = referenceUpdate(expected, generatorOf(await e.getWeights()), decay, t);
          assertSameMaps(expected, trainableOf((await e.getEmaWeights())!), `EMA after step ${t + 1}`);
        }
        // The EMA really differs from the raw weights (the test could fail).
        const raw = generatorOf(await e.getWeights());
        const w = 'generator.deconv1.weight';
        assert.notDeepEqual(raw.get(w)!.data, expected.get(w)!.data);
      });
    }

    test("batch-norm statistics: the EMA weights' own, from train-mode forwards without dropout on the fixed latents (float64 reference, every layer); not the raw generator's", async () => {
      await start(e, 0.999);
      await steps(e, 0, 4);
      const ema = (await e.getEmaWeights())!;
      const raw = await e.getWeights();
      const expected = referenceStatistics(ema);
      assert.equal(expected.size, 6, 'three batch-norm layers, mean and variance');
      for (const [name, want] of expected) {
        const got = ema.get(name)!.data;
        let worst = { ratio: 0, what: '' };
        for (let i = 0; i < want.length; i++) {
          const ratio = Math.abs(got[i]! - want[i]!) / (1e-4 * Math.max(1, Math.abs(want[i]!)));
          if (ratio > worst.ratio) worst = { ratio, what: `${name}[${i}]: ${got[i]} vs reference ${want[i]}` };
        }
        assertWithin(`${e.info.engine} EMA batch-norm statistics ${name} (of its bound)`, worst.ratio, 1, worst.what);
        assert.notDeepEqual(got, raw.get(name)!.data, `${name} differs from the raw generator's`);
      }
      // Read again (nothing moved): the same numbers; generate('ema') leaves them as they are.
      await e.generate(stepLatents(spec, 2, 0, 3), 3, 'ema');
      assertSameMaps(ema, (await e.getEmaWeights())!, 'statistics read twice');
    });

    test('resume: 3 steps, then setWeights + setEma from what was read back, 3 more == 6 steps, EMA included, bit for bit', async () => {
      await start(e, 0.999);
      await steps(e, 0, 6);
      const straight = await e.getWeights();
      const straightEma = (await e.getEmaWeights())!;
      await start(e, 0.999);
      await steps(e, 0, 3);
      const [w, opt, ema] = [await e.getWeights(), await e.getOptimizerState(), (await e.getEmaWeights())!];
      // Scramble the engine's state so the resume must come from the saved tensors.
      await start(e, 0.5);
      await steps(e, 0, 1);
      await e.setWeights(w, opt);
      await e.setEma(0.999, ema);
      await steps(e, 3, 6);
      assertSameMaps(straight, await e.getWeights(), 'weights');
      assertSameMaps(straightEma, (await e.getEmaWeights())!, 'EMA');
    });

    test("generate(z, n, 'ema') runs the EMA weights: equal to the raw generator loaded with them", async () => {
      await start(e, 0.999);
      await steps(e, 0, 3);
      const z = stepLatents(spec, 5, 0, 6);
      const ema = (await e.getEmaWeights())!;
      const viaEma = await e.generate(z, 6, 'ema');
      const raw = await e.generate(z, 6, 'raw');
      assert.notDeepEqual(viaEma, raw, 'the EMA generator differs from the raw one after 3 steps');
      const w = await e.getWeights();
      for (const [k, t] of ema) w.set(k, t);
      await e.setWeights(w);
      assert.deepEqual(await e.generate(z, 6), viaEma);
    });

    test('BAD CALL - EMA generator while off, a decay outside [0, 1), a missing EMA tensor', async () => {
      await start(e, 0);
      await assert.rejects(e.generate(stepLatents(spec, 1, 0, 2), 2, 'ema'), /EMA generator is off/);
      for (const bad of [1, -0.1, Number.NaN]) {
        await assert.rejects(e.setEma(bad), (err: CelebaGanError) => err.code === 'E_BAD_ARGUMENT' && /\[0, 1\) for ema/.test(err.message));
      }
      const partial = generatorOf(initialWeights(spec, 1));
      partial.delete('generator.deconv1.weight');
      await assert.rejects(
        e.setEma(0.999, partial),
        (err: CelebaGanError) => err.code === 'E_WEIGHTS_MISMATCH' && /generator\.deconv1\.weight is missing/.test(err.message),
      );
    });

    if (name === 'tfjs') {
      test('tfjs: tensor count constant across steps with the EMA on', async () => {
        const t = e as TfjsEngine;
        await start(e, 0.999);
        await steps(e, 0, 1);
        const count = t.numTensors();
        await steps(e, 1, 3);
        assert.equal(t.numTensors(), count);
      });
    }
  });
}

describe('EMA across engines', { skip: torchSkip() }, () => {
  test("torch's EMA tensors load into tfjs: the EMA generators agree (max |diff| <= 1e-4)", async () => {
    const torch = await createTorchEngine(spec, { device: 'cpu', threads: 1 });
    const tfjs = await createTfjsEngine(spec, { backend: 'cpu' });
    try {
      await start(torch, 0.999);
      await steps(torch, 0, 3);
      await tfjs.setWeights(await torch.getWeights(), await torch.getOptimizerState());
      await tfjs.setEma(0.999, (await torch.getEmaWeights())!);
      assertSameMaps((await torch.getEmaWeights())!, (await tfjs.getEmaWeights())!, 'EMA round trip');
      const z = stepLatents(spec, 9, 0, 4);
      const a = await torch.generate(z, 4, 'ema');
      const b = await tfjs.generate(z, 4, 'ema');
      assertWithin('torch~tfjs EMA generator', maxAbsDiff(a, b), 1e-4);
    } finally {
      torch.dispose();
      tfjs.dispose();
    }
  });
});

test('emaDecayAt: warmup 0.1, 2/11, ... up to the decay', () => {
  assert.equal(emaDecayAt(0.999, 0), 0.1);
  assert.equal(emaDecayAt(0.999, 1), 2 / 11);
  assert.equal(emaDecayAt(0.3, 3), 0.3);
  assert.equal(emaDecayAt(0.999, 1e6), 0.999);
});
