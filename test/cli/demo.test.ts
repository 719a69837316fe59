import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadTfjs } from '../../src/bindings/tfjs.js';
import { openGenerator } from '../../src/inference/session.js';
import { tempDir } from '../inference/fixtures.js';
import { runCli, startCli, until } from '../inference/run-cli.js';

/**
 * `celeba-gan demo`, tiny: 64 synthetic faces, a 2-step run of the narrowest seed28, export,
 * 16 faces. Whatever engine `auto` finds (torch when its addon is built, else tfjs).
 */

const root = tempDir('cg-demo-');
test.after(() => rmSync(root, { recursive: true, force: true }));
const out = join(root, 'demo');
const tiny = ['--synthetic', '64', '--width', '0.03125', '--batch-size', '8', '--faces', '16'];

test('demo runs the whole pipeline and says where everything is', async () => {
  const r = await runCli(['demo', '--out', out, '--minutes', '5', '--steps', '2', ...tiny], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /engine (torch|tfjs) \(/);
  assert.match(r.stderr, /seed28 at width 0\.03125, batch 8 \(--width\); seed 2018/);

  const data = join(out, 'data', 'synthetic-28.cgds');
  const run = join(out, 'runs', 'demo-seed28');
  const model = join(out, 'models', 'demo-seed28.onnx');
  const faces = join(out, 'faces');
  const grid = join(out, 'grid.png');
  for (const p of [data, join(run, 'run.json'), join(run, 'checkpoints', 'step-000000002'), model, join(faces, 'manifest.jsonl'), grid]) {
    assert.ok(existsSync(p), `${p} exists`);
  }
  for (const p of [data, run, model, faces, grid]) assert.ok(r.stdout.includes(p), `the summary names ${p}`);
  assert.match(r.stdout, /2 steps/);
  assert.match(r.stdout, /next: celeba-gan generate --model /);

  const pngs = readdirSync(faces).filter((f) => f.endsWith('.png'));
  assert.equal(pngs.length, 16);
  const face = await sharp(join(faces, 'face-000015.png')).metadata();
  assert.deepEqual([face.width, face.height], [112, 112]);
  assert.equal((await sharp(grid).metadata()).format, 'png');

  const session = await openGenerator(model, { provider: 'cpu' });
  try {
    assert.equal(session.info.step, 2);
    assert.equal(session.info.width, 0.03125);
  } finally {
    await session.close();
  }
  const runJson = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
  assert.equal(runJson.seed, 2018);
  // What the demo prints after Ctrl-C, `train --out <run> --resume`, goes on with the demo's own
  // recipe (run.json's spec, not the preset's defaults).
  const more = await runCli(['train', '--out', run, '--resume', '--steps', '3', '--sample-every', '0'], { cwd: root });
  assert.equal(more.code, 0, more.stderr);
  assert.ok(existsSync(join(run, 'checkpoints', 'step-000000003')), 'the resumed run saved step 3');
});

test('ERROR PATH - a second demo into the same folder without --force; --force replaces only the demo', async () => {
  // Its own demo folder: this test does not depend on any other test having run.
  const own = join(root, 'again');
  const first = await runCli(['demo', '--out', own, '--minutes', '5', '--steps', '1', ...tiny], { cwd: root });
  assert.equal(first.code, 0, first.stderr);
  const again = await runCli(['demo', '--out', own, '--minutes', '5', '--steps', '1', ...tiny], { cwd: root });
  assert.equal(again.code, 2);
  assert.match(again.stderr, /error \[E_OUTPUT_EXISTS\]: .*again\/ already holds a demo/);
  assert.match(again.stderr, /--force/);

  writeFileSync(join(own, 'my-notes.txt'), 'keep');
  // Time-bounded this time: 0.6 s of training, however many steps that is.
  const forced = await runCli(['demo', '--out', own, '--minutes', '0.01', '--force', ...tiny], { cwd: root });
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /removed the previous demo/);
  assert.match(forced.stderr, /stopped by the 0\.01-minute limit/);
  assert.equal(readFileSync(join(own, 'my-notes.txt'), 'utf8'), 'keep', 'files the demo did not make are left alone');
  assert.equal(readdirSync(join(own, 'faces')).filter((f) => f.endsWith('.png')).length, 16);
});

for (const [signal, code, again] of [
  ['SIGINT', 130, 'press Ctrl-C again'],
  ['SIGTERM', 143, 'send SIGTERM again'],
] as const) {
  test(`demo: ${signal} during training saves a checkpoint, skips export and faces, says how to go on, exits ${code}`, { timeout: 180_000 }, async () => {
    const dir = join(root, `signal-${signal}`);
    const running = startCli(['demo', '--out', dir, '--minutes', '10', ...tiny], { cwd: root });
    try {
      await until(() => running.stderr().includes('training for'), running.child);
      running.child.kill(signal);
      const r = await running.result;
      assert.equal(r.code, code, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`${signal}: finishing the current training step \\(.*\\) and saving a checkpoint; the demo stops there; ${again} to quit at once`),
      );
      assert.match(r.stderr, new RegExp(`stopped by ${signal}; to go on:`));
      assert.match(r.stderr, /celeba-gan train --out .*signal-\w+\/runs\/demo-seed28 --resume/);
      const run = join(dir, 'runs', 'demo-seed28');
      assert.ok(
        readdirSync(join(run, 'checkpoints')).some((d) => d.startsWith('step-')),
        'a checkpoint was saved',
      );
      assert.equal(existsSync(join(dir, 'models', 'demo-seed28.onnx')), false, 'no export after the signal');
      assert.equal(existsSync(join(dir, 'faces')), false);
    } finally {
      running.child.kill('SIGKILL');
    }
  });
}

test('demo --engine tfjs picks its width from the tfjs backend (pure JS: 0.03125, batch 16)', async () => {
  const dir = join(root, 'tfjs');
  const r = await runCli(['demo', '--out', dir, '--engine', 'tfjs', '--minutes', '5', '--steps', '1', '--synthetic', '64', '--faces', '4'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /engine tfjs \(/);
  // Which tfjs backend loads here decides the width: the pure-JS one gets the narrow network.
  const { backend } = await loadTfjs('auto');
  if (backend === 'cpu') assert.match(r.stderr, /seed28 at width 0\.03125, batch 16: pure-JS tfjs is slow/);
  else assert.match(r.stderr, /seed28 at width 0\.25, batch 32/);
  const session = await openGenerator(join(dir, 'models', 'demo-seed28.onnx'), { provider: 'cpu' });
  try {
    assert.equal(session.info.step, 1);
  } finally {
    await session.close();
  }
});

for (const [args, message] of [
  [['--minutes', '0'], /Expected number > 0 and <= 1440 for minutes but received 0/],
  [['--engine', 'jax'], /Unsupported engine "jax" of type string. Should be one of: auto, tfjs, torch/],
  [['--synthetic', '3'], /for synthetic but received 3/],
] as const) {
  test(`ERROR PATH - demo ${args.join(' ')}: usage error before any work`, async () => {
    const dir = join(root, `bad-${args[0].slice(2)}`);
    const r = await runCli(['demo', '--out', dir, ...args], { cwd: root });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(existsSync(dir), false, 'nothing written');
  });
}
