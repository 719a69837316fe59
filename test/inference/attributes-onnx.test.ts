import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildSpec } from '../../src/config/presets.js';
import { createTfjsEngine, type TfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import type { CelebaGanError } from '../../src/errors.js';
import { attributeDraw } from '../../src/inference/attributes.js';
import { generateImages } from '../../src/inference/generate.js';
import { latentsFor, openGenerator, type GeneratorSession } from '../../src/inference/session.js';
import { openGeneratorInWorker } from '../../src/inference/worker-session.js';
import { LabelRowCounter } from '../../src/onnx/attribute-rows.js';
import { buildGeneratorOnnx } from '../../src/onnx/export.js';
import { encodeModel, modelProtoType, type Model } from '../../src/onnx/onnx-proto.js';
import { TEST_ATTRIBUTES, fakeLabels } from '../engines/labels.js';
import { weightsWithBatchNorm } from '../onnx/fixtures.js';
import { maxAbsDiff } from '../support/onnx.js';
import { tempDir, writeTinyModel } from './fixtures.js';

/**
 * A tiny conditional generator exported with its training label rows, run through the project's
 * onnxruntime path (openGenerator, the worker session, generateImages) with drawn attributes:
 * the faces are the tfjs engine's for the same z and rows, and a request gives the same bytes twice.
 */

const K = TEST_ATTRIBUTES.length;
const FREQUENCIES = [0.5, 0.2, 0.3];
/** The export's ONNX parity tolerance (test/onnx/conditional.test.ts): float32 [-1, 1] outputs. */
const PARITY = 1e-4;

const spec = buildSpec('seed28', 0.0625, { attributes: TEST_ATTRIBUTES });
const weights = weightsWithBatchNorm(spec, 21);
const root = tempDir('cg-attr-onnx-');
after(() => rmSync(root, { recursive: true, force: true }));

/** "Training labels": Eyeglasses only on smiling faces, so the draw has a correlation to keep. */
function trainingRows(): ReturnType<LabelRowCounter['table']> {
  const labels = fakeLabels(300, K, 4, 'attr-onnx-rows');
  for (let i = 0; i < 300; i++) if (labels[i * K]! < 0) labels[i * K + 1] = -1;
  const counter = new LabelRowCounter(K);
  counter.add(labels);
  return counter.table();
}
const ROWS = trainingRows();

function conditionalModel(name: string, edit?: (m: Model) => void): string {
  let bytes = buildGeneratorOnnx(spec, weights, { attributeFrequencies: FREQUENCIES, attributeRows: ROWS });
  if (edit) {
    const type = modelProtoType();
    const model = type.toObject(type.decode(bytes), { longs: Number, arrays: true }) as Model;
    edit(model);
    bytes = encodeModel(model);
  }
  const path = join(root, name);
  writeFileSync(path, bytes);
  return path;
}

const modelPath = conditionalModel('cond.onnx');

function code(expected: string, message: RegExp): (err: CelebaGanError) => boolean {
  return (err) => {
    assert.equal(err.code, expected);
    assert.match(err.message, message);
    return true;
  };
}

describe('a conditional model through onnxruntime-node', () => {
  let session: GeneratorSession;
  let engine: TfjsEngine;
  before(async () => {
    session = await openGenerator(modelPath, { provider: 'cpu' });
    engine = await createTfjsEngine(spec, { backend: 'cpu' });
    await engine.setWeights(weights);
  });
  after(async () => {
    await session?.close();
    engine?.dispose();
  });

  test('the session reads the attributes, their frequencies and the stored rows back from the metadata', () => {
    assert.deepEqual(session.info.attributes, { names: [...TEST_ATTRIBUTES], frequencies: FREQUENCIES, rows: ROWS });
    assert.equal(ROWS.images, 300);
  });

  test(`drawn attributes: onnxruntime gives the tfjs engine's faces for the same z and rows (max |diff| <= ${PARITY})`, async () => {
    const n = 6;
    const seed = 17;
    const draw = attributeDraw(session.info.attributes, 'Eyeglasses', modelPath)!;
    const z = latentsFor(seed, 0, n, session.info.zDim, session.info.latent);
    const y = draw.rowsFor(seed, 0, n);
    // The stored rows have Eyeglasses only with Smiling: the draw keeps that.
    for (let i = 0; i < n; i++) assert.deepEqual([y[i * K], y[i * K + 1]], [1, 1], `face ${i}: Smiling and Eyeglasses`);
    const got = await session.run(z, n, y);
    const expected = await engine.generate(z, n, 'raw', y);
    const diff = maxAbsDiff(got, expected);
    assert.ok(diff <= PARITY, `max |onnx - tfjs| = ${diff}`);
    // The attributes reach the faces: the same z without glasses is another face.
    const without = attributeDraw(session.info.attributes, '-Eyeglasses', modelPath)!.rowsFor(seed, 0, n);
    assert.ok(maxAbsDiff(await session.run(z, n, without), got) > 0.01);
  });

  test('the worker session feeds the attributes too: the same images as the session in this thread', async () => {
    const inWorker = await openGeneratorInWorker(modelPath, { provider: 'cpu' });
    try {
      assert.deepEqual(inWorker.info.attributes, session.info.attributes);
      const n = 4;
      const z = latentsFor(3, 10, n, session.info.zDim, session.info.latent);
      const y = attributeDraw(inWorker.info.attributes, '-Smiling', modelPath)!.rowsFor(3, 10, n);
      const here = await session.run(z, n, y);
      const there = await inWorker.run(z.slice(), n, y.slice());
      assert.ok(maxAbsDiff(there, here) <= PARITY, `worker vs this thread: ${maxAbsDiff(there, here)}`);
      await assert.rejects(inWorker.run(z.slice(), n), code('E_NO_LABELS', /conditional on 3 attributes \(Smiling, Eyeglasses, Blond_Hair\)/));
    } finally {
      await inWorker.close();
    }
  });

  test('a model with a fixed batch runs a conditional request in padded chunks, giving the same faces', async () => {
    const fixed = await openGenerator(
      conditionalModel('fixed.onnx', (m) => {
        for (const v of [...m.graph.input, ...m.graph.output]) v.type.tensor_type.shape.dim[0] = { dim_value: 4 };
      }),
      { provider: 'cpu' },
    );
    try {
      const n = 6;
      const z = latentsFor(5, 0, n, session.info.zDim, session.info.latent);
      const y = attributeDraw(fixed.info.attributes, 'Blond_Hair')!.rowsFor(5, 0, n);
      assert.ok(maxAbsDiff(await fixed.run(z, n, y), await session.run(z, n, y)) <= PARITY);
    } finally {
      await fixed.close();
    }
  });

  test('generateImages: the same request gives the same bytes twice; the manifest names it; another request other faces', async () => {
    const run = async (out: string, attr: string): Promise<string[]> => {
      await generateImages(session, {
        outDir: join(root, out),
        n: 10,
        seed: 8,
        batchSize: 4,
        attributes: attributeDraw(session.info.attributes, attr, modelPath),
      });
      return readdirSync(join(root, out))
        .filter((f) => f.startsWith('face-'))
        .sort();
    };
    const names = await run('a', 'Blond_Hair,-Smiling');
    assert.equal(names.length, 10);
    assert.deepEqual(await run('b', '-Smiling,Blond_Hair'), names);
    for (const name of names) assert.deepEqual(readFileSync(join(root, 'b', name)), readFileSync(join(root, 'a', name)), name);
    const lines = readFileSync(join(root, 'a', 'manifest.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { attr: string });
    assert.ok(lines.every((l) => l.attr === '-Smiling,Blond_Hair'));
    await run('c', 'Smiling');
    assert.ok(names.some((name) => !readFileSync(join(root, 'c', name)).equals(readFileSync(join(root, 'a', name)))));
  });

  test('ERROR PATH - a conditional model run without attributes is E_NO_LABELS, not an onnxruntime error; bad rows are E_BAD_LABELS', async () => {
    const n = 2;
    const z = latentsFor(1, 0, n, session.info.zDim, session.info.latent);
    await assert.rejects(
      session.run(z, n),
      code('E_NO_LABELS', /cond\.onnx is conditional on 3 attributes \(Smiling, Eyeglasses, Blond_Hair\).*"attributes" input/),
    );
    await assert.rejects(session.run(z, n, new Float32Array(n * K - 1)), code('E_BAD_LABELS', /Float32Array of 2x3 values/));
    await assert.rejects(
      session.run(
        z,
        n,
        Float32Array.from({ length: n * K }, (_, i) => (i === 4 ? NaN : 1)),
      ),
      code('E_BAD_LABELS', /value 4 \(image 1, Eyeglasses\) is NaN/),
    );
    const out = join(root, 'not-made');
    await assert.rejects(generateImages(session, { outDir: out, n: 2, seed: 1 }), code('E_NO_LABELS', /needs a label row per image/));
    assert.equal(existsSync(out), false, 'nothing is created before the check');
  });
});

describe('ERROR PATH - attributes and an unconditional model', () => {
  test('a draw, rows to a run, and a model whose inputs disagree with its metadata', async () => {
    const plainPath = writeTinyModel(root, 'plain.onnx');
    const plain = await openGenerator(plainPath, { provider: 'cpu' });
    try {
      assert.equal(plain.info.attributes, null);
      assert.throws(
        () => attributeDraw(plain.info.attributes, 'Smiling', plainPath),
        code('E_NOT_CONDITIONAL', /plain\.onnx is unconditional: it has no attributes/),
      );
      const z = latentsFor(1, 0, 1, plain.info.zDim, plain.info.latent);
      await assert.rejects(plain.run(z, 1, new Float32Array(K)), code('E_NOT_CONDITIONAL', /attribute rows were given, but the model is unconditional/));
      const draw = attributeDraw({ names: [...TEST_ATTRIBUTES], frequencies: null, rows: null }, 'Smiling');
      await assert.rejects(
        generateImages(plain, { outDir: join(root, 'plain-out'), n: 1, seed: 1, attributes: draw }),
        code('E_NOT_CONDITIONAL', /unconditional/),
      );
    } finally {
      await plain.close();
    }
    // A conditional graph whose metadata lost its attribute names: the session says which.
    const stripped = conditionalModel('stripped.onnx', (m) => {
      m.metadata_props = m.metadata_props.filter((p) => !p.key.startsWith('celeba_gan.attribute'));
    });
    await assert.rejects(
      openGenerator(stripped, { provider: 'cpu' }),
      code('E_MODEL_IO', /has inputs z, attributes; expected "z", as its metadata lists no attributes/),
    );
  });
});
