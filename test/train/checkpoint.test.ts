import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSpec } from '../../src/config/presets.js';
import { initialWeights } from '../../src/model/init.js';
import { allParameters } from '../../src/model/shapes.js';
import type { TensorMap } from '../../src/model/tensors.js';
import type { OptimizerState } from '../../src/engines/engine.js';
import { CelebaGanError } from '../../src/errors.js';
import { assertSameArchitecture, listCheckpoints, loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { readRunConfig, writeRunConfig } from '../../src/train/run-config.js';
import { readSafetensors } from '../../src/model/safetensors.js';
import { injectFsError } from '../support/inject.js';

const spec = buildSpec('seed28', 0.03125);

function optimizerFor(weights: TensorMap, fill: number): OptimizerState {
  const tensors: TensorMap = new Map();
  for (const p of allParameters(spec).filter((q) => q.trainable)) {
    const n = weights.get(p.name)!.data.length;
    tensors.set(`adam.m.${p.name}`, { shape: p.shape, data: new Float32Array(n).fill(fill) });
    tensors.set(`adam.v.${p.name}`, { shape: p.shape, data: new Float32Array(n).fill(fill * 2) });
  }
  return { tensors, steps: { generator: 7, discriminator: 7 } };
}

function save(runDir: string, step: number, keep?: number) {
  const weights = initialWeights(spec, step);
  return {
    weights,
    result: saveCheckpoint(runDir, {
      spec,
      step,
      stepsPerEpoch: 10,
      batchSize: 8,
      seed: 42,
      dataChecksum: 'ab'.repeat(32),
      engine: 'tfjs',
      weights,
      optimizer: optimizerFor(weights, step),
      keep,
    }),
  };
}

function tempRun(): string {
  return mkdtempSync(join(tmpdir(), 'cg-ckpt-'));
}

test('saveCheckpoint + loadCheckpoint round-trip weights, moments and manifest', async () => {
  const run = tempRun();
  try {
    const { weights } = save(run, 25);
    const loaded = await loadCheckpoint(run, 'latest');
    assert.equal(loaded.manifest.step, 25);
    assert.equal(loaded.manifest.epoch, 2);
    assert.equal(loaded.manifest.seed, 42);
    assert.equal(loaded.manifest.preset, 'seed28');
    assert.deepEqual(loaded.spec, JSON.parse(JSON.stringify(spec)));
    assert.deepEqual(loaded.optimizer.steps, { generator: 7, discriminator: 7 });
    for (const [name, t] of weights) assert.deepEqual(loaded.weights.get(name)!.data, t.data, name);
    assert.equal(loaded.optimizer.tensors.get('adam.v.generator.fc.weight')!.data[0], 50);
    // Standard safetensors: readable by the generic reader, names canonical.
    const st = readSafetensors(join(loaded.dir, 'weights.safetensors'));
    assert.ok(st.tensors.has('discriminator.bn2.running_var'));
    assert.equal(readdirSync(join(run, 'checkpoints')).filter((n) => n.startsWith('.')).length, 0, 'no temporary folders left');
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('listCheckpoints is ascending; keep K prunes the oldest; same step replaces', async () => {
  const run = tempRun();
  try {
    for (const step of [100, 5, 30, 200]) save(run, step, 3);
    assert.deepEqual(
      listCheckpoints(run).map((c) => c.step),
      [30, 100, 200],
    );
    save(run, 200, 3);
    assert.deepEqual(
      listCheckpoints(run).map((c) => c.step),
      [30, 100, 200],
    );
    assert.equal((await loadCheckpoint(run, 100)).manifest.step, 100);
    assert.equal((await loadCheckpoint(run)).manifest.step, 200);
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('run.json round-trips', () => {
  const run = tempRun();
  try {
    assert.equal(readRunConfig(run), null);
    writeRunConfig(run, {
      format: 'celeba-gan-run',
      formatVersion: 1,
      packageVersion: '0.1.0',
      preset: spec.preset,
      width: spec.width,
      spec,
      seed: 3,
      batchSize: 8,
      data: { path: 'd.cgds', checksum: '00', count: 10, height: 28, width: 28 },
      engine: 'tfjs',
      created: new Date().toISOString(),
      sampleSeed: 9,
      sampleCount: 25,
    });
    assert.equal(readRunConfig(run)!.seed, 3);
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('ERROR PATH - loadCheckpoint on a run without checkpoints: E_NO_CHECKPOINT', async () => {
  const run = tempRun();
  try {
    await assert.rejects(loadCheckpoint(run), (err: CelebaGanError) => {
      assert.equal(err.name, 'CelebaGanError');
      assert.equal(err.code, 'E_NO_CHECKPOINT');
      assert.match(err.message, /has no checkpoints/);
      assert.match(err.hint!, /celeba-gan train/);
      return true;
    });
    save(run, 10);
    await assert.rejects(loadCheckpoint(run, 11), (err: CelebaGanError) => err.code === 'E_NO_CHECKPOINT' && /steps 10/.test(err.message));
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('ERROR PATH - a flipped byte in weights.safetensors: E_CHECKPOINT_CORRUPT', async () => {
  const run = tempRun();
  try {
    const { result } = save(run, 10);
    const file = join(result.dir, 'weights.safetensors');
    const buf = readFileSync(file);
    buf[buf.length - 3]! ^= 0xff;
    writeFileSync(file, buf);
    await assert.rejects(loadCheckpoint(run), (err: CelebaGanError) => {
      assert.equal(err.code, 'E_CHECKPOINT_CORRUPT');
      assert.match(err.message, /weights\.safetensors has sha256/);
      return true;
    });
    writeFileSync(join(result.dir, 'manifest.json'), '{ not json');
    await assert.rejects(loadCheckpoint(run), (err: CelebaGanError) => err.code === 'E_CHECKPOINT_CORRUPT' && /manifest\.json/.test(err.message));
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('ERROR PATH - a checkpoint of another format version: E_CHECKPOINT_VERSION', async () => {
  const run = tempRun();
  try {
    const { result } = save(run, 10);
    const path = join(result.dir, 'manifest.json');
    const m = JSON.parse(readFileSync(path, 'utf8'));
    m.formatVersion = 99;
    writeFileSync(path, JSON.stringify(m));
    await assert.rejects(loadCheckpoint(run), (err: CelebaGanError) => {
      assert.equal(err.code, 'E_CHECKPOINT_VERSION');
      assert.match(err.message, /format version 99/);
      return true;
    });
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('ERROR PATH - a checkpoint of another preset/width: E_CHECKPOINT_MISMATCH', async () => {
  const run = tempRun();
  try {
    save(run, 10);
    const { manifest } = await loadCheckpoint(run);
    assert.doesNotThrow(() => assertSameArchitecture(manifest, spec, run));
    assert.throws(
      () => assertSameArchitecture(manifest, buildSpec('seed28', 0.0625), run),
      (err: CelebaGanError) => {
        assert.equal(err.code, 'E_CHECKPOINT_MISMATCH');
        assert.match(err.message, /seed28 model at width 0\.03125/);
        assert.match(err.hint!, /--width 0\.03125/);
        return true;
      },
    );
    assert.ok(existsSync(join(run, 'checkpoints')));
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('pruning renames a checkpoint away before deleting it: a kill mid-delete never leaves a step-* folder missing files', async () => {
  const run = tempRun();
  try {
    save(run, 1);
    save(run, 2);
    // Stop the prune right after its rename (as a kill would): the doomed folder has its temporary name.
    const restore = injectFsError('rmSync', 'EINTR');
    try {
      assert.throws(() => save(run, 3, 2), /EINTR: injected failure/);
    } finally {
      restore();
    }
    const names = readdirSync(join(run, 'checkpoints')).sort();
    assert.deepEqual(
      names.filter((n) => n.startsWith('step-')),
      ['step-000000002', 'step-000000003'],
    );
    assert.equal(names.filter((n) => /^\.step-000000001\.\d+\.[0-9a-z]+\.tmp$/.test(n)).length, 1, names.join());
    assert.deepEqual(
      listCheckpoints(run).map((c) => c.step),
      [2, 3],
    );
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('ERROR PATH - weights that do not fit the spec: one validator, E_WEIGHTS_MISMATCH naming the checkpoint', async () => {
  const run = tempRun();
  try {
    const { result } = save(run, 5);
    const other = initialWeights(buildSpec('seed28', 0.0625), 1);
    assert.throws(
      () =>
        saveCheckpoint(run, {
          spec,
          step: 6,
          stepsPerEpoch: 10,
          batchSize: 8,
          seed: 42,
          dataChecksum: 'x',
          engine: 'tfjs',
          weights: other,
          optimizer: optimizerFor(initialWeights(spec, 1), 1),
        }),
      (err: CelebaGanError) =>
        err.code === 'E_WEIGHTS_MISMATCH' &&
        /^tensors of the checkpoint to save do not fit seed28 at width 0\.03125: generator\.fc\.weight has shape/.test(err.message),
    );
    // A checkpoint whose manifest claims another width than its tensors (hash kept consistent).
    const manifestPath = join(result.dir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { spec: unknown; width: number };
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, spec: buildSpec('seed28', 0.0625), width: 0.0625 }));
    await assert.rejects(loadCheckpoint(run), (err: CelebaGanError) => {
      assert.equal(err.code, 'E_WEIGHTS_MISMATCH');
      assert.ok(err.message.startsWith(`tensors of checkpoint ${result.dir} do not fit seed28 at width 0.0625`), err.message);
      return true;
    });
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});
