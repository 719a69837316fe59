import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DatasetReader, DatasetWriter } from '../../src/data/dataset-file.js';
import { createTfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import {
  attributeEvalUnavailable,
  engineConditional,
  attributeRealSample,
  evaluateAttributes,
  onnxConditional,
  onnxSource,
  openSwdKernel,
  swd,
  colourDistance,
  type AttributeEvalReport,
  type AttributeScore,
  type ImageSet,
  type SwdKernel,
} from '../../src/eval/index.js';
import { attributeDraw } from '../../src/inference/attributes.js';
import { latentsFor, openGenerator, type GeneratorSession } from '../../src/inference/session.js';
import { floatNchwToUint8Hwc } from '../../src/util/image.js';
import { tempDir, writeTinyModel } from '../inference/fixtures.js';
import { COND_SET, MODEL_ATTRIBUTES, allLabels, conditionalWeights, writeConditionalModel, writeConditionalSet } from './conditional.js';

/**
 * Per-attribute SWD of a tiny conditional generator against a labelled synthetic data set: the
 * subsets are the images the labels say, the sizes follow the rule (m = min(n, half the subset),
 * skipped below 2), and every number is the one a direct swd() call gives on the same images.
 */

const N = 6;
const SEED = 9;
let dir: string;
let reader: DatasetReader;
let session: GeneratorSession;
let kernel: SwdKernel;
let report: AttributeEvalReport;
let labels: Float32Array;

before(async () => {
  dir = tempDir('cg-attr-eval-');
  await writeConditionalSet(join(dir, 'labelled.cgds'));
  writeConditionalModel(join(dir, 'cond.onnx'), join(dir, 'labelled.cgds'));
  reader = new DatasetReader(join(dir, 'labelled.cgds'));
  labels = allLabels(reader);
  session = await openGenerator(join(dir, 'cond.onnx'), { provider: 'cpu' });
  kernel = await openSwdKernel('js');
  report = await evaluateAttributes({ generator: onnxConditional(session), real: reader, n: N, seed: SEED, swdKernel: kernel, chunk: 4 });
});
after(async () => {
  await session?.close();
  reader?.close();
  await kernel?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Images of the data set whose label `name` is `value`, ascending, from the labels read directly. */
function withLabel(name: string, value: 1 | -1): number[] {
  const names = reader.attributes!.names;
  const c = names.indexOf(name);
  const out: number[] = [];
  for (let i = 0; i < reader.count; i++) if (labels[i * names.length + c] === value) out.push(i);
  return out;
}

function scored(s: AttributeScore): Extract<AttributeScore, { n: number }> {
  assert.ok('n' in s, `${s.request} was skipped: ${'skipped' in s ? s.skipped : ''}`);
  return s;
}

describe('evaluateAttributes', () => {
  it('evaluates the model attributes the data labels, in model order, each on then off; names the one the data lacks', () => {
    assert.deepEqual(
      report.scores.map((s) => s.request),
      ['Smiling', '-Smiling', 'Eyeglasses', '-Eyeglasses', 'Pale_Skin', '-Pale_Skin'],
    );
    assert.deepEqual(report.notInData, ['Wearing_Hat']);
    assert.deepEqual(report.sides, ['on', 'off']);
    assert.equal(report.n, N);
    assert.equal(report.minPerSet, 2);
    assert.equal(report.swd.options.seed, SEED);
    assert.match(report.swd.kernel, /JavaScript loop/);
  });

  it('each subset holds the images the labels say; m = min(n, half of them); fewer than 4 real images: skipped with the count', () => {
    let skipped = 0;
    for (const s of report.scores) {
      const count = withLabel(s.attribute, s.side === 'on' ? 1 : -1).length;
      assert.equal(s.realCount, count, s.request);
      const m = Math.min(N, Math.floor(count / 2));
      if (m < 2) {
        skipped++;
        assert.ok('skipped' in s, `${s.request}: ${count} real images`);
        assert.match(s.skipped, new RegExp(`^${count} real (image (has|lacks)|images (have|lack)) it; SWD beside its baseline needs 4`));
      } else {
        assert.equal(scored(s).n, m, s.request);
        assert.equal(scored(s).swd.value.n, m);
      }
    }
    // The fixture gives both kinds (conditional.ts): Pale_Skin on is rare, Eyeglasses on below n.
    assert.equal(skipped, 1);
    assert.equal(scored(report.scores.find((s) => s.request === 'Eyeglasses')!).n, 3);
    assert.equal(COND_SET.count, reader.count);
  });

  it('the real sample is 2m distinct images that carry the value; the numbers are a direct swd() and colourDistance() on those images and the faces asked for', async () => {
    for (const request of ['Smiling', '-Eyeglasses']) {
      const s = scored(report.scores.find((x) => x.request === request)!);
      const carrying = withLabel(s.attribute, s.side === 'on' ? 1 : -1);
      const sample = attributeRealSample(Uint32Array.from(carrying), s.n, SEED, s.attribute, s.side);
      assert.equal(new Set(sample).size, 2 * s.n);
      for (const i of sample) assert.ok(carrying.includes(i), `${request}: image ${i} is not labelled ${request}`);

      const { height, width } = reader.header;
      const r1: ImageSet = { data: reader.read(sample.subarray(0, s.n)), n: s.n, height, width };
      const r2: ImageSet = { data: reader.read(sample.subarray(s.n)), n: s.n, height, width };
      const draw = attributeDraw(session.info.attributes, request)!;
      const rows = draw.rowsFor(SEED, 0, s.n);
      const column = MODEL_ATTRIBUTES.indexOf(s.attribute as (typeof MODEL_ATTRIBUTES)[number]);
      for (let i = 0; i < s.n; i++) assert.equal(rows[i * MODEL_ATTRIBUTES.length + column], s.side === 'on' ? 1 : -1);
      const z = latentsFor(SEED, 0, s.n, session.info.zDim, session.info.latent);
      const gen: ImageSet = { data: floatNchwToUint8Hwc(await session.run(z, s.n, rows), s.n, 3, height, width), n: s.n, height, width };

      const opts = { seed: SEED };
      assert.deepEqual(s.swd.value, await swd(gen, r1, opts, { kernel }), `${request}: generated`);
      assert.deepEqual(s.swd.baseline, await swd(r2, r1, opts, { kernel }), `${request}: baseline`);
      assert.deepEqual(s.colour.value, colourDistance(gen, r1));
      assert.deepEqual(s.colour.baseline, colourDistance(r2, r1));
      // An untrained generator is far from real faces; two halves of them are not.
      assert.ok(s.swd.value.mean > s.swd.baseline.mean, `${request}: ${s.swd.value.mean} vs ${s.swd.baseline.mean}`);
    }
  });

  it('the forced attribute reaches the faces: Smiling and -Smiling on the same latents are different images', async () => {
    const on = await onnxSource(session, 4, SEED, attributeDraw(session.info.attributes, 'Smiling')).read(0, 4);
    const off = await onnxSource(session, 4, SEED, attributeDraw(session.info.attributes, '-Smiling')).read(0, 4);
    assert.notDeepEqual(on, off);
  });

  it('onnxSource without a draw on a conditional model draws every attribute from the training rows, as generate does with no --attr', async () => {
    const source = onnxSource(session, 5, SEED);
    const draw = attributeDraw(session.info.attributes, undefined)!;
    const z = latentsFor(SEED, 2, 3, session.info.zDim, session.info.latent);
    const expected = floatNchwToUint8Hwc(await session.run(z, 3, draw.rowsFor(SEED, 2, 3)), 3, 3, COND_SET.size, COND_SET.size);
    assert.deepEqual(await source.read(2, 3), expected);
    assert.deepEqual(source.notes, []);
  });

  it('sides and attributes can be narrowed: only Eyeglasses, only on', async () => {
    const r = await evaluateAttributes({
      generator: onnxConditional(session),
      real: reader,
      n: N,
      seed: SEED,
      swdKernel: kernel,
      sides: ['on'],
      attributes: ['Eyeglasses', 'Wearing_Hat'],
    });
    assert.deepEqual(
      r.scores.map((s) => s.request),
      ['Eyeglasses'],
    );
    assert.deepEqual(r.notInData, ['Wearing_Hat']);
    assert.deepEqual(scored(r.scores[0]!).swd, scored(report.scores.find((s) => s.request === 'Eyeglasses')!).swd);
  });
});

describe('engineConditional', () => {
  it("a training engine's generator with the model's attributes: the faces the exported model makes for the same request (within one 8-bit level)", async () => {
    const { spec, weights } = conditionalWeights();
    const engine = await createTfjsEngine(spec, { backend: 'cpu' });
    try {
      await engine.setWeights(weights);
      const generator = engineConditional(engine, session.info.attributes!, 'tfjs engine');
      assert.deepEqual([generator.height, generator.width], [COND_SET.size, COND_SET.size]);
      const draw = attributeDraw(session.info.attributes, '-Eyeglasses,Smiling')!;
      const fromEngine = await generator.images(draw, 5, SEED).read(0, 5);
      const fromOnnx = await onnxSource(session, 5, SEED, draw).read(0, 5);
      // ONNX parity is 1e-4 on [-1, 1] (test/onnx/conditional.test.ts): at most a rounding flip of one level.
      let worst = 0;
      for (let i = 0; i < fromOnnx.length; i++) worst = Math.max(worst, Math.abs(fromEngine[i]! - fromOnnx[i]!));
      assert.ok(worst <= 1, `max |engine - onnx| = ${worst} levels`);
      assert.throws(() => engineConditional(engine, { names: ['Smiling'], frequencies: null, rows: null }), {
        name: 'RangeError',
        message: /is conditional on Smiling, Eyeglasses, Pale_Skin, Wearing_Hat, but the attributes given are Smiling/,
      });
    } finally {
      engine.dispose();
    }
  });
});

describe('ERROR PATH - evaluateAttributes', () => {
  it('ERROR PATH - an unlabelled data set: E_EVAL_NO_LABELS, naming it', async () => {
    const path = join(dir, 'unlabelled.cgds');
    const writer = new DatasetWriter(path, COND_SET.size, COND_SET.size);
    writer.append(reader.read([0, 1, 2, 3]));
    writer.finish();
    const plain = new DatasetReader(path);
    try {
      await assert.rejects(
        evaluateAttributes({ generator: onnxConditional(session), real: plain, n: 2, seed: 0, swdKernel: kernel }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'E_EVAL_NO_LABELS');
          assert.match(err.message, /unlabelled\.cgds has no attribute labels \(it was prepared without them\); prepare a labelled data set/);
          return true;
        },
      );
    } finally {
      plain.close();
    }
  });

  it('ERROR PATH - a real set that is not a data set, or labels none of the model attributes: the reason', () => {
    assert.match(
      attributeEvalUnavailable(session.info.attributes!, undefined, 'photos/')!,
      /photos\/ is not a \.cgds data set, so it carries no attribute labels/,
    );
    const other = { names: ['Wearing_Hat'], frequencies: null, rows: null };
    assert.match(attributeEvalUnavailable(other, reader, 'labelled.cgds')!, /labels Bangs, .*: none of the model's attributes \(Wearing_Hat\)/);
    assert.equal(attributeEvalUnavailable(session.info.attributes!, reader, 'labelled.cgds'), null);
  });

  it('ERROR PATH - an unconditional model: E_NOT_CONDITIONAL; an attribute the model lacks: E_ATTR_UNKNOWN', async () => {
    const plain = await openGenerator(writeTinyModel(dir, 'plain.onnx'), { provider: 'cpu' });
    try {
      assert.throws(() => onnxConditional(plain), { code: 'E_NOT_CONDITIONAL', message: /plain\.onnx is unconditional/ });
    } finally {
      await plain.close();
    }
    await assert.rejects(evaluateAttributes({ generator: onnxConditional(session), real: reader, n: N, seed: 0, swdKernel: kernel, attributes: ['smiling'] }), {
      code: 'E_ATTR_UNKNOWN',
      message: /has no attribute "smiling"; its attributes: Smiling, Eyeglasses, Pale_Skin, Wearing_Hat/,
    });
  });
});
