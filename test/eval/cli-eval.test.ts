import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli } from '../cli/in-process.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { renameInput, tempDir, writeTinyModel } from '../inference/fixtures.js';

/** `celeba-gan eval` through main(), in a scratch working directory. */

const home = process.cwd();
let dir: string;

before(async () => {
  dir = tempDir('cg-eval-cli-');
  mkdirSync(join(dir, 'data'));
  await prepareSynthetic({ count: 12, out: join(dir, 'data', 'synthetic-28.cgds'), size: 28, seed: 2 });
  writeTinyModel(join(dir, 'models'), 'tiny.onnx');
  writeTinyModel(join(dir, 'bad'), 'renamed.onnx', { edit: renameInput('latent') });
  process.chdir(dir);
});
after(() => {
  process.chdir(home);
  rmSync(dir, { recursive: true, force: true });
});

describe('celeba-gan eval', () => {
  it('with no paths, picks the newest model and data set, says so, and prints JSON with the feature space', async () => {
    const r = await cli('eval', '--n', '8', '--json', '--kid-subsets', '3', '--seed', '4');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /model models\/tiny\.onnx \(newest of 1 model in models\/\)/);
    assert.match(r.stderr, /real images data\/synthetic-28\.cgds \(newest of 1 data set in data\/\)/);
    const report = JSON.parse(r.stdout);
    assert.equal(report.n, 8);
    assert.equal(report.seed, 4);
    assert.equal(report.features.features, 'faceres');
    assert.equal(report.features.dim, 1024);
    assert.match(report.features.description, /@vladmandic\/human 3\.3\.6/);
    assert.equal(report.kid.subsets, 3);
    assert.equal(report.kid.subsetSize, 8);
    assert.ok(Number.isFinite(report.kid.value) && Number.isFinite(report.fid.value) && report.fid.value > 0);
    assert.match(report.detector.description, /@vladmandic\/face-api 1\.7\.15/);
    assert.ok(report.detector.generated.rate >= 0 && report.detector.generated.rate <= 1);
  });

  it('prints a readable table naming the extractor next to the numbers', async () => {
    const r = await cli('eval', '--model', 'models/tiny.onnx', '--real', 'data/synthetic-28.cgds', '--n', '8', '--kid-subsets', '2', '--detector', 'none');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /features {3}faceres 1024-d/);
    assert.match(r.stdout, /KID {3}-?\d\.\d+e[+-]\d+ ± /);
    assert.match(r.stdout, /FID {3}\d+\.\d+/);
    assert.match(r.stdout, /not comparable/);
    assert.doesNotMatch(r.stdout, /faces detected/);
  });

  describe('BAD CALL', () => {
    const table: [string, string[], number, RegExp][] = [
      ['a real set smaller than --n', ['--n', '50'], 2, /E_EVAL_NOT_ENOUGH_REAL.*has 12 images; --n 50 needs at least 50/],
      ['a model without the expected input', ['--model', 'bad/renamed.onnx', '--n', '4'], 2, /E_MODEL_IO.*has no input "z"/],
      ['inception features without a file', ['--features', 'inception', '--n', '4'], 2, /E_INCEPTION_MISSING.*needs --inception/],
      ['an unknown feature space', ['--features', 'clip'], 2, /E_BAD_ARGUMENT.*Unsupported features "clip" of type string\. Should be one of: faceres, inception/],
      ['an unknown detector', ['--detector', 'yolo'], 2, /Should be one of: tiny, none/],
      ['--n below 2', ['--n', '1'], 2, /Expected integer >= 2 for n but received 1 of type number/],
      ['a missing data set file', ['--real', 'data/nope.cgds'], 2, /E_DATASET_MISSING/],
    ];
    for (const [what, args, code, message] of table) {
      it(`EXPECTED FAILURE - ${what}`, async () => {
        const r = await cli('eval', ...args);
        assert.equal(r.code, code, r.stderr);
        assert.match(r.stderr.replace(/\n/g, ' '), message);
      });
    }
  });
});

describe('celeba-gan train --eval-every', () => {
  const table: [string, string[], RegExp][] = [
    ['a negative --eval-every', ['--eval-every', '-1'], /Expected integer >= 0 for eval-every but received -1 of type number/],
    ['--eval-n below 2', ['--eval-every', '10', '--eval-n', '1'], /Expected integer >= 2 for eval-n but received 1 of type number/],
  ];
  for (const [what, args, message] of table) {
    it(`EXPECTED FAILURE - ${what}`, async () => {
      const r = await cli('train', ...args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    });
  }
});
