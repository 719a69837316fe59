import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetReader } from '../../src/data/dataset-file.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { checkSources, datasetSource, evaluate, loadDetector, loadExtractor, onnxSource, sampleIndices, type FaceDetector, type FeatureExtractor } from '../../src/eval/index.js';
import { findPackage } from '../../src/eval/model-files.js';
import { openGenerator, type GeneratorSession } from '../../src/inference/session.js';
import { tempDir, writeTinyModel } from '../inference/fixtures.js';

/**
 * The whole evaluation on small sets: an untrained generator (seeded initial weights exported by
 * the project's own exporter) against held-out real images of a synthetic data set, and the
 * same data set's two disjoint slices against each other. n is small (24) to keep the pure-tfjs
 * wasm run short; at this n KID/FID are noisy, but the gap is large.
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

describe('evaluate', () => {
  it('scores an untrained generator far worse than held-out real images', async () => {
    const slice = (from: number, label: string) => datasetSource(reader, Uint32Array.from({ length: N }, (_, i) => from + i), label);
    const real = slice(0, 'real 0..23');
    const heldOut = slice(N, 'real 24..47');
    const kid = { subsets: 10, subsetSize: N };
    const progress: string[] = [];
    const untrained = await evaluate({ generated: onnxSource(session, N, 0), real, n: N, extractor, detector, kid, chunk: 16, onProgress: (p) => progress.push(`${p.phase}:${p.done}`) });
    const realVsReal = await evaluate({ generated: heldOut, real, n: N, extractor, detector, kid, chunk: 16 });

    assert.deepEqual(progress, ['real:0', 'real:16', 'real:24', 'generated:0', 'generated:16', 'generated:24', 'metrics:0', 'metrics:1']);
    assert.equal(untrained.features.features, 'faceres');
    assert.match(untrained.features.description, /@vladmandic\/human 3\.3\.6/);
    assert.ok(untrained.kid.value > 10 * Math.max(realVsReal.kid.value, 1e-3), `KID untrained ${untrained.kid.value} vs real ${realVsReal.kid.value}`);
    assert.ok(untrained.fid.value > 3 * realVsReal.fid.value, `FID untrained ${untrained.fid.value} vs real ${realVsReal.fid.value}`);
    assert.ok(untrained.detector && realVsReal.detector);
    assert.ok(untrained.detector.generated.meanScore < realVsReal.detector.generated.meanScore, 'untrained images look less like faces to the detector');
    assert.deepEqual(untrained.detector.real, realVsReal.detector.real, 'the same real slice gets the same detection scores');
  });

  it('reuses cached real features and gives the same numbers', async () => {
    const real = datasetSource(reader, sampleIndices(reader.count, N, 3), 'real sample');
    const first = await evaluate({ generated: onnxSource(session, N, 5), real, n: N, extractor, kid: { subsets: 5 }, keepFeatures: true });
    const again = await evaluate({ generated: onnxSource(session, N, 5), real, n: N, extractor, kid: { subsets: 5 }, realFeatures: first.featureSets!.real });
    assert.equal(again.kid.value, first.kid.value);
    assert.equal(again.fid.value, first.fid.value);
    assert.equal(again.detector, null);
  });

  describe('BAD CALL', () => {
    it('EXPECTED FAILURE - a real set smaller than n', () => {
      const real = datasetSource(reader, Uint32Array.from({ length: 10 }, (_, i) => i), 'ten images');
      assert.throws(() => checkSources(onnxSource(session, 50, 0), real, 50), (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.name, 'CelebaGanError');
        assert.equal(err.code, 'E_EVAL_NOT_ENOUGH_REAL');
        assert.match(err.message, /has 10 images; --n 50 needs at least 50/);
        assert.match(err.hint!, /--n 10 or less/);
        return true;
      });
    });

    it('EXPECTED FAILURE - generated and real images of different sizes', async () => {
      await prepareSynthetic({ count: 4, out: join(dir, 'synthetic-32.cgds'), size: 32, seed: 1 });
      const other = new DatasetReader(join(dir, 'synthetic-32.cgds'));
      try {
        const real = datasetSource(other, Uint32Array.from([0, 1, 2, 3]), 'synthetic-32');
        await assert.rejects(evaluate({ generated: onnxSource(session, 4, 0), real, n: 4, extractor }), {
          name: 'CelebaGanError',
          code: 'E_EVAL_SIZE_MISMATCH',
          message: /generated images are 28x28 but the real images \(synthetic-32\) are 32x32/,
        });
      } finally {
        other.close();
      }
    });

    it('EXPECTED FAILURE - a missing extractor package names the npm install command', () => {
      assert.throws(() => findPackage({ name: '@vladmandic/not-installed', version: '1.0.0' }), {
        name: 'CelebaGanError',
        code: 'E_EXTRACTOR_MISSING',
        message: /@vladmandic\/not-installed is not installed/,
        hint: /npm install @vladmandic\/not-installed@1\.0\.0/,
      });
    });

    it('EXPECTED FAILURE - inception features without an Inception file', async () => {
      await assert.rejects(loadExtractor({ features: 'inception' }), { name: 'UsageError', code: 'E_INCEPTION_MISSING', message: /needs --inception/ });
      await assert.rejects(loadExtractor({ features: 'inception', inception: join(dir, 'nope.onnx') }), { name: 'UsageError', code: 'E_INCEPTION_MISSING', message: /no such file/ });
    });
  });
});
