import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkProvider, executionProviderConfig, parseProvider, parseProviderDevice, PROVIDERS, AUTO_ORDER } from '../../src/bindings/onnxruntime.js';
import { CelebaGanError, UsageError } from '../../src/errors.js';
import { latentsFor, openGenerator, openOnnxSession } from '../../src/inference/session.js';
import { dropMetadata, fixBatch, renameInput, setMetadata, tempDir, tinyModelBytes, tinyWeights, writeTinyModel } from './fixtures.js';
import { createTfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import { readModelSummary } from '../../src/inference/model-file.js';
import { decodeModel } from '../../src/onnx/onnx-proto.js';

const dir = tempDir('cg-session-');
const modelPath = writeTinyModel(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

function writeModel(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

test('openGenerator reads the exporter metadata and runs z -> images on cpu', async () => {
  const session = await openGenerator(modelPath, { provider: 'cpu' });
  try {
    const { info } = session;
    assert.equal(session.providerUsed, 'cpu');
    assert.equal(info.preset, 'seed28');
    assert.equal(info.width, 0.03125);
    assert.equal(info.zDim, 100);
    assert.equal(info.latent, 'uniform');
    assert.deepEqual(info.image, { channels: 3, height: 28, width: 28 });
    assert.deepEqual(info.outputRange, [-1, 1]);
    assert.equal(info.step, 1234);
    assert.equal(info.checkpointSha256, 'cd'.repeat(32));
    assert.match(info.modelSha256, /^[0-9a-f]{64}$/);
    const n = 5;
    const images = await session.run(latentsFor(3, 0, n, info.zDim, info.latent), n);
    assert.equal(images.length, n * 3 * 28 * 28);
    // The faces are the training engine's: TensorFlow.js (pure-JS CPU) on the same weights and z.
    const { spec, weights } = tinyWeights();
    const engine = await createTfjsEngine(spec, { backend: 'cpu' });
    let expected: Float32Array;
    try {
      await engine.setWeights(weights);
      expected = await engine.generate(latentsFor(3, 0, n, info.zDim, info.latent), n);
    } finally {
      engine.dispose();
    }
    assert.equal(expected.length, images.length);
    let diff = 0;
    for (let i = 0; i < images.length; i++) diff = Math.max(diff, Math.abs(images[i]! - expected[i]!));
    assert.ok(diff <= 1e-4, `max |onnxruntime - tfjs| = ${diff}`);
    // Different latents give different faces.
    const plane = 3 * 28 * 28;
    assert.notDeepEqual(images.subarray(0, plane), images.subarray(plane, 2 * plane));
  } finally {
    await session.close();
  }
});

test('auto picks cpu here and says why cuda and dml were not used', async (t) => {
  if (checkProvider('cuda').ok) return t.skip('the CUDA provider is installed on this machine');
  const session = await openGenerator(modelPath, { provider: 'auto' });
  try {
    if (process.platform !== 'win32') assert.equal(session.providerUsed, 'cpu');
    const notes = session.providerNotes.join('\n');
    assert.match(notes, /^cuda: .*not installed.*ONNXRUNTIME_NODE_INSTALL=cuda12/m);
    if (process.platform !== 'win32') assert.match(notes, /^dml: DirectML needs Windows/m);
  } finally {
    await session.close();
  }
});

test('the provider table: auto tries cuda, dml, then cpu; GPUs take a device index', () => {
  assert.deepEqual([...AUTO_ORDER], ['cuda', 'dml', 'cpu']);
  assert.ok(Object.isFrozen(PROVIDERS));
  assert.deepEqual(executionProviderConfig('cuda', 1), { name: 'cuda', deviceId: 1 });
  assert.deepEqual(executionProviderConfig('dml', 0), { name: 'dml', deviceId: 0 });
  assert.equal(executionProviderConfig('cpu', 3), 'cpu');
});

test('checkProvider knows each platform', () => {
  const empty = join(dir, 'bin');
  mkdirSync(empty);
  assert.equal(checkProvider('cpu', { platform: 'darwin', arch: 'arm64' }).ok, true);
  assert.equal(checkProvider('dml', { platform: 'win32', arch: 'x64' }).ok, true);
  const dmlLinux = checkProvider('dml', { platform: 'linux', arch: 'x64' });
  assert.equal(dmlLinux.ok, false);
  assert.match(dmlLinux.reason!, /needs Windows/);
  const cudaMac = checkProvider('cuda', { platform: 'darwin', arch: 'arm64', binDir: empty });
  assert.equal(cudaMac.ok, false);
  assert.match(cudaMac.reason!, /no CUDA provider for darwin-arm64/);
  const cudaMissing = checkProvider('cuda', { platform: 'linux', arch: 'x64', binDir: empty });
  assert.equal(cudaMissing.ok, false);
  assert.match(cudaMissing.reason!, /libonnxruntime_providers_cuda\.so is missing/);
  assert.match(cudaMissing.hint!, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm install onnxruntime-node/);
  assert.match(cudaMissing.hint!, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
  assert.match(cudaMissing.hint!, /npm install-scripts approve onnxruntime-node/);
  assert.match(cudaMissing.hint!, /CUDA 12/);
  writeFileSync(join(empty, 'libonnxruntime_providers_cuda.so'), '');
  assert.equal(checkProvider('cuda', { platform: 'linux', arch: 'x64', binDir: empty }).ok, true);
  assert.match(checkProvider('cuda', { platform: 'win32', arch: 'x64', binDir: empty }).reason!, /onnxruntime_providers_cuda\.dll is missing/);
});

test('ERROR PATH - cuda asked for by name without the CUDA provider installed', async (t) => {
  if (checkProvider('cuda').ok) return t.skip('the CUDA provider is installed on this machine');
  await assert.rejects(openGenerator(modelPath, { provider: 'cuda' }), (err: CelebaGanError) => {
    assert.equal(err.name, 'CelebaGanError');
    assert.equal(err.code, 'E_PROVIDER_UNAVAILABLE');
    assert.match(err.message, /^provider "cuda" cannot be used: /);
    assert.match(err.hint!, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm install onnxruntime-node/);
    return true;
  });
});

test('ERROR PATH - dml asked for by name off Windows', async (t) => {
  if (process.platform === 'win32') return t.skip('DirectML exists on Windows');
  await assert.rejects(openGenerator(modelPath, { provider: 'dml' }), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_PROVIDER_UNAVAILABLE');
    assert.match(err.message, /provider "dml" cannot be used: DirectML needs Windows/);
    return true;
  });
});

test('BAD CALL - unknown provider names', async () => {
  for (const bad of ['gpu', 'CUDA', '', 'tensorrt']) {
    assert.throws(
      () => parseProvider(bad),
      (err: UsageError) => {
        assert.equal(err.name, 'UsageError');
        assert.equal(err.code, 'E_BAD_PROVIDER');
        assert.equal(err.message, `Unsupported provider "${bad}". Should be one of: auto, cuda, dml, cpu`);
        return true;
      },
    );
  }
  await assert.rejects(openGenerator(modelPath, { provider: 'x' as never }), { name: 'UsageError', code: 'E_BAD_PROVIDER' });
  await assert.rejects(openGenerator(modelPath, { provider: 'cpu', device: -1 }), {
    name: 'UsageError',
    code: 'E_BAD_ARGUMENT',
    message: /for device but received -1/,
  });
});

test('BAD CALL - parseProviderDevice, the one --device validator of inference: an integer 0..255', () => {
  assert.equal(parseProviderDevice(0), 0);
  assert.equal(parseProviderDevice(255), 255);
  for (const bad of [-1, 256, 1.5, Number.NaN, '1', undefined]) {
    assert.throws(
      () => parseProviderDevice(bad),
      (err: UsageError) => {
        assert.equal(err.name, 'UsageError');
        assert.equal(err.code, 'E_BAD_ARGUMENT');
        assert.match(err.message, /^Expected integer between 0 and 255 for device but received /);
        return true;
      },
    );
  }
});

const full = tinyModelBytes();
const badModels: { name: string; make: () => string; code: string; message: RegExp }[] = [
  { name: 'a missing file', make: () => join(dir, 'nope.onnx'), code: 'E_MODEL_NOT_FOUND', message: /nope\.onnx: no such file/ },
  {
    name: 'a folder',
    make: () => (mkdirSync(join(dir, 'folder.onnx'), { recursive: true }), join(dir, 'folder.onnx')),
    code: 'E_MODEL_NOT_FOUND',
    message: /it is a folder/,
  },
  {
    name: 'a text file named .onnx',
    make: () => writeModel('text.onnx', 'this is not a model\n'),
    code: 'E_MODEL_NOT_ONNX',
    message: /text\.onnx is not an ONNX model/,
  },
  { name: 'an empty file', make: () => writeModel('empty.onnx', ''), code: 'E_MODEL_NOT_ONNX', message: /not an ONNX model/ },
  { name: 'a truncated model', make: () => writeModel('cut.onnx', full.subarray(0, full.length >> 1)), code: 'E_MODEL_NOT_ONNX', message: /not an ONNX model/ },
  {
    name: 'a model lacking input z',
    make: () => writeModel('noz.onnx', tinyModelBytes({ edit: renameInput('noise') })),
    code: 'E_MODEL_IO',
    message: /has no input "z" \(inputs: noise\)/,
  },
  {
    name: 'a model without celeba-gan metadata',
    make: () => writeModel('nometa.onnx', tinyModelBytes({ edit: dropMetadata('celeba_gan.z_dim', 'celeba_gan.latent') })),
    code: 'E_MODEL_METADATA',
    message: /missing celeba_gan\.z_dim, celeba_gan\.latent/,
  },
  {
    name: 'metadata with an unknown latent',
    make: () => writeModel('latent.onnx', tinyModelBytes({ edit: setMetadata('celeba_gan.latent', 'cauchy') })),
    code: 'E_MODEL_METADATA',
    message: /bad celeba_gan\.latent: expected "uniform" or "normal" but found "cauchy"/,
  },
  {
    name: 'output_range edited to 0,255',
    make: () => writeModel('range.onnx', tinyModelBytes({ edit: setMetadata('celeba_gan.output_range', '0,255') })),
    code: 'E_MODEL_METADATA',
    message: /bad celeba_gan\.output_range: expected "-1,1" .* but found "0,255"/,
  },
  {
    name: 'metadata disagreeing with the graph',
    make: () => writeModel('zdim.onnx', tinyModelBytes({ edit: setMetadata('celeba_gan.z_dim', '64') })),
    code: 'E_MODEL_IO',
    message: /input "z" is float32 \[batch, 100\]; expected float32 \[batch, 64\]/,
  },
];

for (const bad of badModels) {
  test(`ERROR PATH - ${bad.name}`, async () => {
    await assert.rejects(openGenerator(bad.make(), { provider: 'cpu' }), (err: CelebaGanError) => {
      assert.ok(err instanceof CelebaGanError, `a CelebaGanError, got ${String(err)}`);
      assert.equal(err.code, bad.code);
      assert.equal(err.kind, 'usage');
      assert.match(err.message, bad.message);
      assert.ok(err.hint && err.hint.length > 0, 'says what to do next');
      return true;
    });
  });
}

test('BAD CALL - run with a z of the wrong size, or after close', async () => {
  const session = await openGenerator(modelPath, { provider: 'cpu' });
  await assert.rejects(session.run(new Float32Array(99), 1), /z has 99 values; \[1, 100\] needs 100/);
  await session.close();
  await assert.rejects(session.run(new Float32Array(100), 1), /after close/);
});

test('ERROR PATH - a graph onnxruntime rejects: cpu by name -> E_MODEL_INVALID; auto -> one error listing every provider', async (t) => {
  // Input renamed but not its uses: the first node reads a value nothing produces.
  const broken = writeModel('dangling.onnx', tinyModelBytes({ edit: (m) => void (m.graph.input[0]!.name = 'noise') }));
  await assert.rejects(openGenerator(broken, { provider: 'cpu' }), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_MODEL_INVALID');
    assert.match(err.message, /^onnxruntime cannot load .*dangling\.onnx: /);
    return true;
  });
  if (checkProvider('cuda').ok || process.platform === 'win32') return t.skip('a GPU provider could be tried here');
  await assert.rejects(openGenerator(broken, { provider: 'auto' }), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_NO_PROVIDER');
    assert.match(
      err.message,
      /^no execution provider could run .*dangling\.onnx\. ERR: \[cuda\] .*not installed.*, \[dml\] DirectML needs Windows.*, \[cpu\] /,
    );
    assert.match(err.hint!, /re-export/);
    return true;
  });
});

test('openOnnxSession: the same provider path for models that are not generators (no metadata needed)', async (t) => {
  const bytes = tinyModelBytes({ edit: dropMetadata('celeba_gan.z_dim', 'celeba_gan.latent', 'celeba_gan.version') });
  const opened = await openOnnxSession(bytes, 'plain.onnx', { provider: 'auto' });
  try {
    assert.deepEqual(opened.session.inputNames, ['z']);
    assert.ok(['cuda', 'dml', 'cpu'].includes(opened.providerUsed));
  } finally {
    await opened.session.release();
  }
  if (checkProvider('cuda').ok) return t.skip('the CUDA provider is installed on this machine');
  await assert.rejects(openOnnxSession(bytes, 'plain.onnx', { provider: 'cuda' }), { code: 'E_PROVIDER_UNAVAILABLE' });
});

test('a fixed-batch model: any n runs (chunks of its batch, zero padding dropped) and equals the free-batch model', async () => {
  const fixed = await openGenerator(writeModel('fixed3.onnx', tinyModelBytes({ edit: fixBatch(3) })), { provider: 'cpu' });
  const free = await openGenerator(modelPath, { provider: 'cpu' });
  try {
    for (const n of [1, 3, 7]) {
      const z = latentsFor(11, 0, n, 100, 'uniform');
      const a = await fixed.run(z, n);
      const b = await free.run(z, n);
      assert.deepEqual([a.length, b.length], [n * 3 * 28 * 28, n * 3 * 28 * 28]);
      const worst = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
      assert.ok(worst < 1e-5, `n=${n}: max difference ${worst}`);
    }
  } finally {
    await fixed.close();
    await free.close();
  }
});

test("one ONNX reader: the summary agrees with the exporter's schema decode", () => {
  const bytes = tinyModelBytes();
  const summary = readModelSummary(bytes);
  const model = decodeModel(bytes);
  assert.equal(summary.irVersion, model.ir_version);
  assert.equal(summary.opsetCount, model.opset_import.length);
  assert.deepEqual(Object.fromEntries(summary.metadata), Object.fromEntries(model.metadata_props.map((p) => [p.key, p.value])));
  assert.throws(() => readModelSummary(new Uint8Array(0)), /no ir_version/);
});
