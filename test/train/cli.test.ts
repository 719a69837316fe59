import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { defaultRunDir, formatLogLine } from '../../src/cli/train.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { listCheckpoints, readRunConfig, writeRunConfig } from '../../src/train/index.js';
import { buildSpec } from '../../src/config/presets.js';

let root: string;
let data: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cg-train-cli-'));
  data = join(root, 'faces-28.cgds');
  await prepareSynthetic({ count: 12, out: data, size: 28, seed: 2 });
});
after(() => rmSync(root, { recursive: true, force: true }));

const tiny = ['--width', '0.03125', '--batch-size', '4', '--engine', 'tfjs', '--backend', 'cpu', '--sample-every', '0', '--log-every', '1'];

test('celeba-gan train: new run, E_RUN_EXISTS without --resume (exit 2), then --resume continues', async () => {
  const out = join(root, 'run');
  assert.equal(await main(['train', '--data', data, '--out', out, '--steps', '2', '--seed', '9', ...tiny]), 0);
  assert.equal(readRunConfig(out)!.seed, 9);
  assert.deepEqual(listCheckpoints(out).map((c) => c.step), [2]);
  assert.equal(await main(['train', '--data', data, '--out', out, '--steps', '3', ...tiny]), 2);
  // --resume takes the data set, preset, width, seed and batch size from run.json.
  assert.equal(await main(['train', '--out', out, '--steps', '3', '--resume', '--engine', 'tfjs', '--backend', 'cpu', '--sample-every', '0']), 0);
  assert.deepEqual(listCheckpoints(out).map((c) => c.step), [2, 3]);
});

test('celeba-gan train on SIGINT: finishes the step, saves a checkpoint, exits 130', async () => {
  const out = join(root, 'interrupted');
  const running = main(['train', '--data', data, '--out', out, '--steps', '500', '--seed', '4', ...tiny]);
  // Signal once the first step is logged (the handler is installed by then).
  while (!existsSync(join(out, 'metrics.jsonl'))) await new Promise((r) => setTimeout(r, 20));
  process.emit('SIGINT', 'SIGINT');
  assert.equal(await running, 130);
  const saved = listCheckpoints(out);
  assert.equal(saved.length, 1);
  assert.ok(saved[0]!.step >= 1 && saved[0]!.step < 500);
  assert.equal(process.listenerCount('SIGINT'), 0, 'the handler is removed afterwards');
});

test('BAD CALL - celeba-gan train with a tfjs backend that is not installed: exit 1, nothing written', async (t) => {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node-gpu');
    t.skip('@tensorflow/tfjs-node-gpu is installed here');
    return;
  } catch {
    /* not installed: the case under test */
  }
  const out = join(root, 'no-backend');
  const code = await main(['train', '--data', data, '--out', out, '--steps', '1', '--width', '0.03125', '--engine', 'tfjs', '--backend', 'tfjs-node-gpu', '--seed', '1', '--batch-size', '4']);
  assert.equal(code, 1);
  assert.equal(readRunConfig(out), null);
});

test('default run folder: runs/<data>-<preset>, -2 when taken; --resume picks the existing one', () => {
  const runs = join(root, 'runs');
  assert.equal(defaultRunDir('data/celeba-28.cgds', 'seed28', false, runs).path, join(runs, 'celeba-28-seed28'));
  const spec = buildSpec('seed28', 0.03125);
  mkdirSync(join(runs, 'celeba-28-seed28'), { recursive: true });
  writeRunConfig(join(runs, 'celeba-28-seed28'), {
    format: 'celeba-gan-run', formatVersion: 1, packageVersion: '0', preset: 'seed28', width: spec.width, spec, seed: 1, batchSize: 4,
    data: { path: 'data/celeba-28.cgds', checksum: '0', count: 1, height: 28, width: 28 }, engine: 'tfjs', created: '', sampleSeed: 1, sampleCount: 25,
  });
  assert.equal(defaultRunDir('data/celeba-28.cgds', undefined, false, runs).path, join(runs, 'celeba-28-seed28-2'));
  assert.equal(defaultRunDir('data/celeba-28.cgds', undefined, true, runs).path, join(runs, 'celeba-28-seed28'));
  assert.throws(() => defaultRunDir('data/other.cgds', undefined, true, runs), (err: Error & { code?: string }) => err.code === 'E_NO_RUN');
});

test('log line names step/epoch, both losses, D(x), D(G(z)) and images/s', () => {
  const line = formatLogLine({ step: 100, epoch: 2, lossD: 1.25, lossG: 0.5, dReal: 0.61, dFake: 0.33, imagesPerSec: 812.34, elapsed: 1, time: '' }, 3165);
  assert.equal(line, 'step 100/3165 epoch 2 | loss_D 1.2500 loss_G 0.5000 | D(x) 0.610 D(G(z)) 0.330 | 812.3 img/s');
});
