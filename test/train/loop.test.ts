import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildSpec } from '../../src/config/presets.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import type { TrainingEngine } from '../../src/engines/engine.js';
import { createTfjsEngine, type TfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import { CelebaGanError } from '../../src/errors.js';
import { Trainer, listCheckpoints, loadCheckpoint, openRun, readRunConfig, train, type LogEntry, type TrainConfig } from '../../src/train/index.js';

// Tiny: width 1/32, batch 4, 22 synthetic images -> 5 steps per epoch (2 images dropped).
const spec = buildSpec('seed28', 0.03125);
let root: string;
let data: string;
let data64: string;
let engine: TfjsEngine;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cg-train-'));
  data = join(root, 'synthetic-28.cgds');
  data64 = join(root, 'synthetic-64.cgds');
  await prepareSynthetic({ count: 22, out: data, size: 28, seed: 1 });
  await prepareSynthetic({ count: 4, out: data64, size: 64, seed: 1 });
  engine = await createTfjsEngine(spec, { backend: 'cpu' });
});
after(() => {
  engine.dispose();
  rmSync(root, { recursive: true, force: true });
});

function cfg(out: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    spec,
    dataPath: data,
    outDir: join(root, out),
    seed: 3,
    batchSize: 4,
    sampleEvery: 3,
    checkpointEvery: 4,
    keep: 2,
    logEvery: 1,
    plotEvery: 0,
    ...extra,
  };
}

test('a short run writes run.json, checkpoints (last K), metrics.jsonl, loss.svg and 5x5 sample grids', async () => {
  const logs: LogEntry[] = [];
  const result = await train(cfg('run-a', { steps: 9 }), engine, { onLog: (e) => logs.push(e) });
  const dir = join(root, 'run-a');
  assert.equal(result.status, 'completed');
  assert.equal(result.step, 9);
  const run = readRunConfig(dir)!;
  assert.equal(run.seed, 3);
  assert.equal(run.engine, 'tfjs');
  assert.equal(run.data.count, 22);
  // Periodic at 4 and 8, final at 9; keep 2.
  assert.deepEqual(
    listCheckpoints(dir).map((c) => c.step),
    [8, 9],
  );
  const ck = await loadCheckpoint(dir);
  assert.equal(ck.manifest.epoch, 1);
  assert.equal(ck.manifest.stepsPerEpoch, 5);
  const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.step),
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  for (const l of lines) for (const k of ['lossD', 'lossG', 'dReal', 'dFake', 'imagesPerSec']) assert.ok(Number.isFinite(l[k]), `${k} at step ${l.step}`);
  assert.deepEqual(
    lines.map((l) => l.epoch),
    [0, 0, 0, 0, 0, 1, 1, 1, 1],
  );
  assert.ok(new Set(lines.map((l) => l.lossD)).size > 3, 'loss_D moves');
  assert.equal(logs.length, 9);
  const svg = readFileSync(join(dir, 'loss.svg'), 'utf8');
  assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((svg.match(/<polyline/g) ?? []).length, 4);
  // Raw and EMA generator (--ema 0.999 by default) grids.
  assert.deepEqual(
    readdirSync(join(dir, 'samples')).sort(),
    [0, 3, 6, 9].flatMap((s) => [`step-00000${s}-ema.png`, `step-00000${s}.png`]),
  );
  const meta = await sharp(join(dir, 'samples', 'step-000003.png')).metadata();
  // 5 tiles of 28 px upscaled x2, 2 px gaps: 5 * 56 + 6 * 2.
  assert.equal(meta.width, 292);
  assert.equal(meta.height, 292);
});

test('resume is exact: 4 steps, stop, resume to 7 == 7 steps in one go (bit-identical on the CPU backend)', async () => {
  const straight = await train(cfg('straight', { steps: 7, checkpointEvery: 0, sampleEvery: 0 }), engine);
  assert.equal(straight.step, 7);
  const first = await train(cfg('split', { steps: 4, checkpointEvery: 0, sampleEvery: 0 }), engine);
  assert.equal(first.step, 4);
  // A fresh engine, as after a restart of the process.
  const engine2 = await createTfjsEngine(spec, { backend: 'cpu' });
  try {
    const second = await train(cfg('split', { steps: 7, checkpointEvery: 0, sampleEvery: 0, resume: true, seed: undefined, batchSize: undefined }), engine2);
    assert.equal(second.step, 7);
  } finally {
    engine2.dispose();
  }
  const a = await loadCheckpoint(join(root, 'straight'));
  const b = await loadCheckpoint(join(root, 'split'));
  assert.equal(b.manifest.step, 7);
  for (const [name, t] of a.weights) assert.deepEqual(b.weights.get(name)!.data, t.data, name);
  for (const [name, t] of a.optimizer.tensors) assert.deepEqual(b.optimizer.tensors.get(name)!.data, t.data, name);
  assert.deepEqual(b.optimizer.steps, a.optimizer.steps);
  // metrics.jsonl of the split run continues where it stopped, with the same values.
  const la = readFileSync(join(root, 'straight', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const lb = readFileSync(join(root, 'split', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lb.map((l) => [l.step, l.lossD, l.lossG]),
    la.map((l) => [l.step, l.lossD, l.lossG]),
  );
});

test('stop() (what SIGINT/SIGTERM call) finishes the step, saves a checkpoint and reports stopped', async () => {
  const opened = await openRun(cfg('stopped', { steps: 50, checkpointEvery: 0, sampleEvery: 0 }));
  const trainer = new Trainer(opened, engine, { onStep: (step) => step === 2 && trainer.stop('SIGINT') });
  const result = await trainer.run();
  assert.equal(result.status, 'stopped');
  assert.equal(result.stopReason, 'SIGINT');
  assert.equal(result.step, 2);
  assert.deepEqual(
    listCheckpoints(join(root, 'stopped')).map((c) => c.step),
    [2],
  );
});

test('step hooks (evaluation) run after each step and their values land in metrics.jsonl', async () => {
  const seen: number[] = [];
  await train(cfg('hooked', { steps: 4, sampleEvery: 0, checkpointEvery: 0 }), engine, {}, [
    {
      name: 'eval',
      onStepEnd: async ({ step, engine: e }) => {
        seen.push(step);
        if (step % 2 !== 0) return;
        const img = await e.generate(new Float32Array(2 * spec.zDim), 2);
        return { meanPixel: img.reduce((a, b) => a + b, 0) / img.length };
      },
    },
  ]);
  assert.deepEqual(seen, [1, 2, 3, 4]);
  const evals = readFileSync(join(root, 'hooked', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => l.kind === 'eval');
  assert.deepEqual(
    evals.map((l) => l.step),
    [2, 4],
  );
  assert.ok(evals.every((l) => Number.isFinite(l.meanPixel)));
});

/** Fault injection: the real engine, but step `at` reports a NaN loss. */
function nanAt(inner: TrainingEngine, at: number): TrainingEngine {
  return {
    info: inner.info,
    spec: inner.spec,
    setWeights: (w, o) => inner.setWeights(w, o),
    getWeights: () => inner.getWeights(),
    getOptimizerState: () => inner.getOptimizerState(),
    setEma: (d, g) => inner.setEma(d, g),
    getEmaWeights: () => inner.getEmaWeights(),
    generate: (z, n, w) => inner.generate(z, n, w),
    discriminate: (x, n) => inner.discriminate(x, n),
    dispose: () => inner.dispose(),
    trainStep: async (b, n, o) => {
      const m = await inner.trainStep(b, n, o);
      return o.step === at ? { ...m, lossD: Number.NaN } : m;
    },
  };
}

test('ERROR PATH - a NaN loss stops the run with E_NAN_LOSS and keeps the last good checkpoint', async () => {
  const dir = join(root, 'nan');
  await assert.rejects(train(cfg('nan', { steps: 10, checkpointEvery: 2, sampleEvery: 0, keep: 5 }), nanAt(engine, 4)), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_NAN_LOSS');
    assert.match(err.message, /diverged at step 5: loss_D=NaN/);
    assert.match(err.hint!, /last good checkpoint is step 4/);
    return true;
  });
  assert.deepEqual(
    listCheckpoints(dir).map((c) => c.step),
    [2, 4],
  );
});

test('ERROR PATH - bad inputs: clear errors, nothing written or overwritten', async (t) => {
  // Its own existing run (not another test's), so this test runs alone or in any order.
  await train(cfg('existing', { steps: 1, checkpointEvery: 0, sampleEvery: 0 }), engine);
  const cases: { name: string; config: TrainConfig; code: string; message: RegExp; hint?: RegExp }[] = [
    { name: 'missing data set', config: cfg('bad1', { dataPath: join(root, 'nope.cgds') }), code: 'E_DATASET_MISSING', message: /does not exist/ },
    {
      name: 'image size mismatch',
      config: cfg('bad2', { dataPath: data64 }),
      code: 'E_DATASET_SIZE',
      message: /holds 64x64x3 images but seed28 needs 28x28x3/,
      hint: /prepare --size 28/,
    },
    {
      name: 'existing run without --resume',
      config: cfg('existing', { steps: 3 }),
      code: 'E_RUN_EXISTS',
      message: /already holds a run \(seed28, width 0\.03125, seed 3, /,
      hint: /--resume/,
    },
    {
      name: 'resume with another width',
      config: cfg('existing', { spec: buildSpec('seed28', 0.0625), resume: true, seed: undefined }),
      code: 'E_CHECKPOINT_MISMATCH',
      message: /holds a seed28 run at width 0\.03125/,
      hint: /--width 0\.03125/,
    },
    { name: 'resume where there is no run', config: cfg('bad3', { resume: true }), code: 'E_NO_RUN', message: /holds no run/ },
    { name: 'both --steps and --epochs', config: cfg('bad4', { steps: 2, epochs: 1 }), code: 'E_BAD_ARGUMENT', message: /either --steps or --epochs/ },
  ];
  const before = readFileSync(join(root, 'existing', 'run.json'));
  const checkpoints = listCheckpoints(join(root, 'existing')).map((c) => c.step);
  for (const c of cases) {
    await t.test(c.name, async () => {
      await assert.rejects(train(c.config, engine), (err: CelebaGanError) => {
        assert.ok(err instanceof CelebaGanError, `${err}`);
        assert.equal(err.code, c.code);
        assert.match(err.message, c.message);
        if (c.hint) assert.match(err.hint!, c.hint);
        return true;
      });
    });
  }
  assert.deepEqual(readFileSync(join(root, 'existing', 'run.json')), before, 'run.json untouched');
  assert.deepEqual(
    listCheckpoints(join(root, 'existing')).map((c) => c.step),
    checkpoints,
    'checkpoints untouched',
  );
  for (const d of ['bad1', 'bad2', 'bad3', 'bad4']) assert.equal(existsSync(join(root, d)), false, `${d} not created`);
});

test('ERROR PATH - a corrupt data set or a non-run --out folder', async () => {
  const corrupt = join(root, 'corrupt.cgds');
  const buf = readFileSync(data);
  buf[buf.length - 10]! ^= 0xff;
  writeFileSync(corrupt, buf);
  await assert.rejects(
    train(cfg('bad5', { dataPath: corrupt }), engine),
    (err: CelebaGanError) => err.code === 'E_DATASET_CORRUPT' && /checksum/.test(err.message),
  );
  assert.equal(existsSync(join(root, 'bad5')), false, 'bad5 not created');
  const other = join(root, 'not-a-run');
  mkdirSync(other);
  writeFileSync(join(other, 'notes.txt'), 'mine');
  await assert.rejects(train(cfg('not-a-run'), engine), (err: CelebaGanError) => err.code === 'E_RUN_EXISTS' && /not a celeba-gan run/.test(err.message));
  assert.deepEqual(readdirSync(other), ['notes.txt']);
});
