import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { META } from '../../src/onnx/metadata.js';
import { decodeModel } from '../../src/onnx/onnx-proto.js';
import { readRunConfig } from '../../src/train/index.js';
import { runCli } from '../inference/run-cli.js';

/** `train --ema` and `export --weights` from the command line: messages, exit codes, files. */

let root: string;
let data: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cg-ema-cli-'));
  data = join(root, 'faces-28.cgds');
  await prepareSynthetic({ count: 12, out: data, size: 28, seed: 2 });
});
after(() => rmSync(root, { recursive: true, force: true }));

const tiny = ['--width', '0.03125', '--batch-size', '4', '--engine', 'tfjs', '--backend', 'cpu', '--log-every', '1'];

test('BAD CALL - train --ema outside [0, 1) and export --weights other than ema|raw: E_BAD_ARGUMENT, exit 2, nothing written', async () => {
  for (const bad of ['1', '-0.5', '1.5']) {
    const out = join(root, `bad${bad}`);
    const r = await runCli(['train', '--data', data, '--out', out, '--steps', '1', '--seed', '1', '--ema', bad, ...tiny]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /E_BAD_ARGUMENT.*Expected a number in \[0, 1\) for ema but received/);
    assert.ok(!existsSync(out), `${out} not created`);
  }
  const r = await runCli(['export', '--run', join(root, 'nowhere'), '--onnx', join(root, 'x.onnx'), '--weights', 'best']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /error \[E_BAD_ARGUMENT\]: Unsupported weights "best" .*Should be one of: ema, raw/);
});

test('train --ema 0, then --resume --ema 0.999: the note says the EMA starts from the raw weights; export writes the EMA generator', async () => {
  const out = join(root, 'run');
  const first = await runCli(['train', '--data', data, '--out', out, '--steps', '2', '--seed', '9', '--ema', '0', '--sample-every', '2', ...tiny]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(readRunConfig(out)!.ema, 0);
  assert.deepEqual(readdirSync(join(out, 'samples')).sort(), ['step-000000.png', 'step-000002.png']);
  const resumed = await runCli([
    'train',
    '--out',
    out,
    '--resume',
    '--steps',
    '3',
    '--ema',
    '0.999',
    '--engine',
    'tfjs',
    '--backend',
    'cpu',
    '--sample-every',
    '3',
  ]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /note: checkpoint \S+step-000000002 has no EMA generator: the EMA starts from its raw weights at step 2/);
  assert.ok(existsSync(join(out, 'samples', 'step-000003-ema.png')));
  const exported = await runCli(['export', '--run', out, '--onnx', join(root, 'm.onnx')]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.match(exported.stdout, /step 3 of .*; the EMA generator/);
  const meta = Object.fromEntries(decodeModel(readFileSync(join(root, 'm.onnx'))).metadata_props.map((p) => [p.key, p.value]));
  assert.equal(meta[META.weights], 'ema');
  assert.equal(meta[META.emaDecay], '0.999');
});
