import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli } from '../support/in-process.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import sharp from 'sharp';
import { renameInput, tempDir, writeTinyModel } from '../inference/fixtures.js';
import { syntheticFaces } from './ladder.js';
import { writeConditionalModel, writeConditionalSet } from './conditional.js';
import { DatasetReader } from '../../src/data/dataset-file.js';
import { evaluateAttributes, onnxConditional } from '../../src/eval/index.js';
import { openGenerator } from '../../src/inference/session.js';

/** `celeba-gan eval` through main(), in a scratch working directory. */

const home = process.cwd();
let dir: string;

before(async () => {
  dir = tempDir('cg-eval-cli-');
  mkdirSync(join(dir, 'data'));
  await prepareSynthetic({ count: 12, out: join(dir, 'data', 'synthetic-28.cgds'), size: 28, seed: 2 });
  writeTinyModel(join(dir, 'models'), 'tiny.onnx');
  writeTinyModel(join(dir, 'bad'), 'renamed.onnx', { edit: renameInput('latent') });
  // A conditional model and a labelled set, outside models/ and data/ (the defaults stay as they are).
  await writeConditionalSet(join(dir, 'cond', 'labelled.cgds'));
  writeConditionalModel(join(dir, 'cond', 'cond.onnx'), join(dir, 'cond', 'labelled.cgds'));
  // Two folders of PNGs, as a user would have them: 4 "generated" and 8 "real" 32 px faces.
  for (const [name, seed, count] of [
    ['gen', 5, 4],
    ['photos', 6, 8],
  ] as const) {
    mkdirSync(join(dir, name));
    const set = syntheticFaces(seed, 0, count, 32);
    const bytes = 32 * 32 * 3;
    for (let i = 0; i < count; i++) {
      await sharp(Buffer.from(set.data.subarray(i * bytes, (i + 1) * bytes)), { raw: { width: 32, height: 32, channels: 3 } })
        .png()
        .toFile(join(dir, name, `${i}.png`));
    }
  }
  process.chdir(dir);
});
after(() => {
  process.chdir(home);
  rmSync(dir, { recursive: true, force: true });
});

describe('celeba-gan eval', () => {
  it('with no paths, picks the newest model and data set, says so, and prints JSON with SWD beside its baseline', async () => {
    const r = await cli('eval', '--n', '6', '--json', '--seed', '4');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /model models\/tiny\.onnx \(newest of 1 model in models\/\)/);
    assert.match(r.stderr, /real images data\/synthetic-28\.cgds \(newest of 1 data set in data\/\)/);
    const report = JSON.parse(r.stdout);
    assert.equal(report.n, 6);
    assert.equal(report.seed, 4);
    assert.equal(report.swd.options.seed, 4);
    assert.equal(report.swd.value.levels.length, 2); // 28 and 14 px
    assert.equal(report.validity.swd.ranks, 'no-fine-texture');
    assert.ok(report.swd.value.mean > report.swd.baseline.mean, JSON.stringify(report.swd));
    assert.equal(report.attributes, null); // an unconditional model: nothing per attribute, and nothing said
    assert.doesNotMatch(r.stderr, /per-attribute/);
    assert.ok(Number.isFinite(report.colour.value.value) && Number.isFinite(report.colour.baseline.value));
    assert.deepEqual(report.features, { skipped: 'not meaningful below 64 px', description: 'faceres (@vladmandic/human 3.3.6)' });
    assert.deepEqual(report.detector, { skipped: 'not meaningful below 64 px', description: 'tiny face detector (@vladmandic/face-api 1.7.15)' });
  });

  it('prints a readable table: every number beside the real-halves baseline, what SWD and the colour check rank at 28 px; faceres and the detector not meaningful there', async () => {
    const r = await cli('eval', '--model', 'models/tiny.onnx', '--real', 'data/synthetic-28.cgds', '--n', '6');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /generated +real halves/);
    assert.match(r.stdout, /SWD x1e3 \(ProGAN\), mean +\d+\.\d +\d+\.\d +\d+\.\d\dx the baseline/);
    assert.match(r.stdout, /level 28x28 +\d+\.\d +\d+\.\d/);
    assert.match(r.stdout, /level 14x14 +\d+\.\d +\d+\.\d/);
    assert.match(r.stdout, /colour check x1e3 +\d+\.\d\d +\d+\.\d\d/);
    assert.match(
      r.stdout,
      /SWD at 28x28 \(2 pyramid levels\): not a ranking of fine texture below 89 px: it ranks blur, noise and flat grey in order, but a 1-px checkerboard scores as high as uniform noise or higher \(docs\/eval\.md\)/,
    );
    assert.match(r.stdout, /colour check: a colour check, not a quality ranking/);
    assert.match(r.stdout, /faceres KID and FID: not meaningful below 64 px/);
    assert.match(r.stdout, /faces detected: not meaningful below 64 px/);
    assert.doesNotMatch(r.stdout, /KID x1000/);
    assert.match(r.stdout, /512 directions, seed 0; projections on onnxruntime \(MLAS Gemm, cpu\)/);
  });

  it('--swd-kernel js projects on the JS loop, says so, and gives the numbers onnxruntime gives', async () => {
    const run = async (kernel: string) => {
      const r = await cli('eval', '--model', 'models/tiny.onnx', '--real', 'data/synthetic-28.cgds', '--n', '6', '--json', '--swd-kernel', kernel);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const [js, onnx] = [await run('js'), await run('onnxruntime')];
    assert.equal(js.swd.kernel, 'JavaScript loop (asked for)');
    assert.deepEqual([js.swd.value.kernel, onnx.swd.value.kernel], ['js', 'onnxruntime']);
    // The same float32 products summed in another order (swd.test.ts: the NumPy reference's tolerance).
    assert.ok(Math.abs(js.swd.value.mean - onnx.swd.value.mean) < 1e-4 * js.swd.value.mean, `${js.swd.value.mean} vs ${onnx.swd.value.mean}`);
  });

  it('compares two folders of images: eval --generated <folder> --real <folder>', async () => {
    const r = await cli('eval', '--generated', 'gen/', '--real', 'photos/', '--n', '4', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.height, 32);
    assert.equal(report.swd.value.levels.length, 2); // 32 and 16 px
    assert.match(report.generated.label, /gen\/: 4 of 4 images/);
    assert.match(report.real.label, /photos\/: 8 of 8 images/);
    // Resized to 28 px, the folders compare with a 28 px data set.
    const mixed = await cli('eval', '--generated', 'gen/', '--real', 'data/synthetic-28.cgds', '--resize', '28', '--n', '4', '--json');
    assert.equal(mixed.code, 0, mixed.stderr);
    assert.equal(JSON.parse(mixed.stdout).height, 28);
  });

  describe('BAD CALL', () => {
    const table: [string, string[], number, RegExp][] = [
      [
        'a real set smaller than 2n',
        ['--n', '50'],
        2,
        /E_EVAL_NOT_ENOUGH_REAL.*data\/synthetic-28\.cgds has 12 images; --n 50 needs at least 100 .*Pass --n 6 or less, or a larger real set\./,
      ],
      [
        'folders of different sizes without --resize',
        ['--generated', 'gen/', '--real', 'data/synthetic-28.cgds', '--n', '4'],
        2,
        /E_EVAL_SIZE_MISMATCH.*32x32 but the real images .* are 28x28.*--resize/,
      ],
      ['a folder given to --model', ['--model', 'gen/', '--n', '4'], 2, /E_EVAL_EXPECTED_FILE.*--model gen\/ is a folder; expected an \.onnx file/],
      [
        'a single image given to --real',
        ['--real', 'photos/0.png', '--n', '2'],
        2,
        /E_EVAL_EXPECTED_FOLDER.*--real photos\/0\.png is a file \(\.png\); expected a folder/,
      ],
      [
        '--generated and --model together',
        ['--generated', 'gen/', '--model', 'models/tiny.onnx'],
        2,
        /E_BAD_ARGUMENT.*either --generated or --model, not both/,
      ],
      ['a model without the expected input', ['--model', 'bad/renamed.onnx', '--n', '4'], 2, /E_MODEL_IO.*has no input "z"/],
      ['inception features without a file', ['--features', 'inception', '--n', '4'], 2, /E_INCEPTION_MISSING.*needs --inception/],
      [
        'an unknown feature space',
        ['--features', 'clip'],
        2,
        /E_BAD_ARGUMENT.*Unsupported features "clip" of type string\. Should be one of: faceres, inception, none/,
      ],
      ['an unknown detector', ['--detector', 'yolo'], 2, /Should be one of: tiny, none/],
      ['--n below 2', ['--n', '1'], 2, /Expected integer >= 2 for n but received 1 of type number/],
      [
        'an unknown SWD kernel',
        ['--swd-kernel', 'blas'],
        2,
        /E_BAD_ARGUMENT.*Unsupported swd-kernel "blas" of type string\. Should be one of: auto, onnxruntime, js/,
      ],
      ['a missing data set file', ['--real', 'data/nope.cgds'], 2, /E_EVAL_INPUT_MISSING.*--real data\/nope\.cgds does not exist/],
    ];
    for (const [what, args, code, message] of table) {
      it(`ERROR PATH - ${what}`, async () => {
        const r = await cli('eval', ...args);
        assert.equal(r.code, code, r.stderr);
        assert.match(r.stderr.replace(/\n/g, ' '), message);
      });
    }
  });
});

describe('celeba-gan eval on a conditional model', () => {
  const base = ['eval', '--model', 'cond/cond.onnx', '--real', 'cond/labelled.cgds', '--n', '6', '--seed', '4'];

  it('--json --per-attribute both: every attribute the data labels, on and off, with the real counts; the numbers evaluateAttributes gives', async () => {
    const r = await cli(...base, '--json', '--per-attribute', 'both', '--attr-n', '5', '--swd-kernel', 'js');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.match(report.generated.label, /cond\.onnx: 6 images \(seed 4, attributes drawn from its training label rows\)/);
    assert.deepEqual(report.generated.notes, []);
    const a = report.attributes;
    assert.deepEqual(
      a.scores.map((s: { request: string }) => s.request),
      ['Smiling', '-Smiling', 'Eyeglasses', '-Eyeglasses', 'Pale_Skin', '-Pale_Skin'],
    );
    assert.deepEqual(a.notInData, ['Wearing_Hat']);
    assert.equal(a.n, 5);
    assert.deepEqual(
      a.scores.map((s: { realCount: number; n?: number }) => [s.realCount, s.n ?? null]),
      [
        [16, 5],
        [32, 5],
        [7, 3],
        [41, 5],
        [1, null],
        [47, 5],
      ],
    );
    // The CLI passes its seed, n and sides through: the library's numbers for the same call.
    const reader = new DatasetReader('cond/labelled.cgds');
    const session = await openGenerator('cond/cond.onnx', { provider: 'cpu' });
    try {
      const direct = await evaluateAttributes({ generator: onnxConditional(session), real: reader, n: 5, seed: 4, sides: ['on'], attributes: ['Eyeglasses'] });
      const [eyeglasses] = direct.scores;
      assert.ok(eyeglasses && 'n' in eyeglasses);
      const fromCli = a.scores[2];
      // JS kernel in the CLI, the process's auto kernel here: the same projections summed in another order (swd.test.ts).
      assert.ok(
        Math.abs(fromCli.swd.value.mean - eyeglasses.swd.value.mean) < 1e-4 * eyeglasses.swd.value.mean,
        `${fromCli.swd.value.mean} vs ${eyeglasses.swd.value.mean}`,
      );
      assert.ok(Math.abs(fromCli.swd.baseline.mean - eyeglasses.swd.baseline.mean) < 1e-4 * eyeglasses.swd.baseline.mean);
    } finally {
      await session.close();
      reader.close();
    }
  });

  it('the table (default auto: faces with each attribute): each beside its own real halves; a rare one skipped with its count; the attribute the data lacks named', async () => {
    const r = await cli(...base);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SWD x1e3 \(ProGAN\), mean +\d+\.\d +\d+\.\d/);
    assert.match(r.stdout, /attribute +side +real +n +SWD x1e3 +halves +ratio +colour x1e3 \(halves\)/);
    assert.match(r.stdout, /\n {2}Smiling +on +16 +6 +\d+\.\d +\d+\.\d +\d+\.\d\dx +\d+\.\d\d \(\d+\.\d\d\)\n/);
    assert.match(r.stdout, /\n {2}Eyeglasses +on +7 +3 +\d+\.\d/);
    assert.match(
      r.stdout,
      /\n {2}Pale_Skin +on +1 +- +skipped: 1 real image has it; SWD beside its baseline needs 4 \(2 to compare with, 2 for the real halves\)\n/,
    );
    assert.doesNotMatch(r.stdout, / off /);
    assert.match(r.stdout, /not evaluated, the real set has no labels for: Wearing_Hat/);
  });

  it('auto with a real set that carries no labels (a folder): the overall numbers, and the reason per-attribute SWD was skipped', async () => {
    const r = await cli('eval', '--model', 'cond/cond.onnx', '--real', 'photos/', '--resize', '28', '--n', '4');
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /per-attribute SWD skipped: the real set photos\/ is not a \.cgds data set, so it carries no attribute labels; prepare a labelled data set/,
    );
    assert.match(r.stdout, /SWD x1e3 \(ProGAN\), mean/);
    assert.match(r.stdout, /per-attribute SWD: not computed: the real set photos\/ is not a \.cgds data set/);
  });

  describe('BAD CALL', () => {
    const table: [string, string[], RegExp][] = [
      [
        '--per-attribute on with a real set without labels',
        ['--model', 'cond/cond.onnx', '--real', 'photos/', '--resize', '28', '--n', '4', '--per-attribute', 'on'],
        /E_EVAL_NO_LABELS.*photos\/ is not a \.cgds data set.*Pass --real <labelled\.cgds>, or leave --per-attribute at auto/,
      ],
      [
        '--per-attribute both on an unconditional model',
        ['--model', 'models/tiny.onnx', '--real', 'cond/labelled.cgds', '--n', '4', '--per-attribute', 'both'],
        /E_NOT_CONDITIONAL.*per-attribute SWD needs a conditional generator, but model .*tiny\.onnx is unconditional/,
      ],
      [
        '--per-attribute off on a folder of images',
        ['--generated', 'gen/', '--real', 'photos/', '--n', '4', '--per-attribute', 'off'],
        /E_NOT_CONDITIONAL.*--per-attribute off needs a conditional \.onnx generator, but gen\/ is a set of images/,
      ],
      [
        'an unknown --per-attribute',
        ['--per-attribute', 'all'],
        /Unsupported per-attribute "all" of type string\. Should be one of: auto, on, off, both, none/,
      ],
      ['--attr-n below 2', ['--attr-n', '1'], /Expected integer >= 2 for attr-n but received 1 of type number/],
    ];
    for (const [what, args, message] of table) {
      it(`ERROR PATH - ${what}`, async () => {
        const r = await cli('eval', ...args);
        assert.equal(r.code, 2, r.stderr);
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
    it(`ERROR PATH - ${what}`, async () => {
      const r = await cli('train', ...args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    });
  }
});
