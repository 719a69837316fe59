import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_RECIPE, demoSpec } from '../../src/config/demo.js';
import { buildSpec } from '../../src/config/presets.js';
import { META } from '../../src/onnx/metadata.js';
import { decodeModel } from '../../src/onnx/onnx-proto.js';
import { tempDir } from '../inference/fixtures.js';
import { runCli } from '../inference/run-cli.js';

/**
 * The demo trains with an EMA generator, exports it (so its grid comes from it) and prints SWD
 * and the colour distance at the first and the last sample beside the real-halves baseline.
 */

const root = tempDir('cg-demo-ema-');
test.after(() => rmSync(root, { recursive: true, force: true }));

test('demo: EMA generator exported and gridded; SWD and colour distance at the first and last sample beside the real-halves baseline', async () => {
  const out = join(root, 'demo');
  const r = await runCli(
    ['demo', '--out', out, '--minutes', '5', '--steps', '3', '--synthetic', '64', '--width', '0.03125', '--batch-size', '8', '--faces', '4'],
    { cwd: root },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /exported step 3 \(EMA generator\)/);
  assert.match(r.stdout, /grid .*grid\.png {2}\(from the EMA generator\)/);
  // 64 faces: n = 32 per set.
  const base = /real-halves baseline \(32 real vs 32 others\) is SWD (\d+\.\d), colour (\d+\.\d)/.exec(r.stdout);
  assert.ok(base, r.stdout);
  const line = (label: RegExp): number[] => {
    const m = new RegExp(`${label.source}\\s+SWD\\s+(\\d+\\.\\d) \\((\\d+\\.\\d\\d)x baseline\\)\\s+colour\\s+(\\d+\\.\\d)`).exec(r.stdout);
    assert.ok(m, `${label} in ${r.stdout}`);
    return [Number(m[1]), Number(m[2]), Number(m[3])];
  };
  const first = line(/first sample \(step 0\)/);
  const ema = line(/last sample \(step 3\), EMA/);
  line(/last sample \(step 3\), raw/);
  // The ratio printed is SWD / baseline.
  assert.ok(Math.abs(first[0]! / Number(base[1]) - first[1]!) < 0.01);
  // An untrained generator is far from real faces (flat-ish, grey): several times the baseline.
  // (At this test's small n the baseline's 14 px detail level is mostly sampling noise, which
  // lifts the baseline: 2.85x measured with SWD's two levels at 28 px.)
  assert.ok(first[1]! > 2.4, `first sample at ${first[1]}x baseline`);
  assert.ok(Number.isFinite(ema[0]));
  // Where the time after training goes: all SWD in one pass (the baseline computed once), then export and faces.
  assert.match(
    r.stdout,
    /time {3}data \d+\.\d s, training \d+ s, then \d+\.\d s: SWD \+ colour \d+\.\d s \(onnxruntime \(MLAS Gemm, cpu\)\), export \d+\.\d s, faces \d+\.\d s/,
  );
  const model = decodeModel(readFileSync(join(out, 'models', 'demo-seed28.onnx')));
  const meta = Object.fromEntries(model.metadata_props.map((p) => [p.key, p.value]));
  assert.equal(meta[META.weights], 'ema');
  assert.equal(meta[META.emaDecay], String(DEMO_RECIPE.ema));
});

test('the demo recipe is its own config: seed28 networks, its own Adam settings; the seed28 preset is unchanged', () => {
  const demo = demoSpec(0.125);
  const faithful = buildSpec('seed28', 0.125);
  assert.deepEqual(demo.generator, faithful.generator);
  assert.deepEqual(demo.discriminator, faithful.discriminator);
  assert.equal(demo.training.learningRate, DEMO_RECIPE.learningRate);
  assert.equal(demo.training.beta1, DEMO_RECIPE.beta1);
  assert.equal(faithful.training.learningRate, 0.00025);
  assert.equal(faithful.training.beta1, 0.45);
});
