import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSpec } from '../../src/config/presets.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import type { TrainingEngine } from '../../src/engines/engine.js';
import { createTfjsEngine, type TfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import { CelebaGanError } from '../../src/errors.js';
import { encodeSafetensors } from '../../src/model/safetensors.js';
import { MANIFEST_FILE, WEIGHTS_FILE, lastGoodCheckpoint, listCheckpoints, loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { exportRun } from '../../src/train/export-run.js';
import { train, type TrainConfig } from '../../src/train/index.js';
import { sha256Hex } from '../../src/util/hash.js';
import { cli } from '../support/in-process.js';
import { injectFsError } from '../support/inject.js';

// Faults a user (or the OS) causes during train/export: each must reach them as an E_* code that
// names their path and the fix, and must not lose what was already saved.

const spec = buildSpec('seed28', 0.03125);
let root: string;
let data: string;
let engine: TfjsEngine;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cg-faults-'));
  data = join(root, 'faces-28.cgds');
  await prepareSynthetic({ count: 12, out: data, size: 28, seed: 2 });
  engine = await createTfjsEngine(spec, { backend: 'cpu' });
});
after(() => {
  engine.dispose();
  rmSync(root, { recursive: true, force: true });
});

const tiny = ['--width', '0.03125', '--batch-size', '4', '--engine', 'tfjs', '--backend', 'cpu', '--sample-every', '0', '--log-every', '1', '--seed', '5'];

function cfg(out: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    spec,
    dataPath: data,
    outDir: join(root, out),
    seed: 5,
    batchSize: 4,
    sampleEvery: 0,
    checkpointEvery: 2,
    keep: 5,
    logEvery: 1,
    plotEvery: 0,
    ...extra,
  };
}

async function poison(runDir: string, step: number): Promise<void> {
  const c = await loadCheckpoint(runDir, step);
  const name = 'generator.fc.weight';
  c.weights.get(name)!.data[3] = Number.NaN;
  const parts = encodeSafetensors(c.weights, { format: 'pt' });
  writeFileSync(join(c.dir, WEIGHTS_FILE), Buffer.concat(parts));
  const manifest = { ...c.manifest, files: { ...c.manifest.files, [WEIGHTS_FILE]: sha256Hex(parts) } };
  writeFileSync(join(c.dir, MANIFEST_FILE), JSON.stringify(manifest));
}

test('ERROR PATH - train --data naming a folder: E_IS_FOLDER naming it and the fix, never "unexpected error"', async () => {
  const folder = join(root, 'images');
  mkdirSync(folder, { recursive: true });
  const r = await cli('train', '--data', folder, '--out', join(root, 'run-folder'), '--steps', '1', ...tiny);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`error \\[E_IS_FOLDER\\]: cannot (open|read) the data set ${folder.replace(/[/.]/g, '\\$&')}: .* is a folder`));
  assert.match(r.stderr, /run `celeba-gan prepare --input <folder>` first/);
  assert.doesNotMatch(r.stderr, /unexpected error|EISDIR: illegal/);
});

test('ERROR PATH - train on a full disk: E_NO_SPACE naming the run file, exit 1, not "unexpected error"', async () => {
  const out = join(root, 'run-nospace');
  const restore = injectFsError('writeSync', 'ENOSPC');
  let r;
  try {
    r = await cli('train', '--data', data, '--out', out, '--steps', '1', ...tiny);
  } finally {
    restore();
  }
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`error \\[E_NO_SPACE\\]: cannot write ${join(out, 'run.json').replace(/[/.]/g, '\\$&')}: no space left`));
  assert.doesNotMatch(r.stderr, /unexpected error|\.tmp/);
});

test('ERROR PATH - train into a read-only folder: E_READ_ONLY naming the run folder, not ENOENT on samples/', async () => {
  const out = join(root, 'run-rofs');
  const restore = injectFsError('mkdirSync', 'EROFS', (args) => String(args[0]).startsWith(out));
  let r;
  try {
    r = await cli('train', '--data', data, '--out', out, '--steps', '1', ...tiny);
  } finally {
    restore();
  }
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`error \\[E_READ_ONLY\\]: cannot create the run folder ${out.replace(/[/.]/g, '\\$&')}: .* read-only file system`));
  assert.doesNotMatch(r.stderr, /ENOENT|unexpected error/);
});

test('a periodic checkpoint that fails for lack of space: said, training goes on, the next checkpoint saves; earlier ones intact', async () => {
  const failed: { step: number; code: string }[] = [];
  const saved: number[] = [];
  // Space runs out while checkpoint 4 is written, and is back for checkpoint 6.
  const restore = injectFsError('openSync', 'ENOSPC', (args) => String(args[0]).includes(`${join('checkpoints', '.step-000000004')}`));
  let result;
  try {
    result = await train(cfg('run-ckpt-space', { steps: 6 }), engine, {
      onCheckpoint: (_dir, step) => saved.push(step),
      onCheckpointFailed: (err, step) => failed.push({ step, code: err.code }),
    });
  } finally {
    restore();
  }
  assert.equal(result.status, 'completed');
  assert.equal(result.step, 6);
  assert.deepEqual(failed, [{ step: 4, code: 'E_NO_SPACE' }]);
  assert.deepEqual(saved, [2, 6]);
  const dir = join(root, 'run-ckpt-space');
  assert.deepEqual(
    listCheckpoints(dir).map((c) => c.step),
    [2, 6],
  );
  assert.equal((await loadCheckpoint(dir, 2)).manifest.step, 2);
  assert.deepEqual(readdirSync(join(dir, 'checkpoints')).sort(), ['step-000000002', 'step-000000006'], 'no temporary folder left');
});

test('ERROR PATH - the final checkpoint failing for lack of space ends the run with E_NO_SPACE naming the checkpoint folder', async () => {
  const dir = join(root, 'run-final-space');
  const restore = injectFsError('openSync', 'ENOSPC', (args) => String(args[0]).includes(join('checkpoints', '.step-000000003')));
  try {
    await assert.rejects(train(cfg('run-final-space', { steps: 3 }), engine), (err: CelebaGanError) => {
      assert.equal(err.code, 'E_NO_SPACE');
      assert.ok(err.message.includes(join(dir, 'checkpoints', 'step-000000003')), err.message);
      return true;
    });
  } finally {
    restore();
  }
  assert.deepEqual(
    listCheckpoints(dir).map((c) => c.step),
    [2],
  );
});

test('crash leftovers: train reports and removes .step-*.tmp folders and half-deleted checkpoints, restores an interrupted replacement', async () => {
  const out = join(root, 'run-leftovers');
  assert.equal((await cli('train', '--data', data, '--out', out, '--steps', '4', '--checkpoint-every', '2', ...tiny)).code, 0);
  const ck = join(out, 'checkpoints');
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  // A checkpoint being written when the process was killed (4-5 MB at full width).
  mkdirSync(join(ck, `.step-000000006.${dead}.abc.tmp`));
  writeFileSync(join(ck, `.step-000000006.${dead}.abc.tmp`, WEIGHTS_FILE), 'partial');
  // A prune killed half-way: an old step folder holding only its weights.
  mkdirSync(join(ck, 'step-000000001'));
  writeFileSync(join(ck, 'step-000000001', WEIGHTS_FILE), 'rest of a pruned checkpoint');
  // A same-step replacement killed between its two renames: step 4 renamed aside, the new one not yet in.
  const aside = join(ck, `.step-000000004.${dead}.abd.tmp.old`);
  const { renameSync } = await import('node:fs');
  renameSync(join(ck, 'step-000000004'), aside);

  const r = await cli('train', '--out', out, '--resume', '--steps', '5', '--engine', 'tfjs', '--backend', 'cpu', '--sample-every', '0');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`after an interrupted run: removed ${join(ck, `.step-000000006.${dead}.abc.tmp`).replace(/[/.]/g, '\\$&')}`));
  assert.match(r.stderr, new RegExp(`after an interrupted run: removed ${join(ck, 'step-000000001').replace(/[/.]/g, '\\$&')} \\(a half-deleted checkpoint`));
  assert.match(r.stderr, new RegExp(`after an interrupted run: restored ${join(ck, 'step-000000004').replace(/[/.]/g, '\\$&')}`));
  assert.match(r.stderr, /resuming .* at step 4/);
  assert.deepEqual(readdirSync(ck).sort(), ['step-000000002', 'step-000000004', 'step-000000005']);
});

test('ERROR PATH - a deleted manifest.json is said, not silently skipped for an older checkpoint', async () => {
  const out = join(root, 'run-manifest');
  assert.equal((await cli('train', '--data', data, '--out', out, '--steps', '4', '--checkpoint-every', '2', ...tiny)).code, 0);
  const newest = join(out, 'checkpoints', 'step-000000004');
  rmSync(join(newest, MANIFEST_FILE));
  await assert.rejects(loadCheckpoint(out), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_CHECKPOINT_INCOMPLETE');
    assert.match(err.message, /step-000000004 has no manifest\.json, so the latest usable one would be the older step 2/);
    assert.match(err.hint ?? '', /delete .*step-000000004 to continue from step 2/);
    return true;
  });
  const r = await cli('export', '--run', out, '--onnx', join(root, 'm.onnx'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[E_CHECKPOINT_INCOMPLETE\]/);
  assert.equal(existsSync(join(root, 'm.onnx')), false);
  // Asked for by step, the older one still exports.
  assert.equal((await cli('export', '--run', out, '--onnx', join(root, 'm2.onnx'), '--checkpoint', '2')).code, 0);
});

test('ERROR PATH - NaN weights: never saved, never exported, never called the last good checkpoint', async () => {
  const out = join(root, 'run-nan');
  await train(cfg('run-nan', { steps: 4 }), engine);
  const good = await loadCheckpoint(out, 2);
  const nan = new Map(good.weights);
  nan.set('generator.fc.weight', {
    shape: good.weights.get('generator.fc.weight')!.shape,
    data: good.weights.get('generator.fc.weight')!.data.map((v, i) => (i === 0 ? Number.NaN : v)),
  });
  assert.throws(
    () =>
      saveCheckpoint(out, {
        spec,
        step: 9,
        stepsPerEpoch: 3,
        batchSize: 4,
        seed: 5,
        dataChecksum: 'x',
        engine: 'tfjs',
        weights: nan,
        optimizer: good.optimizer,
      }),
    (err: CelebaGanError) => err.code === 'E_WEIGHTS_NOT_FINITE' && /generator\.fc\.weight/.test(err.message),
  );
  assert.equal(existsSync(join(out, 'checkpoints', 'step-000000009')), false);

  // A checkpoint that holds NaN anyway (an older celeba-gan saved it, hashes consistent).
  await poison(out, 4);
  await assert.rejects(exportRun({ runDir: out, out: join(root, 'nan.onnx') }), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_WEIGHTS_NOT_FINITE');
    assert.match(err.message, /hold NaN in generator\.fc\.weight/);
    assert.match(err.hint ?? '', /--checkpoint <step>/);
    return true;
  });
  assert.equal(existsSync(join(root, 'nan.onnx')), false);
  const last = await lastGoodCheckpoint(out);
  assert.equal(last.ref?.step, 2);
  assert.match(last.skipped.join(), /step-000000004 \(generator\.fc\.weight holds NaN\)/);

  // Training that diverges names the last GOOD checkpoint (2), not the newest one (4).
  const diverging: TrainingEngine = Object.create(engine, {
    trainStep: { value: async () => ({ lossD: Number.NaN, lossG: 1, dReal: 0.5, dFake: 0.5 }) },
  });
  await assert.rejects(
    train({ ...cfg('run-nan', { steps: 6 }), resume: true, seed: undefined, batchSize: undefined }, diverging).catch(async (err) => {
      throw err;
    }),
    (err: CelebaGanError) => {
      assert.equal(err.code, 'E_NAN_LOSS');
      assert.match(err.hint ?? '', /The last good checkpoint is step 2 \(.*step-000000002\) \(not .*step-000000004 \(generator\.fc\.weight holds NaN\)\)/);
      return true;
    },
  );
});

test('ERROR PATH - a string width in run.json is blamed on run.json, not on a flag the user never passed', async () => {
  const out = join(root, 'run-badjson');
  assert.equal((await cli('train', '--data', data, '--out', out, '--steps', '1', ...tiny)).code, 0);
  const path = join(out, 'run.json');
  const run = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  writeFileSync(path, JSON.stringify({ ...run, width: '0.03125' }));
  const r = await cli('train', '--out', out, '--resume', '--steps', '2', '--engine', 'tfjs', '--backend', 'cpu');
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(`error [E_RUN_CORRUPT]: ${path} has "width" "0.03125"; expected a number > 0`), r.stderr);
  assert.doesNotMatch(r.stderr, /--width/);
});

test('ERROR PATH - --epochs -1 is refused even with --steps (both are validated)', async () => {
  const r = await cli('train', '--data', data, '--out', join(root, 'run-epochs'), '--steps', '2', '--epochs', '-1', ...tiny);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /error \[E_BAD_ARGUMENT\]: Expected integer >= 1 for --epochs but received -1 of type number/);
  const both = await cli('train', '--data', data, '--out', join(root, 'run-epochs'), '--steps', '2', '--epochs', '3', ...tiny);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /Give either --steps or --epochs, not both/);
  assert.equal(existsSync(join(root, 'run-epochs')), false);
});

test('ERROR PATH - an unknown flag prints the error and a pointer to --help, not the whole help', async () => {
  const r = await cli('train', '--data', data, '--stpes', '3');
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'celeba-gan: Unknown argument: stpes\n  See `celeba-gan train --help` for the options and examples.\n');
  assert.equal(r.stdout, '');
});

test('ERROR PATH - train --device gpu is one usage error, whatever engine auto would pick', async () => {
  for (const engineFlag of [[], ['--engine', 'tfjs'], ['--engine', 'auto']]) {
    const r = await cli('train', '--data', data, '--out', join(root, 'run-device'), '--steps', '1', '--device', 'gpu', ...engineFlag);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr.split('\n')[0],
      'celeba-gan: error [E_BAD_ARGUMENT]: Unsupported device "gpu" for the torch engine. Should be one of: auto, cpu, cuda, cuda:N',
    );
    assert.equal(existsSync(join(root, 'run-device')), false);
  }
});

test('ERROR PATH - an OS error no command wrapped still reaches the user as an E_* code naming the path (main.ts)', async () => {
  const home = process.cwd();
  const ws = join(root, 'ws-eacces');
  mkdirSync(join(ws, 'data'), { recursive: true });
  process.chdir(ws);
  const restore = injectFsError('readdirSync', 'EACCES', (args) => args[0] === 'data');
  let r;
  try {
    r = await cli('train', '--steps', '1');
  } finally {
    restore();
    process.chdir(home);
  }
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^celeba-gan: error \[E_PERMISSION\]: cannot access data: permission denied for data \(EACCES\)\n {2}Pass a path you may read and write/,
  );
  assert.doesNotMatch(r.stderr, /unexpected error/);
});

test('ERROR PATH - without an onCheckpointFailed listener, a periodic checkpoint out of space ends the run (nobody would be told)', async () => {
  const restore = injectFsError('openSync', 'ENOSPC', (args) => String(args[0]).includes(join('checkpoints', '.step-000000002')));
  try {
    await assert.rejects(
      train(cfg('run-untold', { steps: 4 }), engine),
      (err: CelebaGanError) => err.code === 'E_NO_SPACE' && err.message.includes('step-000000002'),
    );
  } finally {
    restore();
  }
});

test('ERROR PATH - resume when the only checkpoint lost its manifest: E_CHECKPOINT_INCOMPLETE, not a silent restart from step 0', async () => {
  const out = join(root, 'run-only-manifest');
  assert.equal((await cli('train', '--data', data, '--out', out, '--steps', '2', ...tiny)).code, 0);
  rmSync(join(out, 'checkpoints', 'step-000000002', MANIFEST_FILE));
  const r = await cli('train', '--out', out, '--resume', '--steps', '3', '--engine', 'tfjs', '--backend', 'cpu', '--sample-every', '0');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error \[E_CHECKPOINT_INCOMPLETE\]: checkpoint .*step-000000002 has no manifest\.json, and no older checkpoint is usable/);
  assert.ok(existsSync(join(out, 'checkpoints', 'step-000000002', WEIGHTS_FILE)), 'nothing deleted');
});
