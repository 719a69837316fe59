import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { gridRequests } from '../../src/cli/demo-attributes.js';
import { SYNTHETIC_ATTRIBUTES } from '../../src/data/synthetic.js';
import { openGenerator } from '../../src/inference/session.js';
import { tempDir } from '../inference/fixtures.js';
import { runCli } from '../inference/run-cli.js';

/**
 * `celeba-gan demo --attributes`, tiny (64 synthetic faces, a 2-step run of the narrowest seed28):
 * a conditional model on the synthetic attributes, its classifier's held-out accuracy, the
 * average agreement in the summary and a grid with a row per attribute setting.
 */

const root = tempDir('cg-demo-attr-');
test.after(() => rmSync(root, { recursive: true, force: true }));

test('demo --attributes trains the conditional recipe, prints the average agreement and writes a row per attribute setting', async () => {
  const out = join(root, 'demo');
  const r = await runCli(
    ['demo', '--attributes', '--out', out, '--minutes', '5', '--steps', '2', '--synthetic', '64', '--width', '0.03125', '--batch-size', '8', '--faces', '4'],
    { cwd: root },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`--attributes: the conditional demo28 recipe on 10 attributes \\(${SYNTHETIC_ATTRIBUTES.join(', ')}\\)`));
  // 64 faces: the classifier trains on 48 and is scored on the last 16.
  assert.match(r.stderr, /training the attribute classifier on the demo's faces/);
  const accuracy = /held-out accuracy (\d+\.\d)% on average/.exec(r.stderr);
  assert.ok(accuracy, r.stderr);

  // The summary: the average, the classifier's accuracy beside it, each attribute's figure.
  const summary =
    /attributes: average agreement (\d+\.\d)% \(50 faces with and 50 without each attribute, read by a classifier of (\d+\.\d)% held-out accuracy on real faces\)/.exec(
      r.stdout,
    );
  assert.ok(summary, r.stdout);
  assert.equal(summary[2], accuracy[1]);
  const per = [...r.stdout.matchAll(/(\w+) (\d+\.\d)%(?:,|\n)/g)].filter((m) => SYNTHETIC_ATTRIBUTES.includes(m[1]!));
  assert.deepEqual(
    per.map((m) => m[1]),
    [...SYNTHETIC_ATTRIBUTES],
  );
  const mean = per.reduce((s, m) => s + Number(m[2]), 0) / per.length;
  // Each figure is printed to 0.1%: their mean is within 0.05% of the printed average.
  assert.ok(Math.abs(mean - Number(summary[1])) <= 0.05 + 1e-9, `mean of ${per.map((m) => m[2]).join(', ')} vs ${summary[1]}`);
  assert.match(r.stdout, /time {3}data .* agreement \+ grid \d+\.\d s/);

  // The exported model is conditional on the synthetic attributes.
  const session = await openGenerator(join(out, 'models', 'demo-seed28.onnx'), { provider: 'cpu' });
  try {
    assert.deepEqual(session.info.attributes?.names, [...SYNTHETIC_ATTRIBUTES]);
  } finally {
    await session.close();
  }
  const run = JSON.parse(readFileSync(join(out, 'runs', 'demo-seed28', 'run.json'), 'utf8'));
  assert.deepEqual(run.spec.conditioning.attributes, [...SYNTHETIC_ATTRIBUTES]);

  // The grid: a row per attribute setting (the faces as drawn, then each attribute at its rarer
  // setting), 8 faces each at 4x, 2 px gaps.
  const rows = /grid rows \(.*grid\.png\): (.*)/.exec(r.stdout);
  assert.ok(rows, r.stdout);
  const names = rows[1]!.split(' | ');
  assert.equal(names.length, 1 + SYNTHETIC_ATTRIBUTES.length);
  assert.equal(names[0], '(as drawn)');
  assert.ok(names.includes('-No_Beard'), 'No_Beard (most faces) is shown at its rarer setting');
  assert.ok(names.includes('Eyeglasses'));
  const grid = await sharp(join(out, 'grid.png')).metadata();
  assert.deepEqual([grid.width, grid.height], [8 * 112 + 9 * 2, names.length * 112 + (names.length + 1) * 2]);
});

test('the grid shows each attribute at its rarer setting, after the faces as drawn', () => {
  const requests = gridRequests({ names: ['Smiling', 'No_Beard', 'Bangs'], frequencies: [0.3, 0.9, 0.5], rows: null });
  assert.deepEqual(requests, ['', 'Smiling', '-No_Beard', 'Bangs']);
});

test('ERROR PATH - demo --attributes --minutes 0: usage error before any work', async () => {
  const dir = join(root, 'bad');
  const r = await runCli(['demo', '--attributes', '--out', dir, '--minutes', '0'], { cwd: root });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /Expected number > 0 and <= 1440 for minutes but received 0/);
  assert.equal(existsSync(dir), false, 'nothing written');
});
