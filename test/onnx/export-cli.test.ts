import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { cli } from '../support/in-process.js';
import { injectFsError } from '../support/inject.js';
import { buildSpec } from '../../src/config/presets.js';
import { openGenerator } from '../../src/inference/session.js';
import { META } from '../../src/onnx/metadata.js';
import { decodeModel } from '../../src/onnx/onnx-proto.js';
import { exportRun } from '../../src/train/export-run.js';
import { listCheckpoints, MANIFEST_FILE } from '../../src/train/checkpoint.js';
import { makeRun } from './fixtures.js';
import { randomZ, runOnnx } from '../support/onnx.js';

/** `celeba-gan export` through main(), in a scratch working directory. */

function metadataOf(path: string): Record<string, string> {
  return Object.fromEntries(decodeModel(readFileSync(path)).metadata_props.map((p) => [p.key, p.value]));
}

const home = process.cwd();
let dir: string;
const spec = buildSpec('seed28', 0.0625);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'celeba-gan-export-cli-'));
});
after(() => {
  process.chdir(home);
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  process.chdir(home);
  rmSync(join(dir, 'ws'), { recursive: true, force: true });
  mkdirSync(join(dir, 'ws'));
  process.chdir(join(dir, 'ws'));
});

describe('celeba-gan export: defaults', () => {
  test('`export --onnx` alone exports the newest run to models/<run>.onnx and says what it picked', async () => {
    makeRun('runs/older', spec, 1, [5]);
    const past = new Date(Date.now() - 60_000);
    utimesSync('runs/older', past, past);
    makeRun('runs/celeba28', spec, 2, [10, 20]);
    const r = await cli('export', '--onnx');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /run runs\/celeba28 \(newest of 2 runs with checkpoints in runs\/\)/);
    assert.match(r.stderr, /models\/celeba28\.onnx/);
    assert.match(r.stdout, /^wrote models\/celeba28\.onnx\n/);
    assert.match(r.stdout, /step 20 of runs\/celeba28; opset 17/);
    assert.match(r.stdout, /MB \(float32 weights [\d.]+ MB\), [\d.]+ s/);
    const meta = metadataOf('models/celeba28.onnx');
    assert.equal(meta[META.step], '20');
    assert.equal(meta[META.preset], 'seed28');
    const manifest = JSON.parse(readFileSync(join(listCheckpoints('runs/celeba28').at(-1)!.dir, MANIFEST_FILE), 'utf8')) as { files: Record<string, string> };
    assert.equal(meta[META.checkpointSha256], manifest.files['weights.safetensors']);
  });

  test('`export` with no flags does the same; a second export of the same checkpoint says "unchanged"', async () => {
    makeRun('runs/a', spec, 3, [10]);
    const first = await cli('export');
    assert.equal(first.code, 0, first.stderr);
    assert.ok(existsSync('models/a.onnx'));
    const bytes = readFileSync('models/a.onnx');
    const second = await cli('export', '--onnx');
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^models\/a\.onnx unchanged/);
    assert.deepEqual(readFileSync('models/a.onnx'), bytes);
  });

  test('--run, --onnx <path>, --checkpoint <step>, --fold-batchnorm and --opset are honoured', async () => {
    makeRun('elsewhere/r1', spec, 4, [10, 20]);
    const r = await cli('export', '--run', 'elsewhere/r1', '--onnx', 'out/deep/m.onnx', '--checkpoint', '10', '--fold-batchnorm', '--opset', '13');
    assert.equal(r.code, 0, r.stderr);
    // Nothing picked; the fixture checkpoint has no EMA generator, which one note says.
    assert.match(r.stderr, /^celeba-gan: note: checkpoint \S+step-000000010 has no EMA generator .*exported the raw weights\n$/);
    const model = decodeModel(readFileSync('out/deep/m.onnx'));
    const meta = Object.fromEntries(model.metadata_props.map((p) => [p.key, p.value]));
    assert.equal(meta[META.step], '10');
    assert.equal(meta[META.batchNorm], 'folded');
    assert.equal(model.opset_import[0]!.version, 13);
    assert.equal(model.ir_version, 7);
  });
});

describe('hand-off to generate', () => {
  test('an exported file opens with openGenerator (src/inference/session.ts), which reads every fact from its metadata', async () => {
    makeRun('runs/handoff', buildSpec('dcgan64', 0.0625), 12, [30]);
    const r = await cli('export', '--onnx');
    assert.equal(r.code, 0, r.stderr);
    const session = await openGenerator('models/handoff.onnx', { provider: 'cpu' });
    try {
      const info = session.info;
      assert.deepEqual(
        [info.preset, info.width, info.zDim, info.latent, info.image, info.layout, info.outputRange, info.step],
        ['dcgan64', 0.0625, 100, 'normal', { channels: 3, height: 64, width: 64 }, 'NCHW', [-1, 1], 30],
      );
      assert.match(info.checkpointSha256 ?? '', /^[0-9a-f]{64}$/);
      const z = randomZ(1, 2, 100, 'normal');
      const viaSession = await session.run(z, 2);
      const direct = await runOnnx(readFileSync('models/handoff.onnx'), z, 2, 100);
      assert.deepEqual(viaSession, direct.data);
    } finally {
      await session.close();
    }
  });
});

describe('celeba-gan export: errors', () => {
  test('ERROR PATH - no run anywhere: usage error naming `celeba-gan train`', async () => {
    const r = await cli('export', '--onnx');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /error \[E_NO_RUN\]: no training run found in runs\//);
    assert.match(r.stderr, /celeba-gan train/);
  });

  test('ERROR PATH - --run of a missing folder', async () => {
    const r = await cli('export', '--run', 'runs/nope', '--onnx', 'x.onnx');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\[E_NO_RUN\]: run folder runs\/nope does not exist/);
    assert.match(r.stderr, /celeba-gan train/);
  });

  test('ERROR PATH - --run naming a file says it is a file, not a run folder', async () => {
    makeRun('runs/a', spec, 3, [10]);
    const r = await cli('export', '--run', 'runs/a/run.json', '--onnx', 'x.onnx');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\[E_NO_RUN\]: runs\/a\/run\.json is a file, not a run folder\n/);
    assert.match(r.stderr, /not a file inside it/);
    assert.doesNotMatch(r.stderr, /does not exist/);
  });

  test('ERROR PATH - export on a full disk: E_NO_SPACE naming the .onnx path, the old model kept, no temp file', async () => {
    makeRun('runs/a', spec, 4, [10, 20]);
    assert.equal((await cli('export', '--onnx', '--checkpoint', '10')).code, 0);
    const before = readFileSync('models/a.onnx');
    const restore = injectFsError('writeSync', 'ENOSPC');
    let r;
    try {
      r = await cli('export', '--onnx', '--force');
    } finally {
      restore();
    }
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /error \[E_NO_SPACE\]: cannot write models\/a\.onnx: no space left on the device holding models\/a\.onnx \(ENOSPC\)\n {2}Free some space/,
    );
    assert.doesNotMatch(r.stderr, /unexpected error|\.tmp/);
    assert.deepEqual(readFileSync('models/a.onnx'), before);
    assert.deepEqual(readdirSync('models'), ['a.onnx']);
  });

  test('ERROR PATH - --onnx under a file: E_NOT_FOLDER naming the path (a real ENOTDIR)', async () => {
    makeRun('runs/a', spec, 4, [10]);
    writeFileSync('plain', 'x');
    const r = await cli('export', '--run', 'runs/a', '--onnx', 'plain/m.onnx');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /error \[E_NOT_FOLDER\]: cannot create the folder plain: /);
  });

  test('ERROR PATH - a folder without run.json is not a run', async () => {
    mkdirSync('notarun');
    const r = await cli('export', '--run', 'notarun');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\[E_NO_RUN\]: notarun is not a training run: it has no run\.json/);
  });

  test('ERROR PATH - a run without checkpoints, and a step it does not have', async () => {
    makeRun('runs/empty', spec, 5, []);
    const none = await cli('export', '--run', 'runs/empty');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /\[E_NO_CHECKPOINT\]: runs\/empty has no checkpoints/);
    assert.match(none.stderr, /celeba-gan train/);
    makeRun('runs/two', spec, 5, [10, 20]);
    const missing = await cli('export', '--run', 'runs/two', '--checkpoint', '15');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /\[E_NO_CHECKPOINT\]: .*no checkpoint for step 15; it has steps 10, 20/);
    const bad = await cli('export', '--run', 'runs/two', '--checkpoint', 'newest');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /\[E_BAD_ARGUMENT\]: Expected `latest` or a step number for checkpoint but received "newest" of type string/);
  });

  test('ERROR PATH - a checkpoint of an unknown format version', async () => {
    makeRun('runs/future', spec, 6, [10]);
    const manifestPath = join(listCheckpoints('runs/future')[0]!.dir, MANIFEST_FILE);
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, formatVersion: 99, packageVersion: '9.9.9' }));
    const r = await cli('export', '--run', 'runs/future');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[E_CHECKPOINT_VERSION\]: .*format version 99/);
    assert.ok(!existsSync('models/future.onnx'));
  });

  for (const opset of ['12', '22', 'abc']) {
    test(`ERROR PATH - --opset ${opset} names the supported range`, async () => {
      makeRun('runs/a', spec, 7, [10]);
      const r = await cli('export', '--onnx', '--opset', opset);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /\[E_OPSET\]: Expected integer between 13 and 21 for opset/);
      assert.ok(!existsSync('models'));
    });
  }

  test('ERROR PATH - a different existing file is kept without --force, replaced with it', async () => {
    makeRun('runs/a', spec, 8, [10, 20]);
    assert.equal((await cli('export', '--onnx', '--checkpoint', '10')).code, 0);
    const before = readFileSync('models/a.onnx');
    const r = await cli('export', '--onnx');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\[E_OUTPUT_EXISTS\]: models\/a\.onnx already exists and holds a different model/);
    assert.match(r.stderr, /--force/);
    assert.deepEqual(readFileSync('models/a.onnx'), before);
    const forced = await cli('export', '--onnx', '--force');
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(metadataOf('models/a.onnx')[META.step], '20');
  });

  test('ERROR PATH - exportRun reports errors with name and code (library, no printing)', async () => {
    await assert.rejects(exportRun({ runDir: 'runs/missing', out: 'm.onnx' }), { name: 'CelebaGanError', code: 'E_NO_RUN' });
    makeRun('runs/a', spec, 9, [10]);
    await assert.rejects(exportRun({ runDir: 'runs/a', out: 'm.onnx', opset: 9 }), { name: 'UsageError', code: 'E_OPSET' });
    mkdirSync('models/taken.onnx', { recursive: true });
    await assert.rejects(exportRun({ runDir: 'runs/a', out: 'models/taken.onnx', force: true }), { name: 'CelebaGanError', code: 'E_OUTPUT_EXISTS' });
  });
});
