import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { DATASET_HEADER_SIZE, DatasetReader } from '../../src/data/dataset-file.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import {
  checkSources,
  datasetSource,
  evaluate,
  imageSubset,
  loadDetector,
  loadExtractor,
  NOT_MEANINGFUL,
  NOT_VALIDATED,
  onnxSource,
  openEvalSource,
  type FaceDetector,
  type FeatureExtractor,
  type ImageSet,
  type ImageSource,
} from '../../src/eval/index.js';
import { findPackage } from '../../src/eval/model-files.js';
import { openGenerator, type GeneratorSession } from '../../src/inference/session.js';
import { tempDir, writeTinyModel } from '../inference/fixtures.js';
import { syntheticFaces } from './ladder.js';

/**
 * The whole evaluation on small sets: an untrained generator (seeded initial weights exported by
 * the project's own exporter) against real images of a synthetic data set, every number beside
 * the real-halves baseline. n is small (24) to keep the pure-tfjs wasm run short.
 */

const N = 24;
let dir: string;
let reader: DatasetReader;
let session: GeneratorSession;
let extractor: FeatureExtractor;
let detector: FaceDetector | null;

before(async () => {
  dir = tempDir('cg-eval-');
  await prepareSynthetic({ count: 3 * N, out: join(dir, 'synthetic-28.cgds'), size: 28, seed: 11 });
  reader = new DatasetReader(join(dir, 'synthetic-28.cgds'));
  session = await openGenerator(writeTinyModel(dir, 'untrained.onnx'), { provider: 'cpu' });
  extractor = await loadExtractor({ features: 'faceres' });
  detector = await loadDetector('tiny');
});
after(async () => {
  await session.close();
  reader.close();
  await extractor.dispose();
  detector?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const slice = (from: number, count: number, label: string) =>
  datasetSource(
    reader,
    Uint32Array.from({ length: count }, (_, i) => from + i),
    label,
  );

describe('evaluate', () => {
  it('scores an untrained generator far above the real-halves baseline; without faceMetrics, faceres and the detector say "not meaningful below 64 px" at 28 px', async () => {
    const progress: string[] = [];
    const r = await evaluate({
      generated: onnxSource(session, N, 0),
      real: slice(0, 2 * N, 'real 0..47'),
      n: N,
      extractor,
      detector,
      chunk: 16,
      onProgress: (p) => progress.push(`${p.phase}:${p.done}`),
    });
    assert.deepEqual(progress, ['real:16', 'real:32', 'real:48', 'generated:16', 'generated:24', 'swd:0', 'swd:2', 'swd:4']);
    assert.equal(r.swd.value.levels.length, 2);
    assert.equal(r.validity.swd.ranks, 'no-fine-texture');
    assert.ok(r.swd.value.mean > 3 * r.swd.baseline.mean, `SWD untrained ${r.swd.value.mean} vs baseline ${r.swd.baseline.mean}`);
    assert.ok(r.colour.value.value > 3 * r.colour.baseline.value, `colour untrained ${r.colour.value.value} vs baseline ${r.colour.baseline.value}`);
    assert.deepEqual(r.features, { skipped: NOT_MEANINGFUL, description: extractor.info.description });
    assert.equal(NOT_MEANINGFUL, 'not meaningful below 64 px');
    assert.ok(r.detector && 'skipped' in r.detector && r.detector.skipped === NOT_MEANINGFUL);
  });

  it('with faceMetrics, gives faceres KID/FID beside the baseline and the blank-image ceiling, and the detection rates', async () => {
    const r = await evaluate({
      generated: onnxSource(session, N, 0),
      real: slice(0, 2 * N, 'real'),
      n: N,
      extractor,
      detector,
      faceMetrics: true,
      kid: { subsets: 10, subsetSize: N },
      chunk: 16,
    });
    assert.ok(r.features && !('skipped' in r.features));
    assert.equal(r.features.info.features, 'faceres');
    assert.match(r.features.info.description, /@vladmandic\/human 3\.3\.6/);
    assert.ok(
      r.features.blankKid && Number.isFinite(r.features.blankKid.value) && r.features.blankKid.value > r.features.kid.baseline.value,
      JSON.stringify(r.features.blankKid),
    );
    assert.ok(r.features.fid.value > r.features.fid.baseline, `FID ${r.features.fid.value} vs baseline ${r.features.fid.baseline}`);
    assert.ok(r.detector && !('skipped' in r.detector));
    assert.ok(r.detector.generated.meanScore < r.detector.real.meanScore, 'untrained images look less like faces to the detector');
  });

  it('from 64 px, faceres and the detector are still not given without faceMetrics: they fail the validation ladder there', async () => {
    const memory = (set: ImageSet, label: string): ImageSource => ({
      label,
      count: set.n,
      height: set.height,
      width: set.width,
      read: async (start, k) => imageSubset(set, start, k).data,
    });
    const r = await evaluate({
      generated: memory(syntheticFaces(8, 0, 4, 64), 'generated'),
      real: memory(syntheticFaces(9, 0, 8, 64), 'real'),
      n: 4,
      notLoaded: { features: 'faceres', detector: 'tiny' },
    });
    assert.equal(r.swd.value.levels.length, 3);
    assert.equal(r.validity.swd.ranks, 'no-fine-texture');
    assert.deepEqual(r.features, { skipped: NOT_VALIDATED, description: 'faceres' });
    assert.deepEqual(r.detector, { skipped: NOT_VALIDATED, description: 'tiny' });
    assert.match(NOT_VALIDATED, /^not validated: /);
  });

  describe('BAD CALL', () => {
    it('ERROR PATH - a real set smaller than 2n: the exact message and hint', () => {
      const real = slice(0, 10, 'ten images');
      assert.throws(
        () => checkSources(onnxSource(session, 50, 0), real, 50),
        (err: Error & { code?: string; hint?: string }) => {
          assert.equal(err.name, 'CelebaGanError');
          assert.equal(err.code, 'E_EVAL_NOT_ENOUGH_REAL');
          assert.equal(
            err.message,
            'the real set ten images has 10 images; --n 50 needs at least 100 (n to compare with, n more for the real-halves baseline)',
          );
          assert.equal(err.hint, 'Pass --n 5 or less, or a larger real set.');
          return true;
        },
      );
    });

    it('ERROR PATH - a real set of fewer than 4 images cannot give two halves (no "--n 0 or less")', () => {
      assert.throws(
        () => checkSources(onnxSource(session, 2, 0), slice(0, 1, 'one image'), 2),
        (err: Error & { code?: string; hint?: string }) => {
          assert.equal(err.code, 'E_EVAL_NOT_ENOUGH_REAL');
          assert.equal(err.hint, 'The real set needs at least 4 images; pass a larger one (a folder of images, or `celeba-gan prepare`).');
          return true;
        },
      );
    });

    it('ERROR PATH - generated and real images of different sizes', async () => {
      await prepareSynthetic({ count: 8, out: join(dir, 'synthetic-32.cgds'), size: 32, seed: 1 });
      const other = new DatasetReader(join(dir, 'synthetic-32.cgds'));
      try {
        const real = datasetSource(other, Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 'synthetic-32');
        await assert.rejects(evaluate({ generated: onnxSource(session, 4, 0), real, n: 4 }), {
          name: 'CelebaGanError',
          code: 'E_EVAL_SIZE_MISMATCH',
          message: /28x28 but the real images \(synthetic-32\) are 32x32/,
        });
      } finally {
        other.close();
      }
    });

    it('ERROR PATH - a missing extractor package names the npm install command', () => {
      assert.throws(() => findPackage({ name: '@vladmandic/not-installed', version: '1.0.0' }), {
        name: 'CelebaGanError',
        code: 'E_EXTRACTOR_MISSING',
        message: /@vladmandic\/not-installed is not installed/,
        hint: /npm install @vladmandic\/not-installed@1\.0\.0/,
      });
    });

    it('ERROR PATH - inception features without an Inception file', async () => {
      await assert.rejects(loadExtractor({ features: 'inception' }), { name: 'UsageError', code: 'E_INCEPTION_MISSING', message: /needs --inception/ });
      await assert.rejects(loadExtractor({ features: 'inception', inception: join(dir, 'nope.onnx') }), {
        name: 'UsageError',
        code: 'E_INCEPTION_MISSING',
        message: /no such file/,
      });
      await assert.rejects(loadExtractor({ features: 'inception', inception: dir }), {
        name: 'UsageError',
        code: 'E_INCEPTION_MISSING',
        message: /cannot read the Inception model .*: it is a folder; expected an \.onnx file/,
      });
    });
  });
});

describe('openEvalSource', () => {
  it('reads a folder of PNG, JPEG and WebP images in a seeded order, resized when asked', async () => {
    const folder = join(dir, 'mixed');
    mkdirSync(folder);
    const faces = syntheticFaces(3, 0, 3, 40);
    const bytes = 40 * 40 * 3;
    const raw = (i: number) => sharp(Buffer.from(faces.data.subarray(i * bytes, (i + 1) * bytes)), { raw: { width: 40, height: 40, channels: 3 } });
    await raw(0).png().toFile(join(folder, 'a.png'));
    await raw(1).jpeg({ quality: 95 }).toFile(join(folder, 'b.jpg'));
    await raw(2).webp({ lossless: true }).toFile(join(folder, 'c.webp'));
    writeFileSync(join(folder, 'notes.txt'), 'not an image');
    const opened = await openEvalSource(folder, { flag: '--real', count: 3, seed: 0 });
    try {
      assert.equal(opened.kind, 'folder');
      assert.equal(opened.available, 3);
      assert.deepEqual([opened.source.height, opened.source.width], [40, 40]);
      const all = await opened.source.read(0, 3);
      // The PNG and the lossless WebP come back bit-exact, wherever the seeded order put them.
      const images = [0, 1, 2].map((k) => Buffer.from(all.subarray(k * bytes, (k + 1) * bytes)));
      for (const i of [0, 2])
        assert.ok(
          images.some((img) => img.equals(Buffer.from(faces.data.subarray(i * bytes, (i + 1) * bytes)))),
          `image ${i}`,
        );
    } finally {
      await opened.close();
    }
    const resized = await openEvalSource(folder, { flag: '--real', count: 3, seed: 0, resize: 28 });
    try {
      assert.deepEqual([resized.source.height, resized.source.width], [28, 28]);
      assert.equal((await resized.source.read(0, 3)).length, 3 * 28 * 28 * 3);
    } finally {
      await resized.close();
    }
  });

  describe('BAD CALL', () => {
    it('ERROR PATH - a .cgds file with one flipped pixel byte fails its checksum (E_DATASET_CORRUPT)', async () => {
      const path = join(dir, 'flipped.cgds');
      await prepareSynthetic({ count: 8, out: path, size: 28, seed: 5 });
      const fd = openSync(path, 'r+');
      try {
        const b = Buffer.alloc(1);
        const at = DATASET_HEADER_SIZE + 3 * 28 * 28 * 3 + 100;
        readSync(fd, b, 0, 1, at);
        b[0] = b[0]! ^ 0x01;
        writeSync(fd, b, 0, 1, at);
      } finally {
        closeSync(fd);
      }
      await assert.rejects(openEvalSource(path, { flag: '--real', count: 4, seed: 0 }), {
        name: 'CelebaGanError',
        code: 'E_DATASET_CORRUPT',
        message: /flipped\.cgds .*checksum of the pixels(, labels)? and header fields/,
      });
    });

    it('ERROR PATH - images of different sizes in one folder name both files', async () => {
      const folder = join(dir, 'sizes');
      mkdirSync(folder);
      await sharp({ create: { width: 20, height: 20, channels: 3, background: '#808080' } })
        .png()
        .toFile(join(folder, 'a.png'));
      await sharp({ create: { width: 24, height: 20, channels: 3, background: '#808080' } })
        .png()
        .toFile(join(folder, 'b.png'));
      const opened = await openEvalSource(folder, { flag: '--generated', count: 2, seed: 0 });
      try {
        await assert.rejects(opened.source.read(0, 2), {
          name: 'UsageError',
          code: 'E_EVAL_SIZE_MISMATCH',
          message: /--generated: .*sizes\/[ab]\.png is 20x(20|24) but .*sizes\/[ab]\.png is 20x(20|24)/,
          hint: /--resize/,
        });
      } finally {
        await opened.close();
      }
    });

    it('ERROR PATH - a folder given where an .onnx file is expected (--model), and a plain file where a folder is expected', async () => {
      await assert.rejects(openEvalSource(join(dir, 'mixed'), { flag: '--model', count: 2, seed: 0, onnxOnly: true }), {
        name: 'UsageError',
        code: 'E_EVAL_EXPECTED_FILE',
        message: /--model .*mixed is a folder; expected an \.onnx file/,
      });
      await assert.rejects(openEvalSource(join(dir, 'mixed', 'a.png'), { flag: '--real', count: 2, seed: 0 }), {
        name: 'UsageError',
        code: 'E_EVAL_EXPECTED_FOLDER',
        message: /--real .*mixed\/a\.png is a file \(\.png\); expected a folder of JPEG\/PNG\/WebP images/,
      });
      mkdirSync(join(dir, 'looks-like.cgds'));
      await assert.rejects(openEvalSource(join(dir, 'looks-like.cgds'), { flag: '--real', count: 2, seed: 0 }), {
        name: 'UsageError',
        code: 'E_EVAL_EXPECTED_FILE',
        message: /looks-like\.cgds is a folder, but its name says it should be a \.cgds file/,
      });
    });

    it('ERROR PATH - a missing path, an empty folder, an undecodable image', async () => {
      await assert.rejects(openEvalSource(join(dir, 'nope'), { flag: '--real', count: 2, seed: 0 }), {
        code: 'E_EVAL_INPUT_MISSING',
        message: /--real .*nope does not exist/,
      });
      mkdirSync(join(dir, 'empty'));
      await assert.rejects(openEvalSource(join(dir, 'empty'), { flag: '--real', count: 2, seed: 0 }), {
        code: 'E_EVAL_NO_IMAGES',
        message: /--real .*empty holds no images/,
      });
      mkdirSync(join(dir, 'broken'));
      writeFileSync(join(dir, 'broken', 'x.jpg'), 'not a jpeg');
      await assert.rejects(openEvalSource(join(dir, 'broken'), { flag: '--real', count: 2, seed: 0 }), {
        code: 'E_EVAL_BAD_IMAGE',
        message: /--real: .*broken\/x\.jpg could not be decoded/,
      });
    });
  });
});
