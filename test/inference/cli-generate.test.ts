import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { checkProvider } from '../../src/bindings/onnxruntime.js';
import { tempDir, writeTinyModel } from './fixtures.js';
import { runCli, type CliResult } from './run-cli.js';

/**
 * `celeba-gan generate` through the real CLI entry (in a child process), in a scratch working folder
 * laid out like a project: models/tiny.onnx, defaults out/tiny/.
 */

const cwd = tempDir('cg-cli-generate-');
writeTinyModel(join(cwd, 'models'), 'tiny.onnx');
process.chdir(cwd);
test.after(() => {
  process.chdir(tmpdir());
  rmSync(cwd, { recursive: true, force: true });
});

function cli(...args: string[]): Promise<CliResult> {
  return runCli(args);
}

test('generate --n 1000 --provider cpu writes 1000 valid PNGs and a manifest into out/<model>/', async () => {
  const r = await cli('generate', '--n', '1000', '--provider', 'cpu', '--seed', '11', '--grid');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /model models\/tiny\.onnx \(newest of 1 model in models\/\)/);
  assert.match(r.stderr, /writing to out\/tiny\/ \(default for model tiny\.onnx\)/);
  assert.match(r.stderr, /seed 11/);
  assert.match(r.stdout, /wrote 1000 faces to out\/tiny\/ \(face-000000\.png \.\. face-000999\.png\)/);
  assert.match(r.stdout, /--seed 11 --index i/);
  const dir = join(cwd, 'out', 'tiny');
  const files = readdirSync(dir).filter((f) => /^face-\d{6}\.png$/.test(f));
  assert.equal(files.length, 1000);
  const lines = readFileSync(join(dir, 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 1000);
  assert.deepEqual(new Set(lines.map((l) => l.file)), new Set(files));
  for (const name of ['face-000000.png', 'face-000417.png', 'face-000999.png']) {
    const { data, info } = await sharp(join(dir, name)).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [28, 28, 3]);
    assert.equal(data.length, 28 * 28 * 3);
  }
  const grid = await sharp(join(dir, 'grid.png')).metadata();
  assert.equal(grid.width, 8 * 28 + 9 * 2);

  // Face 417 again, alone.
  const again = await cli('generate', '--seed', '11', '--index', '417', '--out', 'one');
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readdirSync(join(cwd, 'one')).filter((f) => f.startsWith('face-')), ['face-000417.png']);
  assert.deepEqual(readFileSync(join(cwd, 'one', 'face-000417.png')), readFileSync(join(dir, 'face-000417.png')));

  // Running the same command again refuses to overwrite (exit 2), naming the first file.
  const twice = await cli('generate', '--n', '1000', '--provider', 'cpu', '--seed', '11');
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /error \[E_OUTPUT_EXISTS\]: out\/tiny\/face-000000\.png already exists \(and 999 more\)/);
});

test('EXPECTED FAILURE - generate --n 1000 --provider cuda without the CUDA provider: exit 1, how to get it', async (t) => {
  if (checkProvider('cuda').ok) return t.skip('the CUDA provider is installed on this machine');
  const r = await cli('generate', '--n', '1000', '--provider', 'cuda', '--out', 'cuda-out');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error \[E_PROVIDER_UNAVAILABLE\]: provider "cuda" cannot be used: the CUDA provider is not installed/);
  assert.match(r.stderr, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm install onnxruntime-node/);
  assert.match(r.stderr, /CUDA 12 runtime and cuDNN 9/);
});

const usage: { args: string[]; message: RegExp }[] = [
  { args: ['--n', '0'], message: /\[E_BAD_ARGUMENT\]: Expected integer >= 1 for n but received 0 of type number/ },
  { args: ['--n', '-5'], message: /Expected integer >= 1 for n but received -5/ },
  { args: ['--n', 'many'], message: /Expected integer >= 1 for n but received NaN/ },
  { args: ['--provider', 'gpu'], message: /\[E_BAD_PROVIDER\]: Unsupported provider "gpu". Should be one of: auto, cuda, dml, cpu/ },
  { args: ['--format', 'bmp'], message: /Unsupported format "bmp" of type string. Should be one of: png, jpeg, webp/ },
  { args: ['--model', 'models/missing.onnx'], message: /\[E_MODEL_NOT_FOUND\]: cannot read model models\/missing\.onnx: no such file/ },
  { args: ['--model', 'models/tiny.onnx', '--out', 'models/tiny.onnx/sub'], message: /\[E_OUTPUT_UNWRITABLE\]: cannot write to output folder models\/tiny\.onnx\/sub/ },
];
for (const u of usage) {
  test(`EXPECTED FAILURE - generate ${u.args.join(' ')}: usage error, exit 2`, async () => {
    const r = await cli('generate', ...u.args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, u.message);
  });
}

test('EXPECTED FAILURE - generate with no model anywhere names the command to run first', async () => {
  const empty = tempDir('cg-cli-empty-');
  process.chdir(empty);
  try {
    const r = await cli('generate', '--n', '3');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\[E_NO_MODEL\]: no ONNX model found in models\//);
    assert.match(r.stderr, /celeba-gan export --onnx/);
  } finally {
    process.chdir(cwd);
    rmSync(empty, { recursive: true, force: true });
  }
});
