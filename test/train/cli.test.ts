import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { defaultRunDir, formatLogLine } from '../../src/cli/train.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { listCheckpoints, readRunConfig, writeRunConfig } from '../../src/train/index.js';
import { buildSpec } from '../../src/config/presets.js';
import { cli } from '../support/in-process.js';
import { waitFor } from '../support/wait.js';

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

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
  assert.deepEqual(
    listCheckpoints(out).map((c) => c.step),
    [2],
  );
  const runJson = readFileSync(join(out, 'run.json'));
  const again = await cli('train', '--data', data, '--out', out, '--steps', '3', ...tiny);
  assert.equal(again.code, 2);
  assert.match(again.stderr, new RegExp(`^celeba-gan: error \\[E_RUN_EXISTS\\]: ${escape(out)} already holds a run \\(seed28, width 0\\.03125, seed 9, `, 'm'));
  assert.match(again.stderr, /--resume/);
  assert.deepEqual(readFileSync(join(out, 'run.json')), runJson, 'run.json untouched');
  assert.deepEqual(
    listCheckpoints(out).map((c) => c.step),
    [2],
    'no checkpoint written',
  );
  // --resume takes the data set, preset, width, seed and batch size from run.json.
  assert.equal(await main(['train', '--out', out, '--steps', '3', '--resume', '--engine', 'tfjs', '--backend', 'cpu', '--sample-every', '0']), 0);
  assert.deepEqual(
    listCheckpoints(out).map((c) => c.step),
    [2, 3],
  );
});

test('celeba-gan train --dry-run: one step, one checkpoint, says so, exit 0', async () => {
  const out = join(root, 'dry');
  const r = await cli('train', '--data', data, '--out', out, '--dry-run', '--seed', '5', ...tiny);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /--dry-run: training one step only/);
  assert.match(r.stdout, new RegExp(`^trained ${escape(out)} to step 1 in `, 'm'));
  assert.deepEqual(
    listCheckpoints(out).map((c) => c.step),
    [1],
  );
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number });
  assert.deepEqual(
    metrics.map((m) => m.step),
    [1],
  );
});

test('celeba-gan train --resume from another working directory (run.json written with a relative --data)', async () => {
  const project = join(root, 'project');
  const elsewhere = join(root, 'elsewhere');
  mkdirSync(join(project, 'data'), { recursive: true });
  mkdirSync(elsewhere);
  copyFileSync(data, join(project, 'data', 'faces-28.cgds'));
  const cwd = process.cwd();
  try {
    process.chdir(project);
    assert.equal(await main(['train', '--data', 'data/faces-28.cgds', '--out', 'runs/r', '--steps', '1', '--seed', '3', ...tiny]), 0);
    process.chdir(elsewhere);
    const r = await cli(
      'train',
      '--out',
      join(project, 'runs', 'r'),
      '--resume',
      '--steps',
      '2',
      '--engine',
      'tfjs',
      '--backend',
      'cpu',
      '--sample-every',
      '0',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      listCheckpoints(join(project, 'runs', 'r')).map((c) => c.step),
      [1, 2],
    );
  } finally {
    process.chdir(cwd);
  }
});

test('BAD CALL - celeba-gan train with the default engine: --threads 0 and --device gpu are usage errors (exit 2), not a fallback to tfjs; nothing written', async () => {
  for (const [flag, value, message] of [
    ['--threads', '0', /^celeba-gan: error \[E_BAD_ARGUMENT\]: Expected integer between 1 and 1024 for threads but received 0 of type number$/m],
    ['--device', 'gpu', /^celeba-gan: error \[E_BAD_ARGUMENT\]: .*"?gpu"?/m],
  ] as const) {
    const out = join(root, `bad-${flag.slice(2)}`);
    const r = await cli('train', '--data', data, '--out', out, flag, value, '--steps', '1', '--width', '0.03125', '--batch-size', '4', '--seed', '1');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stdout + r.stderr, /using tfjs/);
    assert.equal(existsSync(out), false, `${flag}: no run folder`);
  }
});

test('celeba-gan train on SIGINT: finishes the step, saves a checkpoint, exits 130', async () => {
  const out = join(root, 'interrupted');
  const running = main(['train', '--data', data, '--out', out, '--steps', '500', '--seed', '4', ...tiny]);
  // Signal once the first step is logged (the handler is installed by then).
  await waitFor(() => existsSync(join(out, 'metrics.jsonl')), { timeoutMs: 120_000, what: `the first step's ${join(out, 'metrics.jsonl')}` });
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
  const code = await main([
    'train',
    '--data',
    data,
    '--out',
    out,
    '--steps',
    '1',
    '--width',
    '0.03125',
    '--engine',
    'tfjs',
    '--backend',
    'tfjs-node-gpu',
    '--seed',
    '1',
    '--batch-size',
    '4',
  ]);
  assert.equal(code, 1);
  assert.equal(readRunConfig(out), null);
});

test('default run folder: runs/<data>-<preset>, -2 when taken; --resume picks the existing one', () => {
  const runs = join(root, 'runs');
  assert.equal(defaultRunDir('data/celeba-28.cgds', 'seed28', false, runs).path, join(runs, 'celeba-28-seed28'));
  const spec = buildSpec('seed28', 0.03125);
  mkdirSync(join(runs, 'celeba-28-seed28'), { recursive: true });
  writeRunConfig(join(runs, 'celeba-28-seed28'), {
    format: 'celeba-gan-run',
    formatVersion: 1,
    packageVersion: '0',
    preset: 'seed28',
    width: spec.width,
    spec,
    seed: 1,
    batchSize: 4,
    data: { path: 'data/celeba-28.cgds', checksum: '0', count: 1, height: 28, width: 28 },
    engine: 'tfjs',
    created: '',
    sampleSeed: 1,
    sampleCount: 25,
  });
  assert.equal(defaultRunDir('data/celeba-28.cgds', undefined, false, runs).path, join(runs, 'celeba-28-seed28-2'));
  assert.equal(defaultRunDir('data/celeba-28.cgds', undefined, true, runs).path, join(runs, 'celeba-28-seed28'));
  assert.throws(
    () => defaultRunDir('data/other.cgds', undefined, true, runs),
    (err: Error & { code?: string }) => err.code === 'E_NO_RUN',
  );
});

test('log line names step/epoch, both losses, D(x), D(G(z)) and images/s', () => {
  const line = formatLogLine({ step: 100, epoch: 2, lossD: 1.25, lossG: 0.5, dReal: 0.61, dFake: 0.33, imagesPerSec: 812.34, elapsed: 1, time: '' }, 3165);
  assert.equal(line, 'step 100/3165 epoch 2 | loss_D 1.2500 loss_G 0.5000 | D(x) 0.610 D(G(z)) 0.330 | 812.3 img/s');
});
