import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSpec } from '../../src/config/presets.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { EMA_PREFIX } from '../../src/engines/ema.js';
import type { TrainingEngine } from '../../src/engines/engine.js';
import { createTfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import { createTorchEngine } from '../../src/engines/torch/torch-engine.js';
import { CelebaGanError } from '../../src/errors.js';
import type { TensorMap } from '../../src/model/tensors.js';
import { META } from '../../src/onnx/metadata.js';
import { decodeModel } from '../../src/onnx/onnx-proto.js';
import { sampleLatents } from '../../src/engines/randomness.js';
import { exportRun, listCheckpoints, loadCheckpoint, train, type TrainConfig, type TrainStart } from '../../src/train/index.js';
import { torchSkip } from '../support/torch-addon.js';
import { maxAbsDiff, runOnnx } from '../support/onnx.js';
import { assertWithin } from '../support/tensors.js';

/**
 * The EMA generator through the training loop, checkpoints and export: exact resume with the
 * EMA included (each engine), an old checkpoint without EMA, cross-engine resume, sample grids
 * of both generators, and `export --weights ema|raw`.
 */

// Tiny: width 1/32, batch 4, 22 synthetic images -> 5 steps per epoch.
const spec = buildSpec('seed28', 0.03125);
let root: string;
let data: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cg-train-ema-'));
  data = join(root, 'synthetic-28.cgds');
  await prepareSynthetic({ count: 22, out: data, size: 28, seed: 1 });
});
after(() => rmSync(root, { recursive: true, force: true }));

function cfg(out: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    spec,
    dataPath: data,
    outDir: join(root, out),
    seed: 3,
    batchSize: 4,
    sampleEvery: 0,
    checkpointEvery: 0,
    keep: 5,
    logEvery: 1,
    plotEvery: 0,
    ...extra,
  };
}

function emaTensors(w: TensorMap): TensorMap {
  return new Map([...w].filter(([k]) => k.startsWith(EMA_PREFIX)));
}

function assertBitIdentical(a: TensorMap, b: TensorMap, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: names`);
  for (const [k, t] of a)
    assert.ok(
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(
        Buffer.from(b.get(k)!.data.buffer, b.get(k)!.data.byteOffset, b.get(k)!.data.byteLength),
      ),
      `${what}: ${k}`,
    );
}

const engines: { name: string; skip: string | false; make: () => Promise<TrainingEngine> }[] = [
  { name: 'tfjs', skip: false, make: () => createTfjsEngine(spec, { backend: 'cpu' }) },
  { name: 'torch', skip: torchSkip(), make: () => createTorchEngine(spec, { device: 'cpu', threads: 1 }) },
];

for (const { name, skip, make } of engines) {
  describe(`${name}: EMA through train()`, { skip }, () => {
    let engine: TrainingEngine;
    before(async () => {
      engine = await make();
    });
    after(() => engine.dispose());

    test('checkpoints hold ema.generator.* tensors; 3 steps + resume for 3 == 6 steps, EMA included, bit for bit', async () => {
      await train(cfg(`${name}-straight`, { steps: 6 }), engine);
      await train(cfg(`${name}-split`, { steps: 3 }), engine);
      const starts: TrainStart[] = [];
      await train(cfg(`${name}-split`, { steps: 6, resume: true, seed: undefined }), engine, { onStart: (s) => starts.push(s) });
      assert.equal(starts[0]!.ema.decay, 0.999);
      assert.equal(starts[0]!.ema.from, 'checkpoint');
      const a = await loadCheckpoint(join(root, `${name}-straight`));
      const b = await loadCheckpoint(join(root, `${name}-split`));
      assert.ok(emaTensors(a.weights).has('ema.generator.deconv1.weight'));
      assert.equal(emaTensors(a.weights).size, [...a.weights.keys()].filter((k) => k.startsWith('generator.')).length, 'an EMA copy of every generator tensor');
      assertBitIdentical(a.weights, b.weights, 'weights + EMA');
      // And the EMA is not the raw generator.
      assert.notDeepEqual(a.weights.get('ema.generator.deconv1.weight')!.data, a.weights.get('generator.deconv1.weight')!.data);
    });

    test('--ema 0: no EMA tensors, and the raw weights equal those of a run with EMA', async () => {
      await train(cfg(`${name}-noema`, { steps: 6, ema: 0 }), engine);
      const off = await loadCheckpoint(join(root, `${name}-noema`));
      const on = await loadCheckpoint(join(root, `${name}-straight`));
      assert.equal(emaTensors(off.weights).size, 0);
      for (const k of emaTensors(on.weights).keys()) on.weights.delete(k);
      assertBitIdentical(on.weights, off.weights, 'raw weights');
    });

    test('an old checkpoint without EMA resumes with the EMA started from its raw weights, and says so', async () => {
      const dir = join(root, `${name}-old`);
      await train(cfg(`${name}-old`, { steps: 2, ema: 0 }), engine);
      const starts: TrainStart[] = [];
      await train(cfg(`${name}-old`, { steps: 4, resume: true, seed: undefined, ema: 0.999 }), engine, { onStart: (s) => starts.push(s) });
      assert.equal(starts[0]!.ema.from, 'raw');
      assert.match(starts[0]!.ema.note!, /checkpoint .* has no EMA generator: the EMA starts from its raw weights at step 2/);
      assert.ok(emaTensors((await loadCheckpoint(dir)).weights).size > 0);
    });
  });
}

describe('EMA across engines and in sample grids', { skip: torchSkip() }, () => {
  test('a torch run resumes on tfjs with its EMA generator; grids of both generators are written', async () => {
    const torch = await createTorchEngine(spec, { device: 'cpu', threads: 1 });
    const tfjs = await createTfjsEngine(spec, { backend: 'cpu' });
    try {
      const dir = join(root, 'cross');
      await train(cfg('cross', { steps: 3, sampleEvery: 3 }), torch);
      assert.ok(existsSync(join(dir, 'samples', 'step-000003.png')));
      assert.ok(existsSync(join(dir, 'samples', 'step-000003-ema.png')));
      const saved = await loadCheckpoint(dir);
      let seen: TensorMap | null = null;
      await train(cfg('cross', { steps: 4, resume: true, seed: undefined }), tfjs, {}, [
        {
          name: 'peek',
          async onStepEnd() {
            seen ??= await tfjs.getEmaWeights();
          },
        },
      ]);
      assert.ok(seen, 'EMA on after the cross-engine resume');
      // After one more step the EMA moved away from what was loaded, but by one small update only.
      const loaded = saved.weights.get('ema.generator.deconv1.weight')!.data;
      const after1 = (seen as TensorMap).get('generator.deconv1.weight')!.data;
      let m = 0;
      for (let i = 0; i < loaded.length; i++) m = Math.max(m, Math.abs(loaded[i]! - after1[i]!));
      assert.ok(m > 0 && m < 1e-2, `EMA moved by ${m} in one step from the torch checkpoint's`);
    } finally {
      torch.dispose();
      tfjs.dispose();
    }
  });
});

describe('export --weights ema|raw', () => {
  test('the EMA generator is exported by default and recorded in metadata_props; raw on request; a checkpoint without EMA exports raw with a note, and --weights ema on it is E_NO_EMA', async () => {
    const engine = await createTfjsEngine(spec, { backend: 'cpu' });
    try {
      const dir = join(root, 'export');
      await train(cfg('export', { steps: 8 }), engine);
      const z = sampleLatents(spec, 5, 3);
      const wantEma = await engine.generate(z, 3, 'ema');
      const wantRaw = await engine.generate(z, 3, 'raw');
      const meta = (path: string): Record<string, string> => Object.fromEntries(decodeModel(readFileSync(path)).metadata_props.map((p) => [p.key, p.value]));

      const ema = await exportRun({ runDir: dir, out: join(root, 'ema.onnx') });
      assert.equal(ema.weights, 'ema');
      assert.equal(meta(join(root, 'ema.onnx'))[META.weights], 'ema');
      assert.equal(meta(join(root, 'ema.onnx'))[META.emaDecay], '0.999');
      const raw = await exportRun({ runDir: dir, out: join(root, 'raw.onnx'), weights: 'raw' });
      assert.equal(raw.weights, 'raw');
      assert.equal(meta(join(root, 'raw.onnx'))[META.weights], 'raw');
      const outEma = (await runOnnx(readFileSync(join(root, 'ema.onnx')), z, 3, spec.zDim)).data;
      const outRaw = (await runOnnx(readFileSync(join(root, 'raw.onnx')), z, 3, spec.zDim)).data;
      assertWithin('tfjs EMA onnx~engine', maxAbsDiff(outEma, wantEma), 1e-4, 'the EMA model computes the EMA generator');
      assertWithin('tfjs raw onnx~engine', maxAbsDiff(outRaw, wantRaw), 1e-4, 'the raw model computes the raw generator');
      assert.ok(maxAbsDiff(outEma, outRaw) > 1e-3, `and the two differ (by ${maxAbsDiff(outEma, outRaw)})`);

      await train(cfg('export-old', { steps: 2, ema: 0 }), engine);
      const old = await exportRun({ runDir: join(root, 'export-old'), out: join(root, 'old.onnx') });
      assert.equal(old.weights, 'raw');
      assert.match(old.notes.join('\n'), /has no EMA generator .* exported the raw weights/);
      await assert.rejects(exportRun({ runDir: join(root, 'export-old'), out: join(root, 'old-ema.onnx'), weights: 'ema' }), (err: CelebaGanError) => {
        assert.equal(err.code, 'E_NO_EMA');
        assert.match(err.message, /no EMA generator/);
        return true;
      });
      assert.ok(listCheckpoints(join(root, 'export-old')).length > 0);
    } finally {
      engine.dispose();
    }
  });
});
