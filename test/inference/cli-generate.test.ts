import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { checkProvider } from '../../src/bindings/onnxruntime.js';
import { tempDir, writeTinyModel } from './fixtures.js';
import { residentBytes, runCli, startCli, until, type CliResult } from './run-cli.js';

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
  const lines = readFileSync(join(dir, 'manifest.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
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
  assert.deepEqual(
    readdirSync(join(cwd, 'one')).filter((f) => f.startsWith('face-')),
    ['face-000417.png'],
  );
  assert.deepEqual(readFileSync(join(cwd, 'one', 'face-000417.png')), readFileSync(join(dir, 'face-000417.png')));

  // Running the same command again refuses to overwrite (exit 2), naming the first file.
  const twice = await cli('generate', '--n', '1000', '--provider', 'cpu', '--seed', '11');
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /error \[E_OUTPUT_EXISTS\]: out\/tiny\/face-000000\.png already exists; not overwriting it/);
  assert.doesNotMatch(twice.stderr, /the rest/, 'nothing written, so no rest command');
});

test('ERROR PATH - generate --n 1000 --provider cuda without the CUDA provider: exit 1, how to get it', async (t) => {
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
  { args: ['--device', '-1'], message: /\[E_BAD_ARGUMENT\]: Expected integer between 0 and 255 for device but received -1 of type number/ },
  { args: ['--provider', 'gpu'], message: /\[E_BAD_PROVIDER\]: Unsupported provider "gpu". Should be one of: auto, cuda, dml, cpu/ },
  { args: ['--format', 'bmp'], message: /Unsupported format "bmp" of type string. Should be one of: png, jpeg, webp/ },
  { args: ['--model', 'models/missing.onnx'], message: /\[E_MODEL_NOT_FOUND\]: cannot read model models\/missing\.onnx: no such file/ },
  {
    args: ['--model', 'models/tiny.onnx', '--out', 'models/tiny.onnx/sub'],
    message: /\[E_NOT_FOLDER\]: cannot create the output folder models\/tiny\.onnx\/sub/,
  },
  { args: ['--shard', '3/2'], message: /\[E_BAD_SHARD\]: Expected a shard index K between 0 and 1 \(shards are numbered from 0\) but received --shard 3\/2/ },
  { args: ['--shard', '0/0'], message: /\[E_BAD_SHARD\]: Expected a shard count N >= 1 but received --shard 0\/0/ },
  { args: ['--shard', 'half'], message: /\[E_BAD_SHARD\]: Expected --shard K\/N \(e\.g\. 0\/4\) but received "half"/ },
  { args: ['--shards', '2'], message: /\[E_SHARD_INDEX_MISSING\]: --shards 2 needs the shard index in JOB_COMPLETION_INDEX, which is not set/ },
  { args: ['--shard', '1/2', '--shards', '2'], message: /\[E_BAD_SHARD\]: --shard and --shards cannot be used together/ },
  { args: ['--shard', '0/2', '--grid'], message: /\[E_BAD_ARGUMENT\]: --grid cannot be combined with --shard/ },
];
for (const u of usage) {
  test(`ERROR PATH - generate ${u.args.join(' ')}: usage error, exit 2`, async () => {
    const r = await runCli(['generate', ...u.args], { env: withoutShardIndex() });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, u.message);
  });
}

test('ERROR PATH - generate with no model anywhere names the command to run first', async () => {
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

function withoutShardIndex(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('JOB_COMPLETION_INDEX' in extra)) delete env.JOB_COMPLETION_INDEX;
  return env;
}

function faceCount(dir: string): number {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('face-')).length : 0;
}

test(
  'generate -n 1e9 streams: files appear, memory stays bounded, a second run is locked out, Ctrl-C exits 130 with the rest',
  { timeout: 180_000 },
  async () => {
    const running = startCli([
      'generate',
      '--model',
      'models/tiny.onnx',
      '--n',
      '1000000000',
      '--out',
      'huge',
      '--seed',
      '3',
      '--batch-size',
      '32',
      '--provider',
      'cpu',
    ]);
    const dir = join(cwd, 'huge');
    try {
      await until(() => faceCount(dir) >= 64, running.child);
      assert.ok(faceCount(dir) >= 64, `files appear before anything proportional to n is built (stderr: ${running.stderr()})`);
      const early = residentBytes(running.child.pid!);
      await until(() => faceCount(dir) >= 1000, running.child);
      const later = residentBytes(running.child.pid!);
      if (early !== null && later !== null) {
        // 1e9 names alone would be tens of GB; the pipeline holds a batch or two of 32 tiny faces.
        assert.ok(later < 600 * 2 ** 20, `RSS ${(later / 2 ** 20).toFixed(0)} MB after 1000 faces`);
        assert.ok(later - early < 150 * 2 ** 20, `RSS grew by ${((later - early) / 2 ** 20).toFixed(0)} MB between 64 and 1000 faces`);
      }

      const second = await runCli(['generate', '--model', 'models/tiny.onnx', '--n', '5', '--out', 'huge', '--seed', '4']);
      assert.equal(second.code, 2, second.stderr);
      assert.match(
        second.stderr,
        new RegExp(`\\[E_OUTPUT_LOCKED\\]: huge is in use by another generate run: pid ${running.child.pid} on .* holds huge/generate\\.lock`),
      );

      running.child.kill('SIGINT');
      const r = await running.result;
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /SIGINT: writing the batches already computed, then stopping; press Ctrl-C again to quit at once/);
      const rest = /the rest: celeba-gan generate --model models\/tiny\.onnx --out huge --seed 3 --index (\d+) --n (\d+) --batch-size 32/.exec(r.stderr);
      assert.ok(rest, r.stderr);
      const files = faceCount(dir);
      assert.equal(Number(rest[1]), files, 'the rest starts after the last file written');
      assert.equal(Number(rest[1]) + Number(rest[2]), 1_000_000_000);
      const lines = readFileSync(join(dir, 'manifest.jsonl'), 'utf8').trim().split('\n');
      assert.equal(lines.length, files, 'one manifest line per file');
      assert.equal(existsSync(join(dir, 'generate.lock')), false, 'lock released');
    } finally {
      running.child.kill('SIGKILL');
    }
  },
);

test('generate: SIGTERM finishes the computed batches and exits 143', { timeout: 120_000 }, async () => {
  const running = startCli([
    'generate',
    '--model',
    'models/tiny.onnx',
    '--n',
    '1000000',
    '--out',
    'term',
    '--seed',
    '3',
    '--batch-size',
    '16',
    '--provider',
    'cpu',
  ]);
  try {
    await until(() => faceCount(join(cwd, 'term')) >= 16, running.child);
    running.child.kill('SIGTERM');
    const r = await running.result;
    assert.equal(r.code, 143, r.stderr);
    assert.match(r.stderr, /SIGTERM: writing the batches already computed, then stopping; send SIGTERM again to quit at once/);
    assert.match(r.stderr, /the rest: celeba-gan generate .* --index \d+ --n \d+/);
  } finally {
    running.child.kill('SIGKILL');
  }
});

test('generate --shards N with JOB_COMPLETION_INDEX: the shards together are the unsharded run, byte for byte', async () => {
  const whole = await runCli(['generate', '--model', 'models/tiny.onnx', '--n', '11', '--out', 'whole', '--seed', '5', '--batch-size', '4']);
  assert.equal(whole.code, 0, whole.stderr);
  for (const k of [0, 1, 2]) {
    const r = await runCli(['generate', '--model', 'models/tiny.onnx', '--n', '11', '--out', 'sharded', '--seed', '5', '--shards', '3'], {
      env: withoutShardIndex({ JOB_COMPLETION_INDEX: String(k) }),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`shard ${k}/3: faces face-`));
    assert.match(r.stdout, new RegExp(`manifest sharded/manifest-shard-${k}-of-3\\.jsonl`));
  }
  const names = readdirSync(join(cwd, 'whole'))
    .filter((f) => f.startsWith('face-'))
    .sort();
  assert.equal(names.length, 11);
  assert.deepEqual(
    readdirSync(join(cwd, 'sharded'))
      .filter((f) => f.startsWith('face-'))
      .sort(),
    names,
  );
  for (const f of names) assert.deepEqual(readFileSync(join(cwd, 'sharded', f)), readFileSync(join(cwd, 'whole', f)), f);
  const bad = await runCli(['generate', '--model', 'models/tiny.onnx', '--n', '11', '--out', 'sharded', '--seed', '5', '--shards', '3'], {
    env: withoutShardIndex({ JOB_COMPLETION_INDEX: '3' }),
  });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /\[E_BAD_SHARD\]: Expected a shard index K between 0 and 2 .* but received JOB_COMPLETION_INDEX=3 with --shards 3/);
});

test('ERROR PATH - a conflict in the middle of a run: exit 2, the files before it listed, and the command for the rest', async () => {
  const dir = join(cwd, 'conflict');
  mkdirSync(dir);
  writeFileSync(join(dir, 'face-000010.png'), 'mine');
  const r = await cli('generate', '--model', 'models/tiny.onnx', '--n', '30', '--out', 'conflict', '--seed', '8', '--batch-size', '4');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /\[E_OUTPUT_EXISTS\]: conflict\/face-000010\.png already exists; not overwriting it/);
  assert.match(
    r.stderr,
    /wrote 10 faces \(each listed in the manifest\) before this error; the rest, once it is fixed:\n {2}celeba-gan generate --model models\/tiny\.onnx --out conflict --seed 8 --index 10 --n 20 --batch-size 4\n/,
  );
  assert.equal(readFileSync(join(dir, 'manifest.jsonl'), 'utf8').trim().split('\n').length, 10);
  assert.equal(readFileSync(join(dir, 'face-000010.png'), 'utf8'), 'mine');
});

test(
  'ERROR PATH - generate rerun after a kill -9: the stale lock is taken over with a note, and the error names the index to resume from',
  { timeout: 120_000 },
  async () => {
    const args = ['generate', '--model', 'models/tiny.onnx', '--n', '1000000', '--out', 'killed', '--seed', '6', '--batch-size', '16', '--provider', 'cpu'];
    const running = startCli(args);
    const dir = join(cwd, 'killed');
    try {
      await until(() => faceCount(dir) >= 32, running.child);
      running.child.kill('SIGKILL');
      await running.result;
    } finally {
      running.child.kill('SIGKILL');
    }
    assert.ok(existsSync(join(dir, 'generate.lock')), 'kill -9 leaves the lock behind');
    const listed = readFileSync(join(dir, 'manifest.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.endsWith('}')).length;
    assert.ok(listed >= 32);

    const rerun = await runCli(args);
    assert.equal(rerun.code, 2, rerun.stderr);
    assert.match(rerun.stderr, new RegExp(`celeba-gan: took over the stale lock killed/generate\\.lock of pid ${running.child.pid} .*it no longer runs`));
    assert.match(rerun.stderr, /\[E_OUTPUT_EXISTS\]: killed\/face-000000\.png already exists; not overwriting it/);
    const hint = new RegExp(
      `killed/manifest\\.jsonl lists ${listed} faces \\(the last of seed 6 is index ${listed - 1}\\): continue after them with --index (\\d+)`,
    ).exec(rerun.stderr);
    assert.ok(hint, rerun.stderr);
    // The listed faces, or one more when the kill fell between a face's write and its line.
    const next = Number(hint[1]);
    assert.ok(next === listed || next === listed + 1, `--index ${next} after ${listed} listed faces`);
    assert.equal(existsSync(join(dir, 'generate.lock')), false, 'the rerun released the lock it took over');

    const resumed = await runCli([...args.slice(0, 3), '--n', '8', '--index', String(next), ...args.slice(5)]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.ok(existsSync(join(dir, `face-${String(next + 7).padStart(6, '0')}.png`)));
  },
);
